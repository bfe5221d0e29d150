"""The Symile-MIMIC cohort (SPEC section 3): one vectorised interval join per modality.

Events are matched to an admission by subject_id and time relative to admittime:
  ECG   -24 h <= ecg_time - admittime <= +24 h; earliest record that is not NaN / all zero
        (only candidates are read, in time order; ties: study_id)
  labs  -24 h <= charttime - admittime <= +24 h; earliest non-null valuenum per itemid
        (ties: labevent_id)
  CXR   AP/PA, usable file, +24 h < StudyDate+StudyTime - admittime <= +72 h; earliest
        (ties: study_id, dicom_id); then its study must have CheXpert labels.
A candidate whose file is unusable (ECG: unreadable, not (5000, 12), NaN, all zero, constant;
CXR: missing, empty, header or end marker cut off) is skipped for the next one by the same
rule and recorded in ecg_checks / cxr_checks (status "failed", error = the reason).
An admission needs all three (and at least one of the 50 labs). Splits are patient-disjoint.

Memory does not grow with MIMIC-IV's size: the record lists are split by subject into bucket
files (``partition.py``, ~8k admissions a bucket) and joined one bucket at a time, in the order
that reads least: (A) ECG and CXR candidates from the lists alone, CXR files checked only for
admissions with both, then CheXpert; (labs) one scan of the labevents Parquet keeps the rows of
the subjects with a labelled CXR, spilled by bucket; (B) per bucket the earliest labs, then ECG
records read only for admissions that have everything else. Each bucket's cohort rows and
checks are written sorted by hadm_id / file row and merged back (``io/buckets.py``), so the
outputs are the whole-table join's, byte for byte.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from symile_data.config import params_hash
from symile_data.io.atomic import atomic_path, atomic_write_json, scratch_dir
from symile_data.io.buckets import merge_sorted, read_ipc
from symile_data.io.lock import remove_stale_tmp
from symile_data.io.memory import release_unused
from symile_data.mimic import cohort_steps as steps
from symile_data.mimic.config import HOSP_FILES, CohortConfig
from symile_data.mimic.labevents import BATCH_ROWS as LAB_BATCH_ROWS
from symile_data.mimic.labevents import convert_labevents
from symile_data.mimic.partition import ADMISSIONS_PER_BUCKET, partition_lists
from symile_data.mimic.splits import SPLITS, assign_splits
from symile_data.progress import progress
from symile_data.schema import get

log = logging.getLogger(__name__)
CHUNK_ROWS = 4096        # rows per row group of the merged outputs (~3 MB of cohort rows)
SCRATCH = "cohort-spill"  # out/.cohort-spill.<pid>.tmp: the buckets (removed when done)
CHECKS = {"ecg_checks": pa.schema([("study_id", pa.int64()), *steps.CHECK_TAIL]),
          "cxr_checks": pa.schema([("dicom_id", pa.string()), *steps.CHECK_TAIL])}


def _split_of(parts: list[Path], cfg: CohortConfig) -> tuple[np.ndarray, np.ndarray]:
    """(cohort subjects sorted, their split index): assign_splits depends only on the
    multiset of subjects, so the parts' subjects in any order give the whole cohort's split."""
    subj = np.concatenate([read_ipc(p, ["subject_id"])["subject_id"].to_numpy()
                           for p in parts])
    names = assign_splits(subj, cfg.train_size, cfg.val_size, cfg.seed)
    split = np.select([names == sp for sp in SPLITS], np.arange(len(SPLITS)), -1)
    uniq, first = np.unique(subj, return_index=True)
    return uniq, split[first]


def _write_merged(parts: list[Path], key: str, path: Path, schema: pa.Schema,
                  shape: Callable[[pa.Table], pa.Table], chunk_rows: int) -> None:
    """Merge the sorted parts into one Parquet file (row groups of chunk_rows rows)."""
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            rows = 0
            for chunk in merge_sorted(parts, key, chunk_rows):
                t = shape(chunk).cast(schema)
                w.write_table(t)
                rows += t.num_rows
            if rows == 0:
                w.write_table(schema.empty_table())


def build_cohort(mimic_iv: str | Path, ecg_root: str | Path, cxr_root: str | Path,
                 out: str | Path, cfg: CohortConfig, *,
                 lab_batch_rows: int = LAB_BATCH_ROWS, lab_block_bytes: int = 64 << 20,
                 bucket_admissions: int = ADMISSIONS_PER_BUCKET,
                 chunk_rows: int = CHUNK_ROWS) -> dict:
    """Write out/cohort.parquet, out/ecg_checks.parquet, out/cxr_checks.parquet and
    out/report.json (last); out/labevents.parquet is the streamed labevents conversion."""
    out, ecg_root, cxr_root = Path(out), Path(ecg_root), Path(cxr_root)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").unlink(missing_ok=True)
    remove_stale_tmp(out)     # what a killed run left (spill folder, temporaries)
    lab_pq = convert_labevents(Path(mimic_iv) / HOSP_FILES["labevents"],
                               out / "labevents.parquet", lab_block_bytes)
    a, c = Counter(), Counter()
    with scratch_dir(out, SCRATCH) as tmp:
        bk = partition_lists(mimic_iv, ecg_root, cxr_root, tmp, bucket_admissions)
        log.info("cohort: %d admissions, %d ECG records, %d CXR rows in %d subject buckets",
                 bk.rows["adm"], bk.rows["ecg"], bk.rows["cxr"], bk.n)
        for b in progress(range(bk.n), desc="cohort candidates", unit="bucket"):
            a.update(steps.candidates(bk, b, cxr_root, cfg, tmp))
            release_unused()                   # one bucket's joins at a time
        labs = steps.spill_labs(lab_pq, tmp, bk.n, lab_batch_rows)
        release_unused()
        for b in progress(range(bk.n), desc="cohort labs + ECG", unit="bucket"):
            c.update(steps.complete(bk, b, labs[b], ecg_root, cfg, tmp, lab_batch_rows))
            release_unused()
        parts = {k: [tmp / f"{k}-{b:05d}.arrow" for b in range(bk.n)]
                 for k in ("cohort", "ecg_checks", "cxr_checks")}
        subjects, split_idx = _split_of(parts["cohort"], cfg)
        schema = get("mimic_cohort")

        per_split = np.zeros(len(SPLITS), np.int64)

        def with_split(t: pa.Table) -> pa.Table:
            s = split_idx[np.searchsorted(subjects, t["subject_id"].to_numpy())]
            per_split[:] += np.bincount(s, minlength=len(SPLITS))
            return t.append_column("split", pa.array(np.asarray(SPLITS)[s], pa.string()))
        _write_merged(parts["cohort"], "hadm_id", out / "cohort.parquet", schema,
                      lambda t: with_split(t).select(schema.names), chunk_rows)
        for name, sch in CHECKS.items():
            _write_merged(parts[name], "row", out / f"{name}.parquet", sch,
                          lambda t, sch=sch: t.select(sch.names), chunk_rows)
    report = _report(cfg, bk, a, c, len(subjects), per_split)
    atomic_write_json(out / "report.json", report)
    return report


def _report(cfg: CohortConfig, bk, a: Counter, c: Counter, subjects: int,
            per_split: np.ndarray) -> dict:
    """report.json: counts summed over the buckets (each count is within its step)."""
    return {
        "params_hash": params_hash(cfg), "admissions": bk.rows["adm"],
        "order": "candidates from the record lists; CXR files of admissions with ECG and "
                 "CXR candidates (a bad file skipped for the next candidate); labs of those "
                 "with a labelled CXR; ECG records of those with labs too (a bad record "
                 "skipped likewise; each count below is within its step)",
        "ecg": {"records": bk.rows["ecg"], "admissions_with_candidates": a["ecg_cand"],
                "admissions_checked": c["has_labs"], "admissions_with_valid": c["ecg_valid"],
                "records_checked": c["records_checked"],
                **{k: c[k] for k in steps.ECG_REASONS}},
        "labs": {"admissions_read": a["labelled"], "admissions_with_any": c["has_labs"]},
        "cxr": {"frontal_rows": bk.rows["frontal"], "admissions_with_candidates": a["cxr_cand"],
                "admissions_checked": a["both_cand"], "admissions_with_file": a["cxr_ok"],
                **{k: a[k] for k in steps.CXR_REASONS},
                "admissions_with_chexpert": a["labelled"]},
        "cohort": {"admissions": c["ecg_valid"], "subjects": subjects,
                   **{f"{sp}_admissions": int(per_split[i]) for i, sp in enumerate(SPLITS)}},
        "ties": "ECG (ecg_time, study_id); labs (charttime, labevent_id); "
                "CXR (StudyDateTime, study_id, dicom_id)",
    }
