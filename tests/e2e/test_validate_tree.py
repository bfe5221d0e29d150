"""`symile-data validate` over the whole output tree of the toy chain: every folder validates
under its own contract or is skipped with a reason; damage anywhere is a finding, never a crash."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from e2e_chain import REPO, run_chain

from symile_data.cli import main
from symile_data.io.manifest import MANIFEST, marker_path


def _report(work: Path, capsys) -> tuple[int, list[dict]]:
    rc = main(["validate", str(work / "data"), "--report", str(work / "v.json")])
    capsys.readouterr()
    return rc, json.loads((work / "v.json").read_text())


def test_validate_whole_toy_tree(toy_workdir: Path, capsys):
    work = toy_workdir
    run_chain(REPO, work, until="m3_missing")
    rc, entries = _report(work, capsys)
    assert rc == 0, [e for e in entries if not e["ok"]]
    by_dir = {Path(e["dataset"]).relative_to(work).as_posix(): e for e in entries}
    kinds = Counter(e["contract"] for e in entries)
    assert kinds["parquet"] == 8 and kinds["feature_table"] == 2 and kinds["text_tokens"] == 1
    assert by_dir["data/m3/images"]["contract"] == "tables"
    assert by_dir["data/mimic/cohort"]["contract"] == "tables"
    assert by_dir["data/m3/demo"]["contract"] == "skipped" and by_dir["data/m3/demo"]["reason"]
    # every folder of the tree is covered: by its own entry or by a skipped ancestor
    skipped = [k for k, e in by_dir.items() if e["contract"] == "skipped"]
    for p in (work / "data").rglob("*"):
        if p.is_dir():
            rel = p.relative_to(work).as_posix()
            assert rel in by_dir or any(rel.startswith(s + "/") for s in skipped) or not any(
                f.is_file() for f in p.iterdir()), rel

    # every Parquet dataset folder of the tree loads with `datasets` as exactly its shards
    import datasets
    datasets.disable_progress_bars()
    hf_split = {"val": "validation"}
    for e in entries:
        if e["contract"] == "parquet":
            ds = datasets.load_dataset(e["dataset"], cache_dir=str(work / "hf-cache"))
            assert {k: v.num_rows for k, v in ds.items()} == {
                hf_split.get(s, s): n for s, n in e["splits"].items()}, e["dataset"]

    # damage: a deleted manifest, a corrupt marker, a corrupt feature-table manifest
    xor = work / "data/xor/p0.0"
    (xor / MANIFEST).unlink()
    samples = work / "data/m3/samples/symile-m3-2-demo"
    marker = marker_path(next(samples.glob("train-*.parquet")))
    marker.write_text("{not json")
    feat = next((work / "data/features/m3/image").iterdir())
    (feat / MANIFEST).write_text("[1, 2")
    shutil.copy(next(feat.glob("part-*.parquet")), feat / "part-00007.parquet")
    rc, entries = _report(work, capsys)
    assert rc == 1
    bad = {Path(e["dataset"]).relative_to(work).as_posix(): e["problems"]
           for e in entries if not e["ok"]}
    assert set(bad) == {"data/xor/p0.0", "data/m3/samples/symile-m3-2-demo",
                        f"data/features/m3/image/{feat.name}"}
    assert "no manifest.json" in bad["data/xor/p0.0"][0]
    assert any(marker.name in p and "corrupt" in p for p in bad["data/m3/samples/symile-m3-2-demo"])
    assert "not valid JSON" in bad[f"data/features/m3/image/{feat.name}"][0]
