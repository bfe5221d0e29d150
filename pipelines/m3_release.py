"""DVC stage m3_release (profiles/m3-release/dvc.yaml): import the released Symile-M3."""
from __future__ import annotations

import sys

from symile_data.m3.release_cli import main

if __name__ == "__main__":
    sys.exit(main())
