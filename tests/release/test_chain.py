"""Both imports end in a trained and evaluated model, at toy size, on CPU.

M3: the stages of ``profiles/m3-release/dvc.yaml`` run in-process (the profile's real wiring:
paths, flags, params sections) on a fake Parquet release: import -> features (tiny models) ->
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
from symile_data.features.tiny_models import write_tiny_models
from symile_data.io.reader import split_files
from symile_data.publish.reference import export_reference

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
from e2e_chain import TOY, resolve_stages  # noqa: E402

PROFILE = REPO / "profiles/m3-release"


def _run_stage(argv: list[str]) -> None:
    assert argv[0] == "python" and argv[1].startswith("pipelines/"), argv
    spec = importlib.util.spec_from_file_location("stage", REPO / argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert module.main(argv[2:]) == 0, argv


def test_m3_release_profile_end_to_end(tmp_path, monkeypatch):
    src = make_parquet_release(tmp_path / "rel", sizes=(160, 40, 40))
    models = write_tiny_models(tmp_path / "tiny", seed=0)
    params = yaml.safe_load((PROFILE / "params.yaml").read_text())
    params["m3_release"].update(source="parquet", local_dir=str(tmp_path / "rel"),
                                batch_rows=64)
    params["features_m3"].update(image_model=models["image"], audio_model=models["audio"],
                                 text_model=models["text"], image_revision=None,
                                 audio_revision=None, text_revision=None,
                                 audio_pooling="real_frames", device="cpu", num_workers=0,
                                 batch_size_image=16, batch_size_audio=4, items_per_part=2000)
    params["m3_train"].update({**TOY["m3_train"], "text_model": models["text"],
                               "ckpt_every_steps": 0, "torch_threads": 1, "epochs": 2})
    params["m3_eval"].update(bootstrap_resamples=3)
    work = tmp_path / "work"
    (work / "profiles/m3-release").mkdir(parents=True)
    (work / "profiles/m3-release/params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(work)
    stages = resolve_stages(PROFILE / "dvc.yaml", params)
    assert [n for n, _ in stages] == ["m3_release", "m3_release_features", "m3_release_shards",
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
    params = yaml.safe_load((profile / "params.yaml").read_text())
    params["mimic_release"]["release"] = str(fake["release"])
    params["mimic_train"].update({**TOY["mimic_train"], "shuffle_buffer": 2000,
                                  "num_workers": 0})
    params["mimic_eval"].update(bootstrap_resamples=3)
    work = tmp_path / "work"
    (work / "profiles/mimic-release").mkdir(parents=True)
    (work / "profiles/mimic-release/params.yaml").write_text(yaml.safe_dump(params))
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
