"""DVC stage xor_plot: accuracy against p for Symile and CLIP -> plots/xor.png.

Same as `symile-data xor-plot`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.train.cli import XOR_PLOT  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = XOR_PLOT


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
