"""DVC stage xor_data: synthetic XOR datasets (one per p) as Parquet shards.

Same as `symile-data xor-data`.
"""
from __future__ import annotations

import sys

from symile_data.io.cli import XOR_DATA
from symile_data.stage import run_stage

COMMAND = XOR_DATA


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
