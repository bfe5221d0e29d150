"""DVC stage m3_train: Symile or pairwise CLIP on the m3 shards (matrix over method).

Same as `symile-data e2e train-m3`.
"""
from __future__ import annotations

import sys

from symile_data.e2e.cli import TRAIN
from symile_data.stage import run_stage

COMMAND = TRAIN["m3"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
