"""Full-size MIMIC in bounded memory, proved at toy size: chunks smaller than the data, and
streamed results identical to whole-table results (issue 11)."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from symile_data.mimic import labevents
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import LAB_ITEMIDS, CohortConfig
from symile_data.mimic.intervals import window_ranges
from symile_data.mimic.labevents import (convert_labevents, load_cohort_labs,
                                         stream_cohort_labs)
from symile_data.mimic.rowfile import RowFile

CFG = CohortConfig(train_size=0.5, val_size=0.25, seed=0, ecg_check_threads=2)
H = 3600


def whole_table_labs(pq_path, subj, lo, hi):
    """The pre-streaming algorithm: every row of the 50 in memory, one interval join."""
    labs, k = load_cohort_labs(pq_path, LAB_ITEMIDS), len(LAB_ITEMIDS)
    q_group = np.repeat(subj * k, k) + np.tile(np.arange(k), len(subj))
    order, a, b = window_ranges(labs["subject_id"] * k + labs["item_idx"], labs["t_s"],
                                [labs["labevent_id"]], q_group, np.repeat(lo, k),
                                np.repeat(hi, k))
    out = np.full(len(q_group), np.nan)
    out[b > a] = labs["valuenum"][order[a[b > a]]]
    return out.reshape(len(subj), k)


def random_labevents(path, n_rows=3000, seed=0):
    """Few subjects, coarse times (many ties in charttime), labevent_ids not in time order."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2150-01-01").value // 10**9
    items = np.r_[np.asarray(LAB_ITEMIDS[:6]), 50800]
    df = pd.DataFrame({
        "labevent_id": rng.permutation(n_rows) + 1,
        "subject_id": 10_000_000 + rng.integers(0, 12, n_rows), "hadm_id": "",
        "itemid": rng.choice(items, n_rows),
        "charttime": pd.to_datetime(t0 + rng.integers(0, 40, n_rows) * 6 * H, unit="s"),
        "valuenum": np.where(rng.random(n_rows) < 0.1, np.nan, rng.normal(5, 2, n_rows).round(3)),
        "valueuom": rng.choice(["mg/dL", "mg/dl", "MG/DL", "mEq/L", ""], n_rows)})
    df.to_csv(path, index=False, compression="gzip")
    return t0


def test_streamed_labs_equal_whole_table(tmp_path, monkeypatch):
    csv = tmp_path / "labevents.csv.gz"
    t0 = random_labevents(csv)
    out = convert_labevents(csv, tmp_path / "labevents.parquet", block_bytes=4096)
    assert pq.ParquetFile(out).metadata.num_row_groups > 1        # blocks < file
    rng = np.random.default_rng(1)
    subj = 10_000_000 + rng.integers(0, 14, 40)                   # some with no rows at all
    admit = t0 + rng.integers(0, 40, 40) * 6 * H                  # overlapping windows
    lo, hi = admit - 24 * H, admit + 24 * H
    seen = []
    real = labevents.window_ranges
    monkeypatch.setattr(labevents, "window_ranges",
                        lambda g, *a, **k: (seen.append(len(g)), real(g, *a, **k))[1])
    got = stream_cohort_labs(out, LAB_ITEMIDS, subj, lo, hi, batch_rows=50)
    assert len(seen) > 5 and max(seen) <= 50                     # never more than one batch
    np.testing.assert_array_equal(got, whole_table_labs(out, subj, lo, hi))
    assert np.isfinite(got).sum() > 20


def test_labevents_real_file_quirks(tmp_path):
    """Quoted comments with commas and line breaks, empty valuenum, several valueuom."""
    text = ('labevent_id,subject_id,hadm_id,specimen_id,itemid,order_provider_id,charttime,'
            'storetime,value,valuenum,valueuom,ref_range_lower,ref_range_upper,flag,priority,'
            'comments\n')
    rows = []
    for i in range(1, 61):
        comment = ['', '"Hemolysed, repeat sent.\nResult called, 2 times"', '___'][i % 3]
        uom = ["mg/dL", "mg/dl", "MG/DL", "mEq/L", ""][i % 5]
        val = "" if i % 7 == 0 else f"{i / 10:.1f}"
        rows.append(f'{i},10000001,,{i},{LAB_ITEMIDS[i % 3]},,2150-01-01 0{i % 10}:00:00,,'
                    f'{val or "___"},{val},{uom},,,abnormal,ROUTINE,{comment}')
    path = tmp_path / "labevents.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(text + "\n".join(rows) + "\n")
    out = convert_labevents(path, tmp_path / "labevents.parquet", block_bytes=512)
    t = pq.read_table(out).to_pandas()
    assert len(t) == 60 and t["labevent_id"].tolist() == list(range(1, 61))
    assert t["valuenum"].isna().sum() == 8                          # empty -> null
    ok = t["valuenum"].notna()
    np.testing.assert_allclose(t["valuenum"][ok], (t["labevent_id"][ok] / 10).round(1))
    assert t["itemid"].tolist() == [LAB_ITEMIDS[i % 3] for i in range(1, 61)]


def test_cohort_streams_identical(synth_small, tmp_path):
    r = synth_small
    args = (r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg")
    build_cohort(*args, tmp_path / "a", CFG)
    rep = build_cohort(*args, tmp_path / "b", CFG, lab_batch_rows=97, lab_block_bytes=8192)
    assert pq.ParquetFile(tmp_path / "b/labevents.parquet").metadata.num_row_groups > 1
    assert rep["cohort"]["admissions"] > 10
    for name in ("cohort.parquet", "ecg_checks.parquet", "cxr_checks.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cohort_checks_only_candidates(synth_small, tmp_path):
    """ECG records are read only for admissions that already have a labelled CXR and labs."""
    r = synth_small
    rep = build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path, CFG)
    checks = pq.read_table(tmp_path / "ecg_checks.parquet").to_pandas()
    assert rep["ecg"]["admissions_checked"] == rep["labs"]["admissions_with_any"]
    assert rep["ecg"]["admissions_checked"] < rep["ecg"]["admissions_with_candidates"]
    assert len(checks) == rep["ecg"]["records_checked"] < rep["ecg"]["records"]
    assert rep["cxr"]["admissions_checked"] <= rep["cxr"]["admissions_with_candidates"]


def test_rowfile_round_trip(tmp_path):
    x = np.random.default_rng(0).random((9, 5)).astype(np.float32)
    f = RowFile(tmp_path / "a.npy", np.float32, 9, 5, create=True)
    for i in (3, 0, 8, 1, 2, 4, 5, 6, 7):
        f.write(i, x[i])
    f.close()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), x)
    r = RowFile(tmp_path / "a.npy", np.float32, 9, 5)
    np.testing.assert_array_equal(r.read(np.array([2, 3, 4, 7, 0, 1])), x[[2, 3, 4, 7, 0, 1]])
    assert r.read(np.array([], np.int64)).shape == (0, 5)
    with pytest.raises(ValueError, match="expected"):
        RowFile(tmp_path / "a.npy", np.float32, 9, 6)


def test_scale_tree_and_cohort(tmp_path):
    """The scale generator: 275 rows per admission with the quirks; the cohort runs on it."""
    from symile_data.mimic.synth_scale import synth_scale_tree
    rep = synth_scale_tree(tmp_path / "raw", 120, p_cxr=0.5, chunk=50)
    assert rep["labevents_rows"] == 120 * 275 and rep["cxr_files"] > 0
    r = tmp_path / "raw"
    with gzip.open(r / "mimic-iv/hosp/labevents.csv.gz", "rt") as f:
        head = f.read()
    assert '"mg/dl"' in head and ',"Verified by lab, repeat analysis; see note.\n' in head
    c = build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path / "c",
                     CFG, lab_batch_rows=1000, lab_block_bytes=1 << 16)
    assert pq.ParquetFile(tmp_path / "c/labevents.parquet").metadata.num_rows == 120 * 275
    assert c["cohort"]["admissions"] > 0 and c["ecg"]["records_nan"] + c["ecg"][
        "records_all_zero"] >= 0


def test_sha256sums_stand_for_the_media(synth_small):
    """The demo trees ship SHA256SUMS.txt as PhysioNet does: every file, its sha256, so a
    changed media file changes the DVC dependency."""
    from symile_data.hashing import sha256_file
    for root in ("mimic-iv-ecg", "mimic-cxr-jpg", "mimic-iv"):
        r = synth_small / root
        listed = dict(reversed(line.split("  ", 1)) for line in
                      (r / "SHA256SUMS.txt").read_text().splitlines())
        files = sorted(p.relative_to(r).as_posix() for p in r.rglob("*")
                       if p.is_file() and p.name != "SHA256SUMS.txt")
        assert sorted(listed) == files and len(files) > 3
        assert all(listed[f] == sha256_file(r / f) for f in files[:20])


def test_dvc_deps_are_defining_files_not_media(synth_small):
    """mimic_cohort / mimic_shards depend on record lists, metadata and SHA256SUMS.txt (all
    present in the demo tree and the PhysioNet trees), never on a media directory."""
    import yaml
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    roots = {"${mimic_sources.mimic_iv}": "mimic-iv", "${mimic_sources.ecg}": "mimic-iv-ecg",
             "${mimic_sources.cxr}": "mimic-cxr-jpg"}
    for name in ("mimic_cohort", "mimic_shards"):
        src = [d for d in stages[name]["deps"] if d.startswith("${mimic_sources.")]
        assert src and all(d.split("/")[0] in roots and "/" in d for d in src)
        for d in src:
            head, rest = d.split("/", 1)
            assert (synth_small / roots[head] / rest).is_file(), d
