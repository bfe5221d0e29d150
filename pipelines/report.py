"""DVC stage report: reports/results.md + plots (see docs/e2e.md).

Same as `symile-data e2e report`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.e2e.cli import COMMANDS  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = COMMANDS["report"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
