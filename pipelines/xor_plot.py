"""DVC stage xor_plot: accuracy against p for Symile and CLIP -> plots/xor.png.

Same as `symile-data xor-plot`.
"""
from __future__ import annotations

import sys

from symile_data.train.cli import XOR_PLOT
from symile_data.stage import run_stage

COMMAND = XOR_PLOT


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
