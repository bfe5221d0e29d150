"""DVC stage mimic_train: Symile or pairwise CLIP on the mimic shards (matrix over method).

Same as `symile-data e2e train-mimic`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.e2e.cli import TRAIN  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = TRAIN["mimic"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
