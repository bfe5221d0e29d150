"""Per-admission pandas loop in the style of the original cohort code (slow on purpose).

Used only to check the vectorised cohort (tests) and as the bench baseline: for each admission
it filters the full event tables by subject and window, sorts, and walks the candidates.
Same semantics and tie keys as cohort.py. Returns hadm_id -> (ecg_study_id, cxr_dicom_id,
labs (50,) raw values) for the admissions that have all three.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from symile_data.mimic.config import CXR_VIEWS, N_LABS
from symile_data.mimic.images import cxr_problem
from symile_data.mimic.readers import cxr_relpath
from symile_data.mimic.wfdb_io import WfdbError, ecg_quality, read_wfdb

DAY_S = 86_400


def cohort_loop(adm: pd.DataFrame, ecg: pd.DataFrame, labs: pd.DataFrame, meta: pd.DataFrame,
                chexpert: np.ndarray, ecg_root: Path, cxr_root: Path,
                ext: str = ".jpg") -> dict[int, tuple]:
    """labs: DataFrame(labevent_id, subject_id, item_idx, t_s, valuenum) of the 50 labs."""
    front = meta[meta["ViewPosition"].isin(CXR_VIEWS).to_numpy(dtype=bool)].copy()
    front["path"] = cxr_relpath(front["subject_id"].to_numpy(), front["study_id"].to_numpy(),
                                front["dicom_id"].to_numpy(), ext)
    out = {}
    for row in adm.itertuples(index=False):
        s, t = row.subject_id, row.admit_s
        e = ecg[(ecg.subject_id == s) & (ecg.t_s >= t - DAY_S) & (ecg.t_s <= t + DAY_S)]
        ecg_pick = None
        for r in e.sort_values(["t_s", "study_id"]).itertuples(index=False):
            try:
                if ecg_quality(read_wfdb(Path(ecg_root) / r.path)) is None:
                    ecg_pick = r.study_id
                    break
            except WfdbError:
                continue
        lab = labs[(labs.subject_id == s) & (labs.t_s >= t - DAY_S) & (labs.t_s <= t + DAY_S)]
        first = lab.sort_values(["t_s", "labevent_id"]).groupby("item_idx").first()
        values = np.full(N_LABS, np.nan)
        values[first.index.to_numpy(dtype=int)] = first["valuenum"].to_numpy()
        c = front[(front.subject_id == s) & (front.t_ms > (t + DAY_S) * 1000)
                  & (front.t_ms <= (t + 3 * DAY_S) * 1000)]
        cxr_pick = None
        for r in c.sort_values(["t_ms", "study_id", "dicom_id"]).itertuples(index=False):
            if cxr_problem(Path(cxr_root) / r.path) is None:
                cxr_pick = r
                break
        if ecg_pick is None or np.isnan(values).all() or cxr_pick is None:
            continue
        if cxr_pick.study_id not in chexpert:
            continue
        out[int(row.hadm_id)] = (int(ecg_pick), str(cxr_pick.dicom_id), values)
    return out
