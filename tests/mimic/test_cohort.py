"""Cohort semantics (SPEC section 3) at every window edge, and equality with the loop."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import CohortConfig, LAB_ITEMIDS
from symile_data.mimic.labevents import convert_labevents, load_cohort_labs
from symile_data.mimic.loop_reference import cohort_loop
from symile_data.mimic.readers import (MimicInputError, read_admissions,
                                       read_chexpert_studies, read_cxr_metadata,
                                       read_ecg_records)

from .conftest import LAB0, LAB1

CFG = CohortConfig(train_size=0.5, val_size=0.25, seed=0, ecg_check_threads=2)


def _labs(t, s, hours=0.0):
    t.lab(s, LAB0, hours, 3.0)


@pytest.fixture
def edge_cohort(tree, tmp_path):
    t = tree
    # 1: ECG at exactly -24 h, labs at exactly -24 h / +24 h (earliest wins), CXR at +72 h
    t.admission(10000001, 1)
    t.ecg_record(10000001, 101, -24.0)
    t.lab(10000001, LAB0, -24.0, 1.0)
    t.lab(10000001, LAB0, -23.0, 2.0)
    t.lab(10000001, LAB1, 24.0, 5.0)
    t.lab(10000001, LAB1, 1.0, None)                      # no valuenum: ignored
    t.lab(10000001, LAB_ITEMIDS[2], 24.0 + 1 / 3600, 9.0)  # one second late: out
    t.cxr(10000001, 111, "d1", 72.0)
    # 2: ECG at exactly +24 h (one before -24 h is out); CXR at exactly +24 h is out
    t.admission(10000002, 2)
    t.ecg_record(10000002, 201, -24.0 - 1 / 60)
    t.ecg_record(10000002, 202, 24.0)
    _labs(t, 10000002)
    t.cxr(10000002, 211, "d2a", 24.0)
    t.cxr(10000002, 212, "d2b", 30.0)
    # 3: NaN then all-zero then valid ECG; a lateral-only study before the PA one
    t.admission(10000003, 3)
    t.ecg_record(10000003, 301, -1.0, "nan")
    t.ecg_record(10000003, 302, 0.0, "zero")
    t.ecg_record(10000003, 303, 1.0)
    _labs(t, 10000003)
    t.cxr(10000003, 311, "d3a", 30.0, view="LATERAL")
    t.cxr(10000003, 312, "d3b", 40.0, view="PA")
    # 4: no lab inside the window -> dropped
    t.admission(10000004, 4)
    t.ecg_record(10000004, 401, 0.0)
    t.lab(10000004, LAB0, -30.0, 1.0)
    t.cxr(10000004, 411, "d4", 30.0)
    # 5: earliest AP/PA has no JPG -> the next one
    t.admission(10000005, 5)
    t.ecg_record(10000005, 501, 0.0)
    _labs(t, 10000005)
    t.cxr(10000005, 511, "d5a", 30.0, file="none")
    t.cxr(10000005, 512, "d5b", 31.0, view="AP")
    # 6: earliest AP/PA study lacks CheXpert labels -> dropped (reference order)
    t.admission(10000006, 6)
    t.ecg_record(10000006, 601, 0.0)
    _labs(t, 10000006)
    t.cxr(10000006, 611, "d6a", 30.0, view="AP", chexpert=False)
    t.cxr(10000006, 612, "d6b", 40.0)
    # 7: two admissions 36 h apart share the ECG and the lab
    t.admission(10000007, 71, 0.0)
    t.admission(10000007, 72, 36.0)
    t.ecg_record(10000007, 701, 20.0)
    t.lab(10000007, LAB0, 20.0, 7.0)
    t.cxr(10000007, 711, "d7a", 50.0)
    t.cxr(10000007, 712, "d7b", 100.0)
    # 8: StudyTime fractions: +72 h + 0.5 s is out, +24 h + 0.25 s is in
    t.admission(10000008, 8)
    t.ecg_record(10000008, 801, 0.0)
    _labs(t, 10000008)
    t.cxr(10000008, 811, "d8a", 72.0 + 0.5 / 3600)
    t.cxr(10000008, 812, "d8b", 24.0 + 0.25 / 3600)
    # 9: unreadable WFDB header, then a valid record
    t.admission(10000009, 9)
    t.ecg_record(10000009, 901, -2.0, "bad_header")
    t.ecg_record(10000009, 902, -1.0)
    _labs(t, 10000009)
    t.cxr(10000009, 911, "d9", 30.0)
    # 10: two ECGs at the same time: the lower study_id wins
    t.admission(10000010, 10)
    t.ecg_record(10000010, 1002, 0.0)
    t.ecg_record(10000010, 1001, 0.0)
    _labs(t, 10000010)
    t.cxr(10000010, 1011, "d10", 30.0)
    paths = t.write()
    out = tmp_path / "cohort"
    report = build_cohort(paths["mimic_iv"], paths["ecg"], paths["cxr"], out, CFG)
    return pd.read_parquet(out / "cohort.parquet").set_index("hadm_id"), report, out


def test_window_edges_and_choices(edge_cohort):
    df, report, out = edge_cohort
    assert sorted(df.index) == [1, 2, 3, 5, 8, 9, 10, 71, 72]
    assert df.loc[1, "ecg_study_id"] == 101 and df.loc[1, "cxr_dicom_id"] == "d1"
    assert df.loc[1, f"lab_{LAB0}"] == 1.0 and df.loc[1, f"lab_{LAB1}"] == 5.0
    assert np.isnan(df.loc[1, f"lab_{LAB_ITEMIDS[2]}"])
    assert df.loc[2, "ecg_study_id"] == 202 and df.loc[2, "cxr_dicom_id"] == "d2b"
    assert df.loc[3, "ecg_study_id"] == 303 and df.loc[3, "cxr_dicom_id"] == "d3b"
    assert df.loc[5, "cxr_dicom_id"] == "d5b"
    assert 4 not in df.index and 6 not in df.index
    assert df.loc[71, "ecg_study_id"] == df.loc[72, "ecg_study_id"] == 701
    assert df.loc[71, f"lab_{LAB0}"] == df.loc[72, f"lab_{LAB0}"] == 7.0
    assert df.loc[71, "cxr_dicom_id"] == "d7a" and df.loc[72, "cxr_dicom_id"] == "d7b"
    assert df.loc[8, "cxr_dicom_id"] == "d8b"
    assert df.loc[8, "cxr_time"] == pd.Timestamp("2150-01-11 12:00:00.250")
    assert df.loc[9, "ecg_study_id"] == 902
    assert df.loc[10, "ecg_study_id"] == 1001
    assert df.loc[3, "cxr_path"] == "files/p10/p10000003/s312/d3b.jpg"
    checks = pd.read_parquet(out / "ecg_checks.parquet").set_index("study_id")
    assert checks.loc[301, "error"] == "nan" and checks.loc[302, "error"] == "all_zero"
    assert checks.loc[901, "error"].startswith("unreadable") and ".hea" in checks.loc[901, "error"]
    assert report["ecg"]["records_unreadable"] == 1 and report["cxr"]["missing_files"] == 1
    assert report["cohort"]["admissions"] == 9


def test_splits_patient_disjoint(edge_cohort):
    df, _, _ = edge_cohort
    per_subject = df.groupby("subject_id")["split"].nunique()
    assert (per_subject == 1).all()
    assert set(df["split"]) <= {"train", "val", "test"}


def test_missing_column_is_named(tree, tmp_path):
    tree.admission(10000001, 1)
    paths = tree.write()
    p = paths["cxr"] / "mimic-cxr-2.0.0-metadata.csv.gz"
    pd.read_csv(p).drop(columns=["ViewPosition"]).to_csv(p, index=False)
    with pytest.raises(MimicInputError, match="metadata.csv.gz: missing column.*ViewPosition"):
        read_cxr_metadata(paths["cxr"])


def test_bad_timestamp_is_named(tree):
    tree.admission(10000001, 1)
    paths = tree.write()
    p = paths["mimic_iv"] / "hosp" / "admissions.csv.gz"
    pd.DataFrame({"subject_id": [1], "hadm_id": [2], "admittime": ["yesterday"]}).to_csv(
        p, index=False)
    with pytest.raises(MimicInputError, match="admittime row 2.*yesterday"):
        read_admissions(paths["mimic_iv"])


def test_vectorised_equals_loop(synth_small, tmp_path):
    r = synth_small
    rep = build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path / "c",
                       CFG)
    df = pd.read_parquet(tmp_path / "c" / "cohort.parquet").set_index("hadm_id")
    lab = pd.DataFrame(load_cohort_labs(
        convert_labevents(r / "mimic-iv/hosp/labevents.csv.gz", tmp_path / "l.parquet",
                          block_bytes=1 << 16), LAB_ITEMIDS))
    ref = cohort_loop(read_admissions(r / "mimic-iv"), read_ecg_records(r / "mimic-iv-ecg"),
                      lab, read_cxr_metadata(r / "mimic-cxr-jpg"),
                      read_chexpert_studies(r / "mimic-cxr-jpg"), r / "mimic-iv-ecg",
                      r / "mimic-cxr-jpg")
    assert rep["cohort"]["admissions"] == len(ref) > 50
    assert sorted(df.index) == sorted(ref)
    for h, (ecg_id, dicom, labs) in ref.items():
        assert df.loc[h, "ecg_study_id"] == ecg_id and df.loc[h, "cxr_dicom_id"] == dicom
        np.testing.assert_array_equal(df.loc[h, [f"lab_{i}" for i in LAB_ITEMIDS]]
                                      .to_numpy(float), labs)
