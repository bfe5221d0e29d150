"""DVC stage m3_demo: the embedded demo ILSVRC folder (see docs/m3.md).

Same as `symile-data m3 demo`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.m3.cli import COMMANDS  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = COMMANDS["demo"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
