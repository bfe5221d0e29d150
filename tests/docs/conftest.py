"""Doc tests: the helpers of this folder are imported by name (extract, check_*, run_block)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
