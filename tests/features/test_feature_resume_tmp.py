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


def _encode(tmp_path, tiny_models, **kw):
    return encode_m3(features_cfg(tiny_models, **kw), tmp_path / "media" / "m3_images.parquet",
                     tmp_path / "media" / "m3_clips.parquet", tmp_path / "samples",
                     tmp_path / "features")


def _valid(root):
    entries = [e for e in validate_tree(root) if e["contract"] != "skipped"]
    return all(e["ok"] for e in entries), entries


def test_parts_of_other_params_or_upstream_status_are_not_reused(tmp_path, tiny_models,
                                                                 caplog):
    """Issue 21: feature parts are reused only under the same encoder settings (amp, items
    per part) and the same upstream status of every item."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from symile_data.features.tables import read_feature_table
    images, _ = make_media(tmp_path / "media", n_images=6, n_clips=3)
    make_samples(tmp_path / "samples", "symile-m3-2-xs", n_images=6, n_clips=3)
    first = _encode(tmp_path, tiny_models)["modalities"]["image"]
    assert first["encoded_this_run"] > 0
    same = _encode(tmp_path, tiny_models)["modalities"]["image"]
    assert same["encoded_this_run"] == 0                      # same everything: resumed
    with caplog.at_level("WARNING"):
        other = _encode(tmp_path, tiny_models, amp="none", items_per_part=4)
    assert "image feature parts not reused" in caplog.text and "params.amp" in caplog.text
    assert other["modalities"]["image"]["skipped_resumed"] == 0
    assert _valid(tmp_path / "features")[0], _valid(tmp_path / "features")[1]  # no old parts
    # an item failed upstream when encoded, ok now: its part is encoded again
    failed = images.set_column(images.schema.get_field_index("status"), "status",
                               pc.if_else(pc.equal(images["image_key"], "img000"),
                                          "failed", images["status"]))
    pq.write_table(failed, tmp_path / "media" / "m3_images.parquet")
    _encode(tmp_path, tiny_models)
    pq.write_table(images, tmp_path / "media" / "m3_images.parquet")
    rep = _encode(tmp_path, tiny_models)["modalities"]["image"]
    assert rep["encoded_this_run"] > 0 and rep["failed"] == first["failed"]
    index = read_json(tmp_path / "features" / "index.json")
    table, _ = read_feature_table(tmp_path / "features" / index["image"])
    row = table.filter(pc.equal(table["key"], "img000")).to_pylist()[0]
    assert row["status"] == "ok" and row["error"] == ""


def test_damaged_text_part_is_rebuilt(tmp_path, tiny_models):
    """Issue 21: a text part whose file no longer reads is rebuilt, not trusted from its
    done-marker."""
    make_media(tmp_path / "media", n_images=4, n_clips=3)
    make_samples(tmp_path / "samples", "symile-m3-2-xs", n_images=4, n_clips=3)
    _encode(tmp_path, tiny_models)
    index = read_json(tmp_path / "features" / "index.json")
    part = tmp_path / "features" / index["text"] / "part-00000.parquet"
    want = part.read_bytes()
    part.write_bytes(want[: len(want) // 2])
    rep = _encode(tmp_path, tiny_models)["modalities"]["text"]
    assert rep["encoded_this_run"] == rep["unique_items"] and part.read_bytes() == want
    assert _valid(tmp_path / "features")[0]
