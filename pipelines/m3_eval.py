"""DVC stage m3_eval: evaluate the M3 runs (see docs/e2e.md); same as `symile-data e2e eval-m3`."""
from __future__ import annotations

import sys

from symile_data.e2e.cli import COMMANDS
from symile_data.stage import run_stage

COMMAND = COMMANDS["eval-m3"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
