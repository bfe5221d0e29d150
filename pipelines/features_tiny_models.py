"""DVC stage features_tiny_models: tiny random encoders for the offline demo and tests.

Same as `symile-data features tiny-models`.
"""
from __future__ import annotations

import sys

from symile_data.features.cli import TINY_MODELS
from symile_data.stage import run_stage

COMMAND = TINY_MODELS


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
