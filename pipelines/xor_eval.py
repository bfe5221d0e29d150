"""DVC stage xor_eval: evaluate every synthetic-XOR run -> reports/xor/metrics.json.

Same as `symile-data xor-eval`.
"""
from __future__ import annotations

import sys

from symile_data.train.cli import XOR_EVAL
from symile_data.stage import run_stage

COMMAND = XOR_EVAL


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
