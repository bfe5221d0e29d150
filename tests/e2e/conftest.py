"""Fixture: a work dir holding the toy-size params.yaml (see e2e_chain.toy_params)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from e2e_chain import toy_params  # noqa: E402


@pytest.fixture
def toy_workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(toy_params(), sort_keys=False))
    return work
