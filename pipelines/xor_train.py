"""DVC stage xor_train: train one synthetic-XOR run (matrix over p x method).

Same as `symile-data xor-train`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.train.cli import XOR_TRAIN  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = XOR_TRAIN


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
