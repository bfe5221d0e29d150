"""DVC stage m3_train (matrix over method): Symile or pairwise CLIP on the m3 shards."""
from __future__ import annotations

import sys

from symile_data.e2e.cli import train_stage


def main(argv: list[str] | None = None) -> int:
    return train_stage("m3", argv)


if __name__ == "__main__":
    sys.exit(main())
