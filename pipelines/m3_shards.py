"""DVC stage m3_shards: join M3 samples with encoder features into training shards.

Same as `symile-data features join`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.features.cli import JOIN  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = JOIN


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
