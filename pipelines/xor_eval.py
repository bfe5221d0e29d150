"""DVC stage xor_eval: evaluate every synthetic-XOR run -> reports/xor/metrics.json.

Same as `symile-data xor-eval`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.train.cli import XOR_EVAL  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = XOR_EVAL


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
