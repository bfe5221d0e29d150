"""DVC stage mimic_shards: preprocessed arrays, retrieval sets and shards (mimic_derived).

Same as `symile-data mimic shards`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.mimic.cli import SHARDS  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = SHARDS


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
