"""DVC stage mimic_shards: preprocessed arrays, retrieval sets and shards (mimic_derived).

Same as `symile-data mimic shards`.
"""
from __future__ import annotations

import sys

from symile_data.mimic.cli import SHARDS
from symile_data.stage import run_stage

COMMAND = SHARDS


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
