"""Fakes of the released layouts are built inside the tests (fakes_m3.py, fakes_mimic.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("SYMILE_DATA_PROGRESS", "off")
