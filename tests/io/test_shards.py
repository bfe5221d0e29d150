"""Parquet / WebDataset writers: naming, markers, manifest, resume, determinism, validation."""
import json
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from symile_data.cli import main
from symile_data.io import parquet as pqw
from symile_data.io.manifest import marker_path, read_manifest
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.validate import validate_tree
from symile_data.io.wds import sanitize_key, write_wds_dataset
from symile_data.schema import xor_schema
from symile_data.xor import XorDataConfig, build_xor_datasets, generate_xor

SPEC = ShardSpec(max_rows_per_shard=300, row_group_rows=64)


def _splits(seed=0):
    rng = np.random.default_rng(seed)
    return {"train": generate_xor(1000, 5, 0.5, rng, "train"),
            "test": generate_xor(250, 5, 0.5, rng, "test")}


def _write(d, **kw):
    return write_parquet_dataset(d, _splits(), xor_schema(5), name="t", params_hash="h1",
                                 spec=SPEC, **kw)


def test_names_manifest_and_markers(tmp_path):
    m = _write(tmp_path, flags={"mimic_derived": False}, extra={"seed": 0})
    names = sorted(p.name for p in tmp_path.glob("*.parquet"))
    assert names == [f"test-00000-of-00001.parquet"] + [
        f"train-{i:05d}-of-00004.parquet" for i in range(4)]
    assert m["splits"]["train"]["rows"] == 1000 and m["splits"]["test"]["rows"] == 250
    assert [s["rows"] for s in m["splits"]["train"]["shards"]] == [300, 300, 300, 100]
    assert read_manifest(tmp_path) == m
    assert m["schema"] == "xor_samples" and m["flags"] == {"mimic_derived": False}
    assert all(marker_path(tmp_path / n).exists() for n in names)
    assert all(marker_path(tmp_path / n).name.startswith(".") for n in names)
    f = pq.ParquetFile(tmp_path / "train-00000-of-00004.parquet")
    assert f.metadata.num_row_groups == 5  # 300 rows / 64 per group
    assert f.schema_arrow.equals(xor_schema(5), check_metadata=True)


def test_target_bytes_bound_rows_per_shard(tmp_path):
    spec = ShardSpec(target_shard_bytes=10_000, max_rows_per_shard=10**6)
    m = write_parquet_dataset(tmp_path, _splits(), xor_schema(5), name="t",
                              params_hash="h", spec=spec)
    assert m["splits"]["train"]["num_shards"] > 1


def test_byte_identical_and_resume_skips_finished(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a)
    _write(b)
    for p in sorted(a.iterdir()):
        assert p.read_bytes() == (b / p.name).read_bytes(), p.name
    # resume: a finished dataset re-runs without writing any shard
    calls = []
    monkeypatch.setattr(pqw.pq, "write_table", lambda *x, **k: calls.append(x))
    _write(a)
    assert calls == []


def test_killed_write_leaves_no_complete_shard_and_resumes(tmp_path, monkeypatch):
    real = pqw.pq.write_table
    count = {"n": 0}

    def dying(table, where, **kw):
        count["n"] += 1
        if count["n"] == 3:
            real(table.slice(0, 5), where, **kw)   # partial temporary file, then "killed"
            raise KeyboardInterrupt
        return real(table, where, **kw)

    monkeypatch.setattr(pqw.pq, "write_table", dying)
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path)
    assert not (tmp_path / "manifest.json").exists()
    assert not (tmp_path / "train-00002-of-00004.parquet").exists()
    assert not list(tmp_path.glob(".*tmp"))
    report = validate_tree(tmp_path)
    assert not report[0]["ok"]
    monkeypatch.setattr(pqw.pq, "write_table", real)
    written = []
    monkeypatch.setattr(pqw.pq, "write_table", lambda t, w, **k: (written.append(w), real(t, w, **k)))
    _write(tmp_path)
    assert len(written) == 3   # shards 2, 3 of train and the test shard; 0 and 1 skipped
    ref = tmp_path.parent / "ref"
    monkeypatch.setattr(pqw.pq, "write_table", real)
    _write(ref)
    for p in ref.iterdir():
        assert p.read_bytes() == (tmp_path / p.name).read_bytes()


def test_changed_params_rewrite_and_stale_shards_removed(tmp_path):
    _write(tmp_path)
    spec = ShardSpec(max_rows_per_shard=600, row_group_rows=64)
    write_parquet_dataset(tmp_path, _splits(), xor_schema(5), name="t", params_hash="h2",
                          spec=spec)
    assert sorted(p.name for p in tmp_path.glob("train-*.parquet")) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert validate_tree(tmp_path)[0]["ok"]


def test_schema_mismatch_names_column(tmp_path):
    t = _splits()["train"].drop(["c"])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['c'\]"):
        write_parquet_dataset(tmp_path, {"train": t}, xor_schema(5), name="t",
                              params_hash="h", spec=SPEC)


def test_validate_reports_each_problem(tmp_path, capsys):
    _write(tmp_path)
    assert main(["validate", str(tmp_path)]) == 0
    shard = tmp_path / "train-00001-of-00004.parquet"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    (tmp_path / "test-00000-of-00001.parquet").unlink()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "train-00009-of-00010.parquet")
    assert main(["validate", str(tmp_path), "--report", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "train-00001-of-00004.parquet: sha256 differs" in out
    assert "test-00000-of-00001.parquet: missing" in out
    assert "train-00009-of-00010.parquet: shard on disk but not in manifest.json" in out
    assert json.loads((tmp_path / "r.json").read_text())[0]["ok"] is False


def test_validate_missing_manifest(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path / "empty")]) == 1
    assert "no manifest.json found" in capsys.readouterr().out


def test_webdataset_writer(tmp_path):
    samples = [{"__key__": f"s/../{i:03d}.x", "json": json.dumps({"i": i}), "npy": bytes([i])}
               for i in reversed(range(25))]
    m = write_wds_dataset(tmp_path / "a", {"train": samples}, name="w", params_hash="h",
                          samples_per_shard=10, flags={"mimic_derived": True})
    write_wds_dataset(tmp_path / "b", {"train": samples}, name="w", params_hash="h",
                      samples_per_shard=10, flags={"mimic_derived": True})
    assert m["flags"]["mimic_derived"] is True and m["splits"]["train"]["num_shards"] == 3
    first = tmp_path / "a" / "train-00000-of-00003.tar"
    assert first.read_bytes() == (tmp_path / "b" / first.name).read_bytes()
    with tarfile.open(first) as tf:
        names = tf.getnames()
        assert all(tf.getmember(n).mtime == 0 for n in names)
    assert names[:2] == ["s_015_x.json", "s_015_x.npy"]  # grouped, sorted, no '.', '/' in keys
    assert validate_tree(tmp_path / "a")[0]["ok"]


def test_sanitize_key_rejects_empty():
    assert sanitize_key("../a/b.c") == "a_b_c"
    with pytest.raises(ValueError):
        sanitize_key("../")


def test_xor_generator_semantics():
    cfg = XorDataConfig(n_train=2000, n_val=10, n_test=10, ps=(1.0,))
    t = generate_xor(2000, 5, 1.0, np.random.default_rng(0), "train")
    a, b, c = (np.array(t[k].to_pylist()) for k in "abc")
    assert (c == (a ^ b)).all() and set(t["i"].to_pylist()) == {1}
    t0 = generate_xor(2000, 5, 0.0, np.random.default_rng(0), "train")
    assert (np.array(t0["c"].to_pylist()) == np.array(t0["a"].to_pylist())).all()
    assert cfg.ps == (1.0,)


def test_xor_datasets_one_dir_per_p(tmp_path):
    cfg = XorDataConfig(ps=(0.0, 1.0), n_train=100, n_val=10, n_test=20)
    ms = build_xor_datasets(tmp_path, cfg)
    assert sorted(ms) == ["p0.0", "p1.0"]
    assert all(r["ok"] for r in validate_tree(tmp_path))
