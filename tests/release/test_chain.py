"""Both imports end in a trained and evaluated model, at toy size, on CPU.

Each profile runs with its CPU variant switched on as docs/release.md says (params-cpu.yaml
copied over params.yaml; then only the release location is set).
M3: the stages of ``profiles/m3-release/dvc.yaml`` run in-process (the profile's real wiring:
paths, flags, params sections) on a fake Parquet release: import -> tiny models -> features ->
training shards -> Symile / CLIP -> evaluation; then export-reference of the imported training
shards gives back the released lang / text / cls / cls_id columns.
MIMIC: the stages of ``profiles/mimic-release/dvc.yaml``: released tensors -> shards ->
Symile / CLIP -> retrieval evaluation.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import torch
import yaml

from fakes_m3 import make_parquet_release
from fakes_mimic import make_mimic_release
from symile_data.io.reader import split_files
from symile_data.publish.reference import export_reference

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
from e2e_chain import resolve_stages  # noqa: E402

PROFILE = REPO / "profiles/m3-release"


def _run_stage(argv: list[str]) -> None:
    assert argv[0] == "python" and argv[1].startswith("pipelines/"), argv
    spec = importlib.util.spec_from_file_location("stage", REPO / argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert module.main(argv[2:]) == 0, argv


def _cpu_profile(profile: Path, work: Path, data: dict) -> dict:
    """The documented switch (docs/release.md): params-cpu.yaml copied over the profile's
    params.yaml; then only the release location is set, as every user does."""
    text = (profile / "params-cpu.yaml").read_text()
    (work / "profiles" / profile.name).mkdir(parents=True)
    params = yaml.safe_load(text)
    for section, values in data.items():
        params[section].update(values)
    (work / "profiles" / profile.name / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def test_cpu_variants_differ_only_in_marked_keys():
    """params-cpu.yaml = params.yaml except the keys whose line says "# CPU"."""
    for profile in (PROFILE, REPO / "profiles/mimic-release"):
        gpu = yaml.safe_load((profile / "params.yaml").read_text())
        text = (profile / "params-cpu.yaml").read_text()
        cpu = yaml.safe_load(text)
        assert {s: sorted(v) for s, v in gpu.items()} == {s: sorted(v) for s, v in cpu.items()}
        marked = {ln.split(":")[0].strip() for ln in text.splitlines() if "# CPU" in ln
                  and ln.startswith("  ")}
        changed = {k for s in gpu for k in gpu[s] if gpu[s][k] != cpu[s][k]}
        assert changed and changed <= marked, (profile, changed - marked)


def test_m3_release_profile_end_to_end(tmp_path, monkeypatch):
    src = make_parquet_release(tmp_path / "rel", sizes=(160, 40, 40))
    work = tmp_path / "work"
    params = _cpu_profile(PROFILE, work, {"m3_release": {
        "source": "parquet", "local_dir": str(tmp_path / "rel")}})
    monkeypatch.chdir(work)
    stages = resolve_stages(PROFILE / "dvc.yaml", params)
    assert [n for n, _ in stages] == ["m3_release", "m3_release_tiny_models",
                                      "m3_release_features", "m3_release_shards",
                                      "m3_release_train@symile", "m3_release_train@clip",
                                      "m3_release_eval"]
    for _, argv in stages:
        _run_stage(argv)
    metrics = json.loads((work / "reports/m3-release/metrics.json").read_text())
    assert [r["method"] for r in metrics["runs"]] == ["symile", "clip"]
    assert all(r["n_queries"] == 40 and 0 <= r["accuracy"] <= 1 for r in metrics["runs"])
    assert metrics["chance"] == 1 / 4
    # the training shards hold the released rows; export-reference gives back their columns
    shards = work / "data/m3-release/shards/symile-m3-2-xs"
    export_reference(shards, tmp_path / "ref")
    for split in ("train", "val", "test"):
        df = src[split]
        def lines(n: str, s: str = split) -> list[str]:
            return (tmp_path / f"ref/{s}/{n}_{s}.txt").read_text().split("\n")
        assert lines("lang") == df.lang.tolist() and lines("words") == df.text.tolist()
        assert lines("cls") == df.cls.tolist()
        cls_id = torch.load(tmp_path / f"ref/{split}/cls_id_{split}.pt")
        assert cls_id.tolist() == df.cls_id.astype(float).tolist()
        assert pq.read_table(split_files(shards, split))["text"].to_pylist() == df.text.tolist()


def test_mimic_release_profile_trains_and_evaluates(tmp_path, monkeypatch):
    fake = make_mimic_release(tmp_path / "fake")
    profile = REPO / "profiles/mimic-release"
    work = tmp_path / "work"
    params = _cpu_profile(profile, work, {"mimic_release": {"release": str(fake["release"])}})
    monkeypatch.chdir(work)
    stages = resolve_stages(profile / "dvc.yaml", params)
    assert [n for n, _ in stages] == ["mimic_release", "mimic_release_train@symile",
                                      "mimic_release_train@clip", "mimic_release_eval"]
    for _, argv in stages:
        _run_stage(argv)
    rep = json.loads((work / "reports/mimic-release/metrics.json").read_text())
    assert [r["method"] for r in rep["runs"]] == ["symile", "clip"]
    assert rep["chance"] == 0.1 and all(r["n_queries"] == 15 for r in rep["runs"])
    manifest = json.loads((work / "data/mimic-release/shards/symile-mimic/manifest.json")
                          .read_text())
    assert manifest["flags"]["mimic_derived"] is True
