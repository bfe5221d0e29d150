"""DVC stage xor_data: synthetic XOR datasets (one per p) as Parquet shards.

Same as `symile-data xor-data`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.io.cli import XOR_DATA  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = XOR_DATA


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
