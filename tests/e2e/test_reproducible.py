"""Reproducible by hash: the toy chain run twice, in two fresh folders, writes byte-identical
files; run-varying facts (timings, rates, devices, host paths) only go to ``logs/``, which no
stage declares, so DVC's md5s of every out reproduce."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from e2e_chain import REPO, run_chain, toy_params
from symile_data.runlog import RUN_FACTS

NOT_OUTPUTS = (".chain", "logs")       # the helper's stage marks; the run log


def _files(work: Path) -> dict[str, str]:
    return {p.relative_to(work).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(work.rglob("*"))
            if p.is_file() and p.relative_to(work).parts[0] not in NOT_OUTPUTS}


def _keys(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _keys(v)}
    return {k for v in obj for k in _keys(v)} if isinstance(obj, list) else set()


def test_two_fresh_runs_write_identical_bytes(tmp_path: Path):
    works = []
    for name in ("a", "b"):
        work = tmp_path / name
        work.mkdir()
        (work / "params.yaml").write_text(yaml.safe_dump(toy_params(), sort_keys=False))
        run_chain(REPO, work)
        works.append(work)
    a, b = (_files(w) for w in works)
    assert len(a) > 100 and sorted(a) == sorted(b), sorted(set(a) ^ set(b))
    differ = sorted(k for k in a if a[k] != b[k])
    assert differ == [], f"files that differ between two fresh runs: {differ}"

    work = works[0]
    stray = {p: sorted(_keys(json.loads((work / p).read_text())) & RUN_FACTS)
             for p in a if p.endswith(".json")}
    assert {p: k for p, k in stray.items() if k} == {}     # no run fact left in any output

    # ... they are in the run log, outside every out, and the report links them
    logs = work / "logs"
    assert json.loads((logs / "models/m3/symile/timing.json").read_text())["wall_s"] > 0
    feats = json.loads((logs / "data/features/m3/timing.json").read_text())
    assert feats["modalities"]["image"]["seconds"] >= 0
    assert "seconds" in json.loads((logs / "data/m3/samples/timing.json").read_text())[
        "datasets"]["symile-m3-2-demo"]
    times = (logs / "reports/results.md/train_times.md").read_text()
    for run in ("m3/symile", "m3_missing/clip-p0.5", "mimic/clip"):
        row = next(line for line in times.splitlines() if line.startswith(f"| {run} |"))
        assert float(row.split("|")[2]) >= 0 and row.split("|")[3].strip() == "cpu"
    md = (work / "reports/results.md").read_text()
    assert "(../logs/reports/results.md/train_times.md)" in md and "train s" not in md
    outs = [o if isinstance(o, str) else next(iter(o))
            for st in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()
            for key in ("outs", "metrics", "plots") for o in st.get(key, [])]
    assert not [o for o in outs if o.split("/")[0] == "logs"]
    assert "/logs/" in (REPO / ".gitignore").read_text().split()
