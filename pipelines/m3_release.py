"""DVC stage m3_release (profiles/m3-release/dvc.yaml): import the released Symile-M3;
same as `symile-data m3 import`."""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.m3.release_cli import IMPORT  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = IMPORT


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
