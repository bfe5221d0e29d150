"""The client tests read the session's toy chain (fixture ``chain``, tests/conftest.py; built by
clients_chain.build_chain), which the doc tests (tests/docs) share."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
