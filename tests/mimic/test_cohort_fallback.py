"""A chosen ECG or CXR that cannot be used is skipped for the next candidate in its window
(issue 21, point 6): the admission is kept with that candidate, the skipped file is a "failed"
row of ecg_checks / cxr_checks with its reason, counts are in report.json, and the shards
build every cohort row (a file that still fails there is a recorded failure)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from symile_data.mimic.build import build_shards
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import CohortConfig, ShardsConfig
from symile_data.mimic.images import cxr_problem

from .conftest import LAB0
from .test_io import _dicom

CFG = CohortConfig(train_size=0.5, val_size=0.25, seed=0, ecg_check_threads=2)


def _adm(t, s: int, h: int, ecg=("ok",), cxr=("jpg",)):
    """Admission h of subject s: ECGs at -2 h, -1 h, ... and CXRs at +30 h, +31 h, ... of the
    given kinds (earliest first), one lab; study ids s*10 + k (ECG), s*10 + 5 + k (CXR)."""
    t.admission(s, h)
    for k, kind in enumerate(ecg):
        t.ecg_record(s, s * 10 + k, -2.0 + k, kind)
    for k, kind in enumerate(cxr):
        t.cxr(s, s * 10 + 5 + k, f"d{h}{'abc'[k]}", 30.0 + k, file=kind)
    t.lab(s, LAB0, 0.0, 3.0)


@pytest.fixture
def bad_files(tree, tmp_path):
    t = tree
    _adm(t, 10000001, 1, cxr=("empty", "jpg"))          # empty chosen CXR, valid second
    _adm(t, 10000002, 2, cxr=("truncated", "jpg"))      # truncated chosen CXR, valid second
    _adm(t, 10000003, 3, ecg=("short", "ok"))           # (2500, 12) record, valid second
    _adm(t, 10000004, 4, ecg=("constant", "ok"))        # flat non-zero record, valid second
    _adm(t, 10000005, 5, cxr=("truncated",))            # only candidate bad -> dropped
    _adm(t, 10000006, 6, ecg=("short",))                # only candidate bad -> dropped
    _adm(t, 10000007, 7)                                # all fine
    for s in range(10000008, 10000020):                 # more rows for three splits
        _adm(t, s, s - 10000000)
    paths = t.write()
    out = tmp_path / "cohort"
    report = build_cohort(paths["mimic_iv"], paths["ecg"], paths["cxr"], out, CFG)
    return paths, out, report


def _checks(out, name, key):
    return pd.read_parquet(out / f"{name}.parquet").set_index(key)


def test_bad_chosen_cxr_is_skipped_for_the_next(bad_files):
    _, out, report = bad_files
    df = pd.read_parquet(out / "cohort.parquet").set_index("hadm_id")
    assert df.loc[1, "cxr_dicom_id"] == "d1b" and df.loc[2, "cxr_dicom_id"] == "d2b"
    assert df.loc[1, "cxr_path"] == "files/p10/p10000001/s100000016/d1b.jpg"
    c = _checks(out, "cxr_checks", "dicom_id")
    assert (c.loc[["d1a", "d2a", "d5a"], "status"] == "failed").all()
    assert c.loc["d1a", "error"].startswith("empty file:") and "d1a.jpg" in c.loc["d1a", "error"]
    assert c.loc["d2a", "error"].startswith("unreadable:") and "truncated JPEG" in \
        c.loc["d2a", "error"]
    assert c.loc["d1a", "path"] == "files/p10/p10000001/s100000015/d1a.jpg"
    assert (c.loc[["d1b", "d2b", "d7a"], "status"] == "ok").all()
    assert c.loc[["d1b", "d2b"], "error"].isna().all()
    assert report["cxr"]["empty_files"] == 1 and report["cxr"]["unreadable_files"] == 2
    assert report["cxr"]["missing_files"] == 0


def test_bad_chosen_ecg_is_skipped_for_the_next(bad_files):
    _, out, report = bad_files
    df = pd.read_parquet(out / "cohort.parquet").set_index("hadm_id")
    assert df.loc[3, "ecg_study_id"] == 100000031 and df.loc[4, "ecg_study_id"] == 100000041
    e = _checks(out, "ecg_checks", "study_id")
    assert e.loc[100000030, "status"] == "failed"
    assert e.loc[100000030, "error"] == "bad_shape (2500, 12), expected (5000, 12)"
    assert e.loc[100000040, "error"] == "constant"
    assert e.loc[100000060, "error"].startswith("bad_shape")
    assert (e.loc[[100000031, 100000041], "status"] == "ok").all()
    assert report["ecg"]["records_bad_shape"] == 2 and report["ecg"]["records_constant"] == 1


def test_only_candidate_bad_drops_with_reason(bad_files):
    _, out, report = bad_files
    df = pd.read_parquet(out / "cohort.parquet")
    assert sorted(df["hadm_id"]) == [1, 2, 3, 4, *range(7, 20)]
    assert report["cohort"]["admissions"] == 17
    assert _checks(out, "cxr_checks", "dicom_id").loc["d5a", "status"] == "failed"
    assert _checks(out, "ecg_checks", "study_id").loc[100000060, "status"] == "failed"
    # 5 had a (bad) CXR candidate, 6 a (bad) ECG candidate: both counted, neither kept
    assert report["cxr"]["admissions_checked"] == 19
    assert report["cxr"]["admissions_with_file"] == 18
    assert report["ecg"]["admissions_checked"] == 18
    assert report["ecg"]["admissions_with_valid"] == 17


def test_shards_build_every_kept_admission(bad_files, tmp_path):
    """The cohort's files decode at shard time; one spoiled afterwards is a recorded failure."""
    paths, out, _ = bad_files
    df = pd.read_parquet(out / "cohort.parquet").set_index("hadm_id")
    base = paths["ecg"] / df.loc[8, "ecg_path"]
    base.with_name(base.name + ".dat").write_bytes(np.zeros(5000 * 12, "<i2").tobytes())
    rep = build_shards(out, paths["ecg"], paths["cxr"], tmp_path / "shards",
                       ShardsConfig(n_candidates=2))
    assert rep["cohort_rows"] == 17 and rep["ok"] == 16 and rep["failed"] == 1
    fail = pd.read_parquet(tmp_path / "shards" / "failures.parquet").set_index("hadm_id")
    assert fail.loc[8, "status"] == "failed" and "all_zero" in fail.loc[8, "error"]
    assert (fail.drop(index=8)["status"] == "ok").all()


def test_cxr_problem_dicom(tmp_path):
    ramp = np.tile(np.linspace(0, 4095, 64), (48, 1)).astype(np.uint16)
    _dicom(tmp_path / "a.dcm", ramp, bits=12)
    assert cxr_problem(tmp_path / "a.dcm") is None
    b = (tmp_path / "a.dcm").read_bytes()
    (tmp_path / "t.dcm").write_bytes(b[:-100])
    assert "truncated DICOM pixel data" in cxr_problem(tmp_path / "t.dcm")
    (tmp_path / "e.dcm").write_bytes(b"")
    assert cxr_problem(tmp_path / "e.dcm").startswith("empty file:")
    (tmp_path / "h.dcm").write_bytes(b[:200])
    assert cxr_problem(tmp_path / "h.dcm").startswith("unreadable:")
    assert cxr_problem(tmp_path / "none.dcm").startswith("missing file:")


def test_skips_same_bytes_per_bucket(bad_files, tmp_path):
    """The skips do not depend on the bucketing: one admission a bucket, same files."""
    paths, out, _ = bad_files
    build_cohort(paths["mimic_iv"], paths["ecg"], paths["cxr"], tmp_path / "b1", CFG,
                 bucket_admissions=1)
    for name in ("cohort.parquet", "ecg_checks.parquet", "cxr_checks.parquet", "report.json"):
        assert (out / name).read_bytes() == (tmp_path / "b1" / name).read_bytes(), name
