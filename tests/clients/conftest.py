"""Fixture: one toy chain (clients_chain.build_chain) shared by the client tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from clients_chain import build_chain  # noqa: E402

os.environ.setdefault("SYMILE_DATA_PROGRESS", "off")


@pytest.fixture(scope="session")
def chain(tmp_path_factory) -> Path:
    return build_chain(tmp_path_factory.mktemp("clients"))
