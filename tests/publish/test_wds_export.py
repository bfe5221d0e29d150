"""`symile-data export-wds`: WebDataset tars equal to the Parquet rows, valid, deterministic,
flags carried over."""
import io
import json
import tarfile

import numpy as np

from symile_data.cli import main
from symile_data.io.manifest import read_manifest
from symile_data.io.reader import ParquetMapDataset, split_files
from symile_data.io.validate import validate_tree
from symile_data.publish.wds_export import export_wds


def tar_samples(dataset_dir, split):
    """key -> {member ext: bytes} over every tar of ``split`` (manifest order)."""
    out = {}
    for entry in read_manifest(dataset_dir)["splits"][split]["shards"]:
        with tarfile.open(dataset_dir / entry["file"]) as tf:
            for m in tf.getmembers():
                key, ext = m.name.split(".", 1)
                out.setdefault(key, {})[ext] = tf.extractfile(m).read()
    return out


def test_xor_round_trip_and_validate(xor_root, tmp_path, capsys):
    out = tmp_path / "wds"
    assert main(["export-wds", str(xor_root), "--out", str(out), "--samples-per-shard", "6"]) == 0
    assert "xor-p0.2" in capsys.readouterr().out
    reports = [r for r in validate_tree(out) if r.get("contract") != "skipped"]   # card root
    assert len(reports) == 2 and all(r["ok"] for r in reports), reports
    for config in ("p0.2", "p1.0"):
        m = read_manifest(out / config)
        assert m["format"] == "webdataset" and m["name"] == f"xor-{config}"
        assert m["extra"]["members"]["a"] == "a.npy" and m["extra"]["members"]["key"] == "json"
        assert m["splits"]["train"]["num_shards"] == 4          # 20 rows / 6 per shard
        for split in ("train", "test"):
            src = ParquetMapDataset(split_files(xor_root / config, split)).read_all()
            got = tar_samples(out / config, split)
            assert len(got) == len(src["key"])
            for i, key in enumerate(src["key"]):
                s = got[key.replace(".", "_")]
                for col in ("a", "b", "c"):
                    np.testing.assert_array_equal(np.load(io.BytesIO(s[f"{col}.npy"])),
                                                  src[col][i].numpy())
                meta = json.loads(s["json"])
                assert meta == {"key": key, "split": split, "i": int(src["i"][i])}


def test_deterministic_and_flags_carried(mimic_root, tmp_path):
    root, _ = mimic_root()
    a = export_wds(root, tmp_path / "a", samples_per_shard=5)
    b = export_wds(root, tmp_path / "b", samples_per_shard=5)
    assert [m["splits"] for m in a] == [m["splits"] for m in b]   # same sha256 per shard
    for m in a:
        assert m["flags"]["mimic_derived"] is True
    samples = tar_samples(tmp_path / "a" / "samples", "val")
    src = ParquetMapDataset(split_files(root / "samples", "val")).read_all()
    s = samples[src["key"][0]]
    assert set(s) == {"ecg.npy", "cxr.npy", "labs_percentiles.npy", "labs_observed.npy", "json"}
    cxr = np.load(io.BytesIO(s["cxr.npy"]))
    assert cxr.dtype == np.uint8 and np.array_equal(cxr, src["cxr"][0].numpy())


def test_resume_and_errors(xor_root, tmp_path, capsys):
    out = tmp_path / "wds"
    first = export_wds(xor_root / "p0.2", out, samples_per_shard=6)
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    assert export_wds(xor_root / "p0.2", out, samples_per_shard=6) == first
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.tar")} == mtimes   # skipped
    assert main(["export-wds", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["export-wds", str(xor_root), "--out", str(xor_root / "inside")]) == 2
    assert "inside the source" in capsys.readouterr().err


def test_wids_index_and_standard_decoders(xor_root, tmp_path):
    """Each split's ``.{split}.wids.json`` opens with wids.ShardListDataset (indexed access);
    wds.WebDataset decodes .npy / .json with its standard decoders."""
    import webdataset as wds
    import wids
    from symile_data.io.wds import wids_index_path
    out = tmp_path / "wds"
    export_wds(xor_root, out, samples_per_shard=6)
    d = out / "p0.2"
    m = read_manifest(d)
    src = ParquetMapDataset(split_files(xor_root / "p0.2", "train")).read_all()
    ds = wids.ShardListDataset(str(wids_index_path(d, "train")), cache_dir=str(tmp_path / "c"),
                               transformations=[])
    assert len(ds) == m["splits"]["train"]["rows"] == len(src["key"])
    tars = [str(d / s["file"]) for s in m["splits"]["train"]["shards"]]
    streamed = list(wds.WebDataset(tars, shardshuffle=False).decode())
    for i in (0, 7, len(ds) - 1):                           # across shard boundaries
        assert ds[i]["__key__"] == streamed[i]["__key__"]
        np.testing.assert_array_equal(np.load(ds[i][".a.npy"]),   # raw member stream
                                      streamed[i]["a.npy"])
    row = {k: i for i, k in enumerate(src["key"])}[streamed[3]["json"]["key"]]
    np.testing.assert_array_equal(streamed[3]["b.npy"], src["b"][row].numpy())
