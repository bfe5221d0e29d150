"""Images: folder layouts, bad files recorded per image, missing folders, resume, hub path."""
from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from symile_data.m3.build import build_images, build_translations
from symile_data.m3.config import M3ImagesConfig, M3TranslationsConfig
from symile_data.m3.demo import draw_image

import numpy as np

SYNS = ("n01443537", "n09472597")  # goldfish, volcano


@pytest.fixture()
def two_classes(tmp_path):
    build_translations(tmp_path / "tr", M3TranslationsConfig(classes=SYNS))
    root = tmp_path / "plain" / "train"
    rng = np.random.default_rng(0)
    for k, syn in enumerate(SYNS):
        (root / syn).mkdir(parents=True)
        for i in range(2):
            (root / syn / f"{syn}_{i}.JPEG").write_bytes(draw_image(k, 2, 64, rng))
    return tmp_path


def test_corrupt_and_empty_files_are_recorded_not_fatal(two_classes):
    root = two_classes / "plain" / "train" / SYNS[0]
    (root / "zero.JPEG").write_bytes(b"")
    (root / "broken.JPEG").write_bytes((root / f"{SYNS[0]}_0.JPEG").read_bytes()[:200])
    cfg = M3ImagesConfig(root=str(two_classes / "plain"), resize=32, scheduler="synchronous")
    rep = build_images(two_classes / "out", cfg, two_classes / "tr")
    assert (rep["images"], rep["ok"], rep["failed"]) == (6, 4, 2)
    t = pq.read_table(two_classes / "out" / "images.parquet").to_pandas()
    errors = dict(zip(t["source_path"].str.rsplit("/", n=1).str[-1], t["error"]))
    assert errors["zero.JPEG"] == "empty file (0 bytes)"
    assert errors["broken.JPEG"].startswith("cannot decode image")
    ok = t[t.status == "ok"]
    assert ((ok.width == 32) & (ok.height == 32)).all()
    assert json.loads((two_classes / "out" / "report.json").read_text())["failed"] == 2


def test_missing_synset_folder_is_a_clear_error(two_classes):
    shutil.rmtree(two_classes / "plain" / "train" / SYNS[1])
    cfg = M3ImagesConfig(root=str(two_classes / "plain"), scheduler="synchronous")
    with pytest.raises(FileNotFoundError, match=f"train/{SYNS[1]}: missing synset folder "
                                                "for class 'volcano'"):
        build_images(two_classes / "out", cfg, two_classes / "tr")


def test_resume_reuses_outputs_and_threads_match(two_classes):
    cfg = M3ImagesConfig(root=str(two_classes / "plain"), resize=32, scheduler="synchronous")
    build_images(two_classes / "out", cfg, two_classes / "tr")
    first = (two_classes / "out" / "images.parquet").read_bytes()
    f = next((two_classes / "out" / "files").rglob("*.jpg"))
    mtime = f.stat().st_mtime_ns
    cfg2 = M3ImagesConfig(root=str(two_classes / "plain"), resize=32, scheduler="threads",
                          batch_size=1)
    build_images(two_classes / "out", cfg2, two_classes / "tr")
    assert f.stat().st_mtime_ns == mtime
    assert (two_classes / "out" / "images.parquet").read_bytes() == first


def test_hub_source_streams_through_datasets(two_classes):
    datasets = pytest.importorskip("datasets")
    from symile_data.m3.classes import load_classes
    cls = load_classes()
    recs = [{"image": {"bytes": p.read_bytes(), "path": p.name}, "label": cls.cls_id(p.parent.name)}
            for p in sorted((two_classes / "plain" / "train").rglob("*.JPEG"))]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    hub = two_classes / "hub" / "data"
    hub.mkdir(parents=True)
    datasets.Dataset.from_list(recs, features=feats).to_parquet(str(hub / "train.parquet"))
    cfg = M3ImagesConfig(source="hub", hub_dataset=str(two_classes / "hub"),
                         max_images_per_class=1, scheduler="synchronous")
    rep = build_images(two_classes / "out", cfg, two_classes / "tr")
    assert rep["ok"] == 2 and rep["classes_without_images"] == []
