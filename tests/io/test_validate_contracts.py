"""Each folder contract of ``validate_tree``: shards, feature tables, loose tables, skipped
folders; malformed markers and manifests are findings naming the file, never exceptions."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from symile_data.cli import main
from symile_data.io.manifest import MANIFEST, legacy_marker_path, marker_path
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.validate import validate_tree
from symile_data.schema import feature_table_schema, xor_schema
from symile_data.xor import generate_xor


def _dataset(d):
    t = generate_xor(100, 3, 0.5, np.random.default_rng(0), "train")
    write_parquet_dataset(d, {"train": t}, xor_schema(3), name="x", params_hash="h",
                          spec=ShardSpec(max_rows_per_shard=40))
    return sorted(d.glob("train-*.parquet"))


def _feature_table(d, n=5, dim=4):
    d.mkdir(parents=True)
    keys = [f"k{i}" for i in range(n)]
    feat = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * dim, np.float16)), dim)
    t = pa.table({"key": keys, "status": ["ok"] * (n - 1) + ["failed"],
                  "error": [""] * (n - 1) + ["bad"], "feat": feat},
                 schema=feature_table_schema(dim, "float16"))
    pq.write_table(t, d / "part-00000.parquet")
    (d / "part-00000.done.json").write_text(json.dumps({"rows": n, "encoder_id": "e"}))
    (d / MANIFEST).write_text(json.dumps({"encoder_id": "e", "dim": dim, "rows": n,
                                          "parts": ["part-00000.parquet"], "ok": n - 1,
                                          "failed": 1, "schema": "feature_table"}))


def _one(d):
    [e] = [e for e in validate_tree(d) if e["dataset"] == str(d)]
    return e


def test_feature_table_contract(tmp_path):
    d = tmp_path / "image" / "e"
    _feature_table(d)
    e = _one(d)
    assert e["contract"] == "feature_table" and e["ok"], e["problems"]
    m = json.loads((d / MANIFEST).read_text())
    (d / MANIFEST).write_text(json.dumps({**m, "ok": 5, "failed": 0, "dim": 8}))
    problems = _one(d)["problems"]
    assert any("feat is" in p and "dim 8" in p for p in problems)
    (d / "part-00000.done.json").unlink()
    assert any("part-00000.done.json: missing" in p for p in _one(d)["problems"])


def test_shards_without_manifest_are_an_error(tmp_path):
    _dataset(tmp_path / "d")
    (tmp_path / "d" / MANIFEST).unlink()
    e = _one(tmp_path / "d")
    assert not e["ok"] and "but no manifest.json" in e["problems"][0]
    f = tmp_path / "f"
    _feature_table(f)
    (f / MANIFEST).unlink()
    assert "but no manifest.json" in _one(f)["problems"][0]


def test_malformed_manifests_and_markers_are_findings(tmp_path, capsys):
    shards = _dataset(tmp_path / "d")
    d = tmp_path / "d"
    marker_path(shards[0]).write_text("[]")                     # JSON, but not an object
    marker_path(shards[1]).write_bytes(b"\xff\xfe")             # not even text
    legacy_marker_path(shards[2]).write_text("{}")              # old visible name
    (d / ".train-00000-of-00003.parquet.999.tmp").write_bytes(b"x")
    problems = _one(d)["problems"]
    assert any(marker_path(shards[0]).name in p and "corrupt" in p for p in problems)
    assert any(marker_path(shards[1]).name in p for p in problems)
    assert any("visible marker" in p for p in problems)
    assert any(".999.tmp: leftover" in p for p in problems)
    m = json.loads((d / MANIFEST).read_text())
    for bad in ([1, 2], {"format": "parquet"}, {**m, "splits": {"train": {"rows": 1}}},
                {"format": "zip"}, "{oops"):
        (d / MANIFEST).write_text(bad if isinstance(bad, str) else json.dumps(bad))
        e = _one(d)
        assert not e["ok"] and e["problems"][0].startswith(("manifest.json", str(d))), e
        assert main(["validate", str(d)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_tables_and_skipped_folders(tmp_path, capsys):
    root = tmp_path / "root"
    (root / "media/a").mkdir(parents=True)
    (root / "media/a/x.jpg").write_bytes(b"jpg")
    (root / "tables").mkdir()
    pq.write_table(pa.table({"a": [1, 2]}), root / "tables/t.parquet")
    (root / "tables/u.parquet").write_bytes(b"PAR1 broken")
    (root / "tables/report.json").write_text("{")
    entries = {e["dataset"]: e for e in validate_tree(root)}
    media, tables = entries[str(root / "media")], entries[str(root / "tables")]
    assert media["contract"] == "skipped" and "no dataset files" in media["reason"]
    assert str(root / "media/a") not in entries         # one entry for the skipped subtree
    assert tables["contract"] == "tables" and tables["splits"] == {"t.parquet": 2}
    assert any(p.startswith("u.parquet: unreadable") for p in tables["problems"])
    assert any(p.startswith("report.json: not valid JSON") for p in tables["problems"])
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'media'}: skipped, no dataset files" in out


def test_shard_suffix_in_any_case_is_checked(tmp_path):
    """A `.PARQUET` / `.TAR` shard is a shard: unlisted beside a manifest it is a finding, in
    a folder without a manifest it makes the folder unfinished shards, and loose `.PARQUET`
    tables are read (each used to be passed over: the suffix was compared case-sensitively)."""
    shards = _dataset(tmp_path / "d")
    stray = tmp_path / "d" / "train-00000-of-00001.PARQUET"
    stray.write_bytes(shards[0].read_bytes())
    (tmp_path / "d" / "val-00000-of-00001.TAR").write_bytes(b"")
    problems = _one(tmp_path / "d")["problems"]
    assert any(p.startswith(stray.name) and "not in manifest.json" in p for p in problems)
    bare = tmp_path / "bare" / "x"
    bare.mkdir(parents=True)
    (bare / "train-00000-of-00001.PARQUET").write_bytes(shards[0].read_bytes())
    e = _one(bare)
    assert e["contract"] == "shards" and "but no manifest.json" in e["problems"][0]
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "table.PARQUET").write_bytes(b"not parquet")
    e = _one(loose)
    assert e["contract"] == "tables" and not e["ok"] and "table.PARQUET" in e["problems"][0]
