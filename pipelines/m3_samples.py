"""DVC stage m3_samples (see docs/m3.md); same as `symile-data m3 samples`."""
from __future__ import annotations

import sys

from symile_data.m3.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("samples", argv)


if __name__ == "__main__":
    sys.exit(main())
