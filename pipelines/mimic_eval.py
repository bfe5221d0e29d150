"""DVC stage mimic_eval: evaluate the MIMIC runs (see docs/e2e.md).

Same as `symile-data e2e eval-mimic`.
"""
from __future__ import annotations

import sys

from symile_data.e2e.cli import COMMANDS
from symile_data.stage import run_stage

COMMAND = COMMANDS["eval-mimic"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
