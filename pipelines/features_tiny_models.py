"""DVC stage features_tiny_models: tiny random encoders for the offline demo and tests.

Same as `symile-data features tiny-models`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.features.cli import TINY_MODELS  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = TINY_MODELS


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
