"""DVC stage mimic_release (profiles/mimic-release/dvc.yaml): released tensors -> shards."""
from __future__ import annotations

import sys

from symile_data.mimic.release_cli import main

if __name__ == "__main__":
    sys.exit(main())
