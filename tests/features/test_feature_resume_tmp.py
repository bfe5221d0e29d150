"""Feature-table and text parts: a rerun removes the temporaries a killed run left; the written
tables validate under their own contract."""
from __future__ import annotations

import subprocess
import sys

import pytest

from symile_data.features.m3 import encode_m3
from symile_data.io.atomic import read_json
from symile_data.io.validate import validate_tree


@pytest.fixture(autouse=True)
def _kit(kit):
    global make_media, make_samples, features_cfg
    make_media, make_samples, features_cfg = kit.make_media, kit.make_samples, kit.features_cfg


def test_rerun_removes_stale_part_temporaries(tmp_path, tiny_models):
    make_media(tmp_path / "media", n_images=4, n_clips=3)
    make_samples(tmp_path / "samples", "symile-m3-2-xs", n_images=4, n_clips=3)

    def encode():
        return encode_m3(features_cfg(tiny_models), tmp_path / "media" / "m3_images.parquet",
                         tmp_path / "media" / "m3_clips.parquet", tmp_path / "samples",
                         tmp_path / "features")
    encode()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    index = read_json(tmp_path / "features" / "index.json")
    stale = [tmp_path / "features" / index[m] / f".{name}.{dead.pid}.tmp"
             for m, name in (("image", "part-00000.parquet"), ("audio", "part-00000.done.json"),
                             ("text", "part-00000.parquet"))]
    for p in stale:
        p.write_bytes(b"half")
    assert sum(not e["ok"] for e in validate_tree(tmp_path / "features")) == 3
    encode()
    assert not any(p.exists() for p in stale)
    entries = [e for e in validate_tree(tmp_path / "features") if e["contract"] != "skipped"]
    assert sorted(e["contract"] for e in entries) == ["feature_table", "feature_table",
                                                       "text_tokens"]
    assert all(e["ok"] for e in entries), entries
