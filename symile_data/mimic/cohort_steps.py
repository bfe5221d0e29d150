"""The cohort's joins for one subject bucket (``cohort.py`` runs them bucket by bucket).

Step A (``candidates``): ECG and CXR candidates of every admission of the bucket from the record
lists alone (interval joins, no file read); CXR files checked (``images.cxr_problem``: present,
not empty, header + end marker) only for admissions with both, a bad one skipped for the next
candidate; then CheXpert. Writes the bucket's labelled admissions and its CXR checks.
Labs (``spill_labs``): one scan of the labevents Parquet for the subjects of every labelled
admission, rows spilled by bucket. Step B (``complete``): the earliest labs, then ECG records
read only for admissions that have everything else (``wfdb_io.ecg_quality``: the shape and
values ``mimic shards`` needs), a bad one skipped for the next candidate. Writes the bucket's
cohort rows and ECG checks. Parts are IPC files sorted by hadm_id (admissions) or by file row
(checks).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from symile_data.io.buckets import BucketWriter, read_ipc, write_ipc
from symile_data.mimic.config import (CXR_WINDOW_H, ECG_WINDOW_H, LAB_COLUMNS, LAB_ITEMIDS,
                                      LAB_WINDOW_H, CohortConfig)
from symile_data.mimic.images import cxr_problem
from symile_data.mimic.intervals import first_valid, window_ranges
from symile_data.mimic.labevents import earliest_labs, scan_labs
from symile_data.mimic.partition import Buckets
from symile_data.mimic.readers import cxr_relpath
from symile_data.mimic.wfdb_io import WfdbError, ecg_quality, read_wfdb

H_S, H_MS = 3600, 3_600_000
STR = pa.string()
CHECK_TAIL = [("path", STR), ("status", STR), ("error", STR)]
# report.json count -> error prefix (wfdb_io.ecg_quality, images.cxr_problem)
ECG_REASONS = {"records_unreadable": "unreadable", "records_bad_shape": "bad_shape",
               "records_nan": "nan", "records_all_zero": "all_zero",
               "records_constant": "constant"}
CXR_REASONS = {"missing_files": "missing file", "empty_files": "empty file",
               "unreadable_files": "unreadable"}
LAB_ROWS = pa.schema([("labevent_id", pa.int64()), ("subject_id", pa.int64()),
                      ("itemid", pa.int64()), ("charttime", pa.timestamp("ms")),
                      ("valuenum", pa.float64())])


class FileChecker:
    """Per-event check with a cache: status 0 = unknown, 1 = ok, 2 = failed (+ error).

    Paths are built for the checked events only (``path_of(indices) -> list[str]``).
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
        """The checked events in event order: ids, path, status, error."""
        checked = np.flatnonzero(self.status > 0)
        return pa.table({**{k: take(checked) for k, take in ids.items()},
                         "path": pa.array(self.path_of(checked), STR),
                         "status": pa.array(np.where(self.status[checked] == 1, "ok",
                                                     "failed"), STR),
                         "error": pa.array([self.errors.get(i) for i in checked.tolist()],
                                           STR)})


def reasons(check: FileChecker, prefixes: dict[str, str]) -> dict[str, int]:
    """Failed checks counted by the first word of their error: {count name: n}."""
    err = list(check.errors.values())
    return {name: sum(e.startswith(pre) for e in err) for name, pre in prefixes.items()}


def taker(values: pa.Array) -> Callable[[np.ndarray], list[str]]:
    """idx -> the strings at idx (only those become Python objects)."""
    return lambda idx: values.take(pa.array(np.asarray(idx, np.int64))).to_pylist()


def cxr_path_of(cxr: dict, ext: str) -> Callable[[np.ndarray], list[str]]:
    """idx -> relative CXR paths of those frontal rows (built on demand)."""
    take = taker(cxr["dicom_id"])
    return lambda idx: list(cxr_relpath(cxr["subject_id"][idx], cxr["study_id"][idx],
                                        np.asarray(take(idx), object), ext))


def _ecg_one(base: Path) -> str | None:
    try:
        return ecg_quality(read_wfdb(base))
    except WfdbError as e:
        return f"unreadable: {e}"


def columns(t: pa.Table) -> dict:
    """int64 columns as numpy, string columns as one Arrow array each."""
    return {k: (t[k].combine_chunks() if t.schema.field(k).type == STR else t[k].to_numpy())
            for k in t.column_names}


def ecg_windows(subject: np.ndarray, admit_s: np.ndarray, ecg: dict):
    """ECG candidates (order, lo, hi) of these admissions; ties by study_id."""
    return window_ranges(ecg["subject_id"], ecg["t_s"], [ecg["study_id"]], subject,
                         admit_s + int(ECG_WINDOW_H[0] * H_S),
                         admit_s + int(ECG_WINDOW_H[1] * H_S))


def cxr_windows(subject: np.ndarray, admit_s: np.ndarray, cxr: dict):
    """CXR candidates of these admissions; ties by (study_id, dicom_id): dicom_id enters the
    sort as its rank among the bucket's rows (a subject's rows are all in its bucket)."""
    rank = np.asarray(pc.rank(cxr["dicom_id"], sort_keys="ascending", tiebreaker="dense"),
                      np.int64)
    s_ms = admit_s * 1000
    return window_ranges(cxr["subject_id"], cxr["t_ms"], [cxr["study_id"], rank], subject,
                         s_ms + int(CXR_WINDOW_H[0] * H_MS), s_ms + int(CXR_WINDOW_H[1] * H_MS),
                         lo_closed=False)


def pick(ranges, mask: np.ndarray, check) -> np.ndarray:
    """first_valid over the admissions in ``mask`` only (-1 elsewhere): files are checked for
    these candidates alone; each admission's answer does not depend on the others."""
    order, lo, hi = ranges
    out = np.full(len(mask), -1, np.int64)
    out[mask] = first_valid(order, lo[mask], hi[mask], check)
    return out


def match_labs(batches, subject: np.ndarray, admit_s: np.ndarray) -> np.ndarray:
    """(n, 50) raw valuenum of the earliest in-window value per lab, NaN when none."""
    return earliest_labs(batches, LAB_ITEMIDS, subject, admit_s + int(LAB_WINDOW_H[0] * H_S),
                         admit_s + int(LAB_WINDOW_H[1] * H_S))


def candidates(bk: Buckets, b: int, cxr_root: Path, cfg: CohortConfig, tmp: Path) -> dict:
    """Step A for bucket b: tmp/labelled-b (hadm_id order) and tmp/cxr_checks-b; counts."""
    adm = bk.read("adm", b).sort_by("hadm_id")
    subj, admit = adm["subject_id"].to_numpy(), adm["admit_s"].to_numpy()
    ecg, cxr = columns(bk.read("ecg", b)), columns(bk.read("cxr", b))
    chexpert = np.unique(bk.read("chexpert", b)["study_id"].to_numpy())
    _, e_lo, e_hi = ecg_windows(subj, admit, ecg)   # step B re-joins the labelled only
    ecg_cand = e_hi > e_lo
    cxr_ranges = cxr_windows(subj, admit, cxr)
    cxr_cand = cxr_ranges[2] > cxr_ranges[1]
    check = FileChecker(cxr_root, cxr_path_of(cxr, cfg.cxr_ext), len(cxr["row"]), cxr_problem,
                        cfg.ecg_check_threads)
    chosen = pick(cxr_ranges, ecg_cand & cxr_cand, check)
    ok = chosen >= 0
    study = np.full(len(ok), -1, np.int64)
    study[ok] = cxr["study_id"][chosen[ok]]
    labelled = ok & np.isin(study, chexpert)
    write_ipc(tmp / f"labelled-{b:05d}.arrow", adm.filter(pa.array(labelled)).append_column(
        "cxr_i", pa.array(chosen[labelled])))
    write_ipc(tmp / f"cxr_checks-{b:05d}.arrow", check.table(
        {"row": lambda i: cxr["row"][i], "dicom_id": lambda i: pa.array(
            taker(cxr["dicom_id"])(i), STR)}))
    return {"ecg_cand": int(ecg_cand.sum()), "cxr_cand": int(cxr_cand.sum()),
            "both_cand": int((ecg_cand & cxr_cand).sum()), "cxr_ok": int(ok.sum()),
            "labelled": int(labelled.sum()), **reasons(check, CXR_REASONS)}


def spill_labs(lab_pq: Path, tmp: Path, n: int, batch_rows: int) -> list[Path]:
    """Lab rows (50 itemids, non-null valuenum) of the labelled admissions' subjects within
    the span of their windows, by subject bucket: one scan of the labevents Parquet."""
    lab = [read_ipc(tmp / f"labelled-{b:05d}.arrow", ["subject_id", "admit_s"])
           for b in range(n)]
    subjects = np.unique(np.concatenate([t["subject_id"].to_numpy() for t in lab]))
    admit = np.concatenate([t["admit_s"].to_numpy() for t in lab])
    del lab
    with BucketWriter(tmp, "labs", n, LAB_ROWS) as w:
        if len(subjects):
            for batch in scan_labs(lab_pq, LAB_ITEMIDS, subjects,
                                   int(admit.min()) + int(LAB_WINDOW_H[0] * H_S),
                                   int(admit.max()) + int(LAB_WINDOW_H[1] * H_S), batch_rows):
                w.write(pa.Table.from_batches([batch]), batch["subject_id"].to_numpy() % n)
    return w.paths


def complete(bk: Buckets, b: int, labs: Path, ecg_root: Path, cfg: CohortConfig, tmp: Path,
             batch_rows: int) -> dict:
    """Step B for bucket b: tmp/cohort-b (hadm_id order, no split yet), tmp/ecg_checks-b."""
    lab = read_ipc(tmp / f"labelled-{b:05d}.arrow")
    subj, admit = lab["subject_id"].to_numpy(), lab["admit_s"].to_numpy()
    values = match_labs(read_ipc(labs).to_batches(batch_rows), subj, admit)   # (n, 50)
    has_labs = ~np.isnan(values).all(axis=1)
    ecg, cxr = columns(bk.read("ecg", b)), columns(bk.read("cxr", b))
    check = FileChecker(ecg_root, taker(ecg["path"]), len(ecg["row"]), _ecg_one,
                        cfg.ecg_check_threads)
    chosen = pick(ecg_windows(subj, admit, ecg), has_labs, check)
    keep = chosen >= 0                                  # implies has_labs
    e, c = chosen[keep], lab["cxr_i"].to_numpy()[keep]
    cols = {"subject_id": subj[keep], "hadm_id": lab["hadm_id"].to_numpy()[keep],
            "admittime": pa.array(admit[keep], pa.timestamp("s")),
            "ecg_study_id": ecg["study_id"][e],
            "ecg_time": pa.array(ecg["t_s"][e], pa.timestamp("s")),
            "ecg_path": pa.array(taker(ecg["path"])(e), STR),
            "cxr_dicom_id": pa.array(taker(cxr["dicom_id"])(c), STR),
            "cxr_study_id": cxr["study_id"][c],
            "cxr_time": pa.array(cxr["t_ms"][c], pa.timestamp("ms")),
            "cxr_path": pa.array(cxr_path_of(cxr, cfg.cxr_ext)(c), STR)}
    cols.update({name: values[keep, j] for j, name in enumerate(LAB_COLUMNS)})
    write_ipc(tmp / f"cohort-{b:05d}.arrow", pa.table(cols))
    write_ipc(tmp / f"ecg_checks-{b:05d}.arrow", check.table(
        {"row": lambda i: ecg["row"][i], "study_id": lambda i: ecg["study_id"][i]}))
    return {"labs_rows": len(values), "has_labs": int(has_labs.sum()),
            "ecg_valid": int(keep.sum()), "records_checked": int((check.status > 0).sum()),
            **reasons(check, ECG_REASONS)}
