"""DVC stage features_m3: encode every unique M3 image, clip and text once.

Same as `symile-data features encode`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.features.cli import ENCODE  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = ENCODE


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
