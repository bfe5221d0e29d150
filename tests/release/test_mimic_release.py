"""Symile-MIMIC from the release, on a fake release made from a generated MIMIC tree:
tensors -> shards (rows equal the source), round trip through export-reference, the .npy
layout, ``mimic cohort --from-release`` (pinned cohort, failures named), bad inputs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from fakes_mimic import make_mimic_release
from symile_data.cli import main as cli_main
from symile_data.io.reader import split_files
from symile_data.mimic.build import build_shards
from symile_data.mimic.config import ShardsConfig
from symile_data.mimic.release_tensors import (ReleaseInputError, cxr_to_uint8, import_tensors,
                                               long_to_sets)
from symile_data.publish.reference import export_reference

COLS = ("subject_id", "ecg", "cxr", "labs_percentiles", "labs_observed")


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> dict[str, Path]:
    return make_mimic_release(tmp_path_factory.mktemp("mimic"))


def _by_hadm(dataset: Path, split: str) -> dict[int, dict]:
    t = pq.read_table(split_files(dataset, split)).to_pylist()
    return {r["hadm_id"]: r for r in t}


def test_tensors_import_rows_equal_source_and_round_trip(fake, tmp_path):
    rep = import_tensors(fake["release"], tmp_path / "imported")
    assert rep["rows"] == {"train": 30, "val": 15, "test": 15} and rep["cxr_inexact_rows"] == 0
    assert rep["n_candidates"] == 10
    for split in ("train", "val", "test"):
        src = _by_hadm(fake["shards"] / "symile-mimic", split)
        got = _by_hadm(tmp_path / "imported/symile-mimic", split)
        assert set(src) == set(got)
        for h, row in src.items():
            assert all(row[c] == got[h][c] for c in COLS), (split, h)
    # round trip: export-reference of the import gives back the released tensors
    export_reference(tmp_path / "imported", tmp_path / "back")
    files = sorted(p.relative_to(fake["release"]) for p in fake["release"].rglob("*.pt"))
    assert len(files) == 2 * 5 + 2 * 7
    for rel in files:
        a, b = torch.load(fake["release"] / rel), torch.load(tmp_path / "back" / rel)
        assert a.dtype == b.dtype and torch.equal(a, b), rel
    def sizes(p: Path) -> dict:
        return {k: v for k, v in json.loads((p / "metadata.json").read_text()).items()
                if k.endswith("size")}
    assert sizes(fake["release"]) == sizes(tmp_path / "back")
    # the .npy layout of the PhysioNet files (data_npy/{split}/) imports the same rows
    npy = tmp_path / "npy"
    for p in fake["release"].rglob("*.pt"):
        dest = npy / "data_npy" / p.parent.name / (p.stem + ".npy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        np.save(dest, torch.load(p).numpy())
    for csv in fake["release"].glob("*.csv"):
        shutil.copy(csv, npy / csv.name)
    import_tensors(npy, tmp_path / "from_npy")
    for split in ("train", "val", "test"):
        a = sorted((tmp_path / "imported/symile-mimic").glob(f"{split}-*.parquet"))
        b = sorted((tmp_path / "from_npy/symile-mimic").glob(f"{split}-*.parquet"))
        assert [pq.read_table(x) for x in a] == [pq.read_table(x) for x in b]


def test_release_exported_back_is_byte_identical(fake, tmp_path):
    """A release whose .pt files are plain ``torch.save`` output (as the reference wrote
    them), imported and exported back: every .pt equals the released file byte for byte, so
    a checksum comparison with the PhysioNet files passes (it failed on 20 of 24 files: the
    streamed files kept the skeleton's serialization id)."""
    rel = tmp_path / "release"
    shutil.copytree(fake["release"], rel)
    files = sorted(p.relative_to(rel) for p in rel.rglob("*.pt"))
    for f in files:
        torch.save(torch.load(rel / f), rel / f)
    import_tensors(rel, tmp_path / "imported")
    export_reference(tmp_path / "imported", tmp_path / "back")
    differ = [str(f) for f in files
              if (rel / f).read_bytes() != (tmp_path / "back" / f).read_bytes()]
    assert len(files) == 24 and differ == []


def test_cxr_inversion_is_exact_and_flags_colour():
    u = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8)).astype(np.float32) / 255
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    x = (np.repeat(u, 3, axis=1) - mean) / std
    gray, exact = cxr_to_uint8(x)
    assert exact.all() and (gray == np.rint(u[:, 0] * 255).reshape(3, -1)).all()
    x[1, 2] += 0.3                                          # channels disagree: not a grayscale
    assert cxr_to_uint8(x)[1].tolist() == [True, False, True]


def test_long_format_checks():
    hadm = np.array([1, 2, 3, 2, 3, 1, 3, 1, 2])
    lab_h = np.array([1, 2, 3, 1, 1, 2, 2, 3, 3])
    label = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0])
    q, cand, pos = long_to_sets(hadm, lab_h, label, 0, "x")
    assert q.tolist() == [0, 1, 2] and cand.shape == (3, 3)
    assert (cand[np.arange(3), pos] == [1, 2, 3]).all()
    rest = [[c for j, c in enumerate(row) if j != p] for row, p in zip(cand.tolist(), pos)]
    assert rest == [[2, 3], [1, 3], [1, 2]]                 # negatives keep the release order
    with pytest.raises(ReleaseInputError, match="same number of negatives"):
        long_to_sets(hadm, np.array([1, 2, 3, 1, 1, 1, 2, 3, 3]), label, 0, "x")


def test_cohort_from_release_pins_rows_and_names_failures(fake, tmp_path):
    rc = cli_main(["mimic", "cohort", "--from-release", str(fake["release"]), "--mimic-iv",
                   str(fake["mimic_iv"]), "--ecg", str(fake["ecg"]), "--cxr", str(fake["cxr"]),
                   "--out", str(tmp_path / "cohort")])
    assert rc == 0
    report = json.loads((tmp_path / "cohort/report.json").read_text())
    assert report["released"]["in_no_split"] == 1 and report["failed"] == 0
    pinned = pq.read_table(tmp_path / "cohort/cohort.parquet").to_pandas()
    orig = pq.read_table(fake["cohort"] / "cohort.parquet").to_pandas()
    key = ["hadm_id", "subject_id", "ecg_study_id", "cxr_dicom_id", "split", "ecg_path",
           "cxr_path", "admittime", "ecg_time", "cxr_time"]
    merged = pinned.merge(orig, on="hadm_id", suffixes=("", "_o"))
    assert len(merged) == len(pinned) == 60
    for c in key[1:]:
        assert (merged[c] == merged[c + "_o"]).all(), c
    labs = [c for c in pinned if c.startswith("lab_")]
    np.testing.assert_array_equal(merged[labs].to_numpy(), merged[[c + "_o" for c in labs]]
                                  .to_numpy())
    # the rest of the chain unchanged: shards from the pinned cohort equal the source shards
    build_shards(tmp_path / "cohort", fake["ecg"], fake["cxr"], tmp_path / "shards",
                 ShardsConfig())
    for split in ("train", "val", "test"):
        a = _by_hadm(fake["shards"] / "symile-mimic", split)
        b = _by_hadm(tmp_path / "shards/symile-mimic", split)
        assert a.keys() == b.keys() and all(a[h][c] == b[h][c] for h in a for c in COLS)
    # a released admission whose CXR file is gone is a failure naming the file
    row = pinned.iloc[0]
    gone = fake["cxr"] / row.cxr_path
    moved = tmp_path / "moved.jpg"
    shutil.move(gone, moved)
    try:
        rep = cli_main(["mimic", "cohort", "--from-release", str(fake["release"]), "--mimic-iv",
                        str(fake["mimic_iv"]), "--ecg", str(fake["ecg"]), "--cxr",
                        str(fake["cxr"]), "--out", str(tmp_path / "cohort2")])
    finally:
        shutil.move(moved, gone)
    assert rep == 0
    fails = pq.read_table(tmp_path / "cohort2/release_failures.parquet").to_pylist()
    assert [f["hadm_id"] for f in fails] == [row.hadm_id]
    assert str(gone) in fails[0]["error"] and "not found" in fails[0]["error"]
    assert len(pq.read_table(tmp_path / "cohort2/cohort.parquet")) == 59


def test_missing_release_file_is_one_clear_error(fake, tmp_path):
    rel = tmp_path / "rel"
    shutil.copytree(fake["release"], rel)
    (rel / "val/ecg_val.pt").unlink()
    with pytest.raises(ReleaseInputError, match="val/ecg_val.pt"):
        import_tensors(rel, tmp_path / "out")
    (rel / "train.csv").unlink()
    with pytest.raises(ReleaseInputError, match="train.csv"):
        import_tensors(rel, tmp_path / "out")


def test_import_of_another_release_over_the_first_gives_its_shards(fake, tmp_path, caplog):
    """Issue 21: the shards of release A in --out are not resumed for release B (same rows,
    same seed: the params hash alone matched)."""
    b = tmp_path / "b"
    shutil.copytree(fake["release"], b)
    pct = b / "train" / "labs_percentiles_train.pt"
    torch.save(1.0 - torch.load(pct), pct)
    import_tensors(b, tmp_path / "clean_b")
    import_tensors(fake["release"], tmp_path / "out")
    with caplog.at_level("WARNING"):
        import_tensors(b, tmp_path / "out")
    assert "not reused (inputs.train/labs_percentiles_train.pt" in caplog.text
    for d in ("symile-mimic", "symile-mimic-retrieval"):
        got, want = tmp_path / "out" / d, tmp_path / "clean_b" / d
        assert sorted(p.name for p in got.glob("*.parquet")) == \
            sorted(p.name for p in want.glob("*.parquet"))
        for p in want.glob("*.parquet"):
            assert (got / p.name).read_bytes() == p.read_bytes(), p.name
        assert (got / "manifest.json").read_text().replace(str(b), "") == \
            (want / "manifest.json").read_text().replace(str(b), "")


def test_one_altered_cxr_row_counts_once_and_is_logged(fake, tmp_path, caplog):
    """One train CXR row altered (channel 1 no longer the grayscale of the others): the report
    counts 1 row (the writer reads a range twice: size probe + shard) and a WARNING names it."""
    import logging
    rel = tmp_path / "rel"
    shutil.copytree(fake["release"], rel)
    path = next(p for p in rel.rglob("cxr_train.pt"))
    cxr = torch.load(path).clone()
    cxr[0, 1] += 0.3
    torch.save(cxr, path)
    hadm = int(torch.load(path.with_name("hadm_id_train.pt"))[0])
    with caplog.at_level(logging.WARNING, logger="symile_data.mimic.release_tensors"):
        rep = import_tensors(rel, tmp_path / "imported")
    assert rep["cxr_inexact_rows"] == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "1 CXR row(s)" in warned[0] and f"hadm_id {hadm}" in warned[0]
