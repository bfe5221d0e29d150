"""The whole dvc.yaml chain at toy size, in-process on CPU: data -> features -> shards ->
validation -> Symile / CLIP training -> evaluation -> report; a second run changes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from e2e_chain import REPO, run_chain

PNG = b"\x89PNG\r\n\x1a\n"


def _table(dataset_dir: Path, split: str):
    return pq.read_table(sorted(dataset_dir.glob(f"{split}-*.parquet")))


def _outputs(work: Path) -> dict[str, bytes]:
    roots = ("reports", "plots", "data/m3/shards", "data/m3/shards_miss", "data/mimic/shards")
    return {str(p.relative_to(work)): p.read_bytes() for r in roots
            for p in sorted((work / r).rglob("*")) if p.is_file()}


def test_whole_chain_at_toy_size(toy_workdir: Path):
    work = toy_workdir
    ran = run_chain(REPO, work)
    names = {n.split("@")[0] for n in ran}
    assert {"xor_data", "m3_samples", "mimic_shards", "m3_shards", "m3_missing", "m3_train",
            "m3_missing_train", "mimic_train", "m3_eval", "mimic_eval", "validate_all",
            "report"} <= names

    validation = json.loads((work / "reports/validate.json").read_text())
    assert validation["n_bad"] == 0 and validation["n_datasets"] == 8

    m3 = json.loads((work / "reports/m3/metrics.json").read_text())
    runs = {(r["method"], r["p"]): r for r in m3["runs"]}
    assert set(runs) == {("symile", 0.0), ("clip", 0.0), ("symile", 0.5), ("clip", 0.5)}
    for r in runs.values():
        assert r["n_queries"] == 32 and r["w"] == 2
        # a correct retrieval shows the query's class, which the text names
        assert 0.0 <= r["accuracy"] <= r["in_text_accuracy"] <= 1.0
        assert r["clip_bound"] == r["in_text_accuracy"] / 2
    assert m3["chance"] == 1 / 4
    per_query = np.load(work / "reports/m3/per_query/symile.npy")
    assert per_query.shape == (32,) and per_query.mean() == runs["symile", 0.0]["accuracy"]

    mimic = json.loads((work / "reports/mimic/metrics.json").read_text())
    assert [r["method"] for r in mimic["runs"]] == ["symile", "clip"]
    assert mimic["chance"] == 0.1 and all(r["n_candidates"] == 10 for r in mimic["runs"])
    done = json.loads((work / "models/mimic/symile/done.json").read_text())
    assert done["spec"]["cnn_width"] == 4 and done["spec"]["cxr_pool"] == 8

    # the missingness variant: same rows as the complete dataset, flags on train/val only
    full = work / "data/m3/shards/symile-m3-2-demo"
    miss = work / "data/m3/shards_miss/p0.5/symile-m3-2-demo-miss0.5"
    for split in ("train", "val", "test"):
        a, b = _table(full, split), _table(miss, split)
        for col in ("key", "image_key", "audio_key", "text", "image_feat"):
            assert a[col].equals(b[col]), (split, col)
        flags = np.stack([b[c].to_numpy() for c in
                          ("image_missing", "text_missing", "audio_missing")])
        assert not flags.any() if split == "test" else 0.3 < flags.mean() < 0.7

    md = (work / "reports/results.md").read_text()
    assert "| symile-m3-2-demo |" in md and "| symile-mimic |" in md
    assert "8 of 8 datasets valid" in md and "in-text" in md
    for png in ("plots/accuracy.png", "plots/m3_missing.png", "plots/xor.png"):
        assert (work / png).read_bytes().startswith(PNG)

    # a second run finds every output complete: identical bytes, no retraining
    before = _outputs(work)
    mtime = (work / "models/m3/symile/last.pt").stat().st_mtime_ns
    run_chain(REPO, work)
    assert _outputs(work) == before
    assert (work / "models/m3/symile/last.pt").stat().st_mtime_ns == mtime
