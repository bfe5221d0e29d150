"""DVC stage validate_all (see docs/e2e.md); same as `symile-data e2e validate`."""
from __future__ import annotations

import sys

from symile_data.e2e.cli import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("validate", argv)


if __name__ == "__main__":
    sys.exit(main())
