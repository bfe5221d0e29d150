"""DVC stage m3_missing (see docs/e2e.md); same as `symile-data e2e missing`."""
from __future__ import annotations

import sys

from symile_data.e2e.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("missing", argv)


if __name__ == "__main__":
    sys.exit(main())
