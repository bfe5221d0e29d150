"""The Symile-MIMIC cohort (SPEC section 3): one vectorised interval join per modality.

Events are matched to an admission by subject_id and time relative to admittime:
  ECG   -24 h <= ecg_time - admittime <= +24 h; earliest record that is not NaN / all zero
        (only candidates are read, in time order; ties: study_id)
  labs  -24 h <= charttime - admittime <= +24 h; earliest non-null valuenum per itemid
        (ties: labevent_id)
  CXR   AP/PA, file present, +24 h < StudyDate+StudyTime - admittime <= +72 h; earliest
        (ties: study_id, dicom_id); then its study must have CheXpert labels.
An admission needs all three (and at least one of the 50 labs). Splits are patient-disjoint.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from symile_data.config import params_hash
from symile_data.io.atomic import atomic_path, atomic_write_json
from symile_data.io.memory import release_unused
from symile_data.mimic.config import (CXR_VIEWS, CXR_WINDOW_H, ECG_WINDOW_H, HOSP_FILES,
                                      LAB_COLUMNS, LAB_ITEMIDS, LAB_WINDOW_H, N_LABS,
                                      CohortConfig)
from symile_data.mimic.intervals import first_valid, window_ranges
from symile_data.mimic.labevents import BATCH_ROWS as LAB_BATCH_ROWS
from symile_data.mimic.labevents import convert_labevents, stream_cohort_labs
from symile_data.mimic.readers import (cxr_relpath, read_admissions, read_chexpert_studies,
                                       read_cxr_metadata, read_ecg_records)
from symile_data.mimic.splits import assign_splits
from symile_data.mimic.wfdb_io import WfdbError, ecg_quality, read_wfdb

log = logging.getLogger(__name__)
H_S, H_MS = 3600, 3_600_000


class _FileChecker:
    """Per-event check with a cache: status 0 = unknown, 1 = ok, 2 = failed (+ error).

    Paths are built for the checked events only (``path_of(indices) -> list[str]``): holding a
    Python string per record (~834k ECG records, ~377k CXR rows) grew the peak with the data.
    """

    def __init__(self, root: Path, path_of: Callable[[np.ndarray], list[str]], n: int, one,
                 threads: int):
        self.root, self.path_of, self.one, self.threads = root, path_of, one, threads
        self.status = np.zeros(n, np.int8)
        self.errors: dict[int, str] = {}

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        need = np.unique(idx[self.status[idx] == 0])
        with ThreadPoolExecutor(self.threads) as ex:   # I/O per candidate file
            results = list(ex.map(self.one, (self.root / p for p in self.path_of(need))))
        for i, err in zip(need.tolist(), results):
            self.status[i] = 1 if err is None else 2
            if err is not None:
                self.errors[i] = err
        return self.status[idx] == 1

    def table(self, ids: dict[str, Callable[[np.ndarray], object]]) -> pa.Table:
        checked = np.flatnonzero(self.status > 0)
        return pa.table({**{k: take(checked) for k, take in ids.items()},
                         "path": pa.array(self.path_of(checked), pa.string()),
                         "status": np.where(self.status[checked] == 1, "ok", "failed"),
                         "error": [self.errors.get(i) for i in checked.tolist()]})


def strings(col: pd.Series) -> pa.Array:
    """A string column as one Arrow array (pandas keeps them in Arrow: no Python objects)."""
    a = pa.array(col)
    return (a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a).cast(pa.string())


def taker(values: pa.Array) -> Callable[[np.ndarray], list[str]]:
    """idx -> the strings at idx (only those become Python objects)."""
    return lambda idx: values.take(pa.array(np.asarray(idx, np.int64))).to_pylist()


def cxr_path_of(front: pd.DataFrame, dicom: pa.Array, ext: str
                ) -> Callable[[np.ndarray], list[str]]:
    """idx -> relative CXR paths of those frontal rows (built on demand)."""
    subj, study, take = front["subject_id"].to_numpy(), front["study_id"].to_numpy(), \
        taker(dicom)
    return lambda idx: list(cxr_relpath(subj[idx], study[idx], np.asarray(take(idx), object),
                                        ext))


def _ecg_one(base: Path) -> str | None:
    try:
        return ecg_quality(read_wfdb(base))
    except WfdbError as e:
        return f"unreadable: {e}"


def _file_one(path: Path) -> str | None:
    return None if os.path.isfile(path) else f"missing file: {path}"


def ecg_windows(adm, ecg):
    """ECG candidates of every admission (order, lo, hi), from the record list alone."""
    s = adm["admit_s"].to_numpy()
    return window_ranges(ecg["subject_id"], ecg["t_s"], [ecg["study_id"]], adm["subject_id"],
                         s + int(ECG_WINDOW_H[0] * H_S), s + int(ECG_WINDOW_H[1] * H_S))


def cxr_windows(adm, meta):
    """Frontal rows (dicom_id as one Arrow array) and the CXR candidates of every admission;
    ties by (study_id, dicom_id): dicom_id enters the sort as its rank (same order, 8 bytes a
    row instead of a fixed-width string)."""
    front = meta[meta["ViewPosition"].isin(CXR_VIEWS).to_numpy(dtype=bool)].reset_index(drop=True)
    dicom = strings(front["dicom_id"])
    dicom_rank = np.asarray(pc.rank(dicom, sort_keys="ascending", tiebreaker="dense"), np.int64)
    front = front.drop(columns=["dicom_id", "ViewPosition"])
    s_ms = adm["admit_s"].to_numpy() * 1000
    return front, dicom, window_ranges(
        front["subject_id"], front["t_ms"], [front["study_id"], dicom_rank], adm["subject_id"],
        s_ms + int(CXR_WINDOW_H[0] * H_MS), s_ms + int(CXR_WINDOW_H[1] * H_MS), lo_closed=False)


def pick(ranges, mask: np.ndarray, check) -> np.ndarray:
    """first_valid over the admissions in ``mask`` only (-1 elsewhere): files are checked for
    these candidates alone; each admission's answer does not depend on the others."""
    order, lo, hi = ranges
    out = np.full(len(mask), -1, np.int64)
    out[mask] = first_valid(order, lo[mask], hi[mask], check)
    return out


def match_labs(adm, lab_pq: Path, mask: np.ndarray, batch_rows: int) -> np.ndarray:
    """(mask.sum(), 50) raw valuenum of the earliest in-window value per lab, NaN when none,
    for the admissions in ``mask`` (in admission order; their subjects' rows, streamed). Not
    a row per admission: (430k, 50) float64 would be 172 MB."""
    s = adm["admit_s"].to_numpy()[mask]
    return stream_cohort_labs(lab_pq, LAB_ITEMIDS, adm["subject_id"].to_numpy()[mask],
                              s + int(LAB_WINDOW_H[0] * H_S), s + int(LAB_WINDOW_H[1] * H_S),
                              batch_rows)


def build_cohort(mimic_iv: str | Path, ecg_root: str | Path, cxr_root: str | Path,
                 out: str | Path, cfg: CohortConfig, *,
                 lab_batch_rows: int = LAB_BATCH_ROWS, lab_block_bytes: int = 64 << 20) -> dict:
    """Write out/cohort.parquet, out/ecg_checks.parquet, out/cxr_checks.parquet and
    out/report.json (last); out/labevents.parquet is the streamed labevents conversion."""
    out, ecg_root, cxr_root = Path(out), Path(ecg_root), Path(cxr_root)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").unlink(missing_ok=True)
    adm = read_admissions(mimic_iv)
    lab_pq = convert_labevents(Path(mimic_iv) / HOSP_FILES["labevents"],
                               out / "labevents.parquet", lab_block_bytes)
    chexpert = read_chexpert_studies(cxr_root)
    # 1. candidates of every admission from the record lists alone (no file read); one list
    # at a time, its parse and join temporaries returned before the next is read
    meta = read_cxr_metadata(cxr_root)
    n_meta = len(meta)
    front, dicom, cxr_ranges = cxr_windows(adm, meta)
    del meta
    release_unused()   # the list's parse / join temporaries back to the OS before the next
    ecg = read_ecg_records(ecg_root)
    ecg_path = strings(ecg.pop("path"))
    ecg_ranges = ecg_windows(adm, ecg)
    release_unused()
    log.info("cohort: %d admissions, %d ECG records, %d CXR rows", len(adm), len(ecg), n_meta)
    ecg_cand, cxr_cand = ecg_ranges[2] > ecg_ranges[1], cxr_ranges[2] > cxr_ranges[1]
    # 2. CXR files (a stat each) of admissions with both candidates; CheXpert labels
    cxr_path = cxr_path_of(front, dicom, cfg.cxr_ext)
    cxr_check = _FileChecker(cxr_root, cxr_path, len(front), _file_one, cfg.ecg_check_threads)
    cxr_pick = pick(cxr_ranges, ecg_cand & cxr_cand, cxr_check)
    cxr_ok = cxr_pick >= 0
    study = np.where(cxr_ok, front["study_id"].to_numpy()[np.maximum(cxr_pick, 0)], -1)
    labelled = cxr_ok & np.isin(study, chexpert)
    # 3. labs: only those subjects' rows in those windows (streamed, pushed-down filter)
    labs = match_labs(adm, lab_pq, labelled, lab_batch_rows)      # rows of `labelled` only
    has_labs = np.zeros(len(adm), bool)
    has_labs[labelled] = ~np.isnan(labs).all(axis=1)
    # 4. ECG quality (reads the records) only for admissions that have everything else
    ecg_check = _FileChecker(ecg_root, taker(ecg_path), len(ecg), _ecg_one,
                             cfg.ecg_check_threads)
    ecg_pick = pick(ecg_ranges, has_labs, ecg_check)
    keep = (ecg_pick >= 0) & has_labs & labelled
    e, c = ecg_pick[keep], cxr_pick[keep]
    k = adm[keep].reset_index(drop=True)
    cols = {"subject_id": k["subject_id"].to_numpy(), "hadm_id": k["hadm_id"].to_numpy(),
            "admittime": pa.array(k["admit_s"].to_numpy(), pa.timestamp("s")),
            "ecg_study_id": ecg["study_id"].to_numpy()[e],
            "ecg_time": pa.array(ecg["t_s"].to_numpy()[e], pa.timestamp("s")),
            "ecg_path": pa.array(taker(ecg_path)(e), pa.string()),
            "cxr_dicom_id": pa.array(taker(dicom)(c), pa.string()),
            "cxr_study_id": front["study_id"].to_numpy()[c],
            "cxr_time": pa.array(front["t_ms"].to_numpy()[c], pa.timestamp("ms")),
            "cxr_path": pa.array(cxr_path(c), pa.string())}
    lab_row = (np.cumsum(labelled) - 1)[keep]                      # keep implies labelled
    cols.update({name: labs[lab_row, j] for j, name in enumerate(LAB_COLUMNS)})
    cols["split"] = assign_splits(cols["subject_id"], cfg.train_size, cfg.val_size, cfg.seed)
    from symile_data.schema import get
    table = pa.table(cols).cast(get("mimic_cohort"))
    import pyarrow.parquet as pq
    for name, t in (("cohort.parquet", table),
                    ("ecg_checks.parquet",
                     ecg_check.table({"study_id": lambda i: ecg["study_id"].to_numpy()[i]})),
                    ("cxr_checks.parquet", cxr_check.table(
                        {"dicom_id": lambda i: pa.array(taker(dicom)(i), pa.string())}))):
        with atomic_path(out / name) as tmp:
            pq.write_table(t, tmp, compression="zstd")
    ecg_err = pd.Series(list(ecg_check.errors.values()), dtype="string")
    report = {
        "params_hash": params_hash(cfg), "admissions": len(adm),
        "order": "candidates from the record lists; CXR files of admissions with ECG and "
                 "CXR candidates; labs of those with a labelled CXR; ECG records of those "
                 "with labs too (each count below is within its step)",
        "ecg": {"records": len(ecg), "admissions_with_candidates": int(ecg_cand.sum()),
                "admissions_checked": int(has_labs.sum()),
                "admissions_with_valid": int((ecg_pick >= 0).sum()),
                "records_checked": int((ecg_check.status > 0).sum()),
                "records_nan": int((ecg_err == "nan").sum()),
                "records_all_zero": int((ecg_err == "all_zero").sum()),
                "records_unreadable": int(ecg_err.str.startswith("unreadable").sum())},
        "labs": {"admissions_read": int(labelled.sum()),
                 "admissions_with_any": int(has_labs.sum())},
        "cxr": {"frontal_rows": len(front), "admissions_with_candidates": int(cxr_cand.sum()),
                "admissions_checked": int((ecg_cand & cxr_cand).sum()),
                "admissions_with_file": int(cxr_ok.sum()),
                "missing_files": len(cxr_check.errors),
                "admissions_with_chexpert": int(labelled.sum())},
        "cohort": {"admissions": int(keep.sum()),
                   "subjects": int(np.unique(cols["subject_id"]).size),
                   **{f"{sp}_admissions": int((cols["split"] == sp).sum())
                      for sp in ("train", "val", "test")}},
        "ties": "ECG (ecg_time, study_id); labs (charttime, labevent_id); "
                "CXR (StudyDateTime, study_id, dicom_id)",
    }
    atomic_write_json(out / "report.json", report)
    return report
