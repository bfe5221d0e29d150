"""Readers for the real MIMIC layouts: MIMIC-IV hosp, MIMIC-IV-ECG record list, MIMIC-CXR-JPG.

Every reader checks the columns it needs and names the file and the missing columns; timestamps
that do not parse name the file, the column and the first bad row. Times come back as int64:
seconds since 1970 (admittime, ecg_time) or milliseconds (CXR StudyDate + StudyTime).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from symile_data.mimic.csvstream import MimicInputError, csv_blocks
from symile_data.mimic.config import CXR_FILES, CXR_VIEWS, ECG_RECORD_LIST, HOSP_FILES


def parse_seconds(values: pa.ChunkedArray, path: Path, column: str, row0: int = 0
                  ) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' strings -> int64 seconds since 1970 (Arrow's strptime: no
    per-row Python object); ``row0``: index of the first value among the file's data rows
    (for the error's row number)."""
    a = values.combine_chunks()
    ts = pc.strptime(a.cast(pa.string()), format="%Y-%m-%d %H:%M:%S", unit="s",
                     error_is_null=True)
    bad = np.asarray(ts.is_null())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MimicInputError(f"{path}: column {column} row {row0 + i + 2} (line): "
                              f"unparseable timestamp {a[i].as_py()!r}")
    return np.asarray(ts.cast(pa.int64()))


def _frame(blocks) -> pd.DataFrame:
    """The blocks of a list as one DataFrame (strings as pandas' string dtype)."""
    t = pa.concat_tables([t for _, t in blocks])
    return t.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)


def read_admissions(mimic_iv: str | Path) -> pd.DataFrame:
    """subject_id, hadm_id, admit_s (int64 seconds); sorted by hadm_id. Whole table (the
    loop reference, releases): the cohort reads ``admission_blocks``."""
    path = Path(mimic_iv) / HOSP_FILES["admissions"]
    df = _frame(admission_blocks(mimic_iv))
    dup = df["hadm_id"].duplicated()
    if dup.any():
        raise MimicInputError(f"{path}: duplicate hadm_id {int(df['hadm_id'][dup].iloc[0])}")
    return df.sort_values("hadm_id", ignore_index=True)


def read_ecg_records(ecg_root: str | Path) -> pd.DataFrame:
    """subject_id, study_id, t_s (int64 seconds), path (relative to the ECG root)."""
    return _frame(ecg_blocks(ecg_root))


def _plain(v) -> str:
    """A cell for a message: ``139`` / ``120000.5`` / ``<NA>``, not ``np.int64(139)``."""
    return str(v.item() if hasattr(v, "item") else v)


def study_datetime_ms(date: pd.Series, time: pd.Series, path: Path, row0: int = 0
                      ) -> np.ndarray:
    """StudyDate (YYYYMMDD) + StudyTime (HHMMSS[.fff...], leading zeros dropped) -> int64 ms."""
    d = pd.to_datetime(date.astype("Int64").astype("string"), format="%Y%m%d", errors="coerce")
    t = time.to_numpy(dtype=np.float64, na_value=np.nan)
    whole = np.floor(t)
    hh, mm, ss = whole // 10_000, (whole // 100) % 100, whole % 100
    bad = d.isna().to_numpy() | np.isnan(t) | (hh > 23) | (mm > 59) | (ss > 60)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MimicInputError(f"{path}: row {row0 + i + 2} (line): bad StudyDate/StudyTime "
                              f"{_plain(date.iloc[i])} / {_plain(time.iloc[i])}")
    day_ms = d.to_numpy().astype("datetime64[ms]").astype(np.int64)
    frac_ms = np.rint((t - whole) * 1000.0).astype(np.int64)
    return day_ms + ((hh * 3600 + mm * 60 + ss).astype(np.int64) * 1000) + frac_ms


def read_cxr_metadata(cxr_root: str | Path) -> pd.DataFrame:
    """dicom_id, subject_id, study_id, ViewPosition, t_ms (StudyDate + StudyTime in ms)."""
    return _frame(cxr_blocks(cxr_root)).drop(columns="frontal")


def read_chexpert_studies(cxr_root: str | Path) -> np.ndarray:
    """Sorted unique study_ids that have a CheXpert row."""
    return np.unique(np.concatenate([t["study_id"].to_numpy()
                                     for _, t in chexpert_blocks(cxr_root)]))


def cxr_relpath(subject_id: np.ndarray, study_id: np.ndarray, dicom_id: np.ndarray,
                ext: str = ".jpg") -> np.ndarray:
    """files/p{2}/p{subject}/s{study}/{dicom_id}{ext} (vectorised string building)."""
    s = pd.Series(subject_id).astype(str)
    out = ("files/p" + s.str[:2] + "/p" + s + "/s" + pd.Series(study_id).astype(str) + "/"
           + pd.Series(dicom_id).astype(str) + ext)
    return out.to_numpy(dtype=object)


# ---- block readers: the same tables in ~block_bytes pieces (the cohort partitions them) ----
BLOCK_BYTES = 1 << 20    # CSV bytes per block: ~12k ECG record-list rows


def admission_blocks(mimic_iv: str | Path, block_bytes: int = BLOCK_BYTES):
    """(row0, table subject_id, hadm_id, admit_s) per block, in file order."""
    path = Path(mimic_iv) / HOSP_FILES["admissions"]
    cols = {"subject_id": pa.int64(), "hadm_id": pa.int64(), "admittime": pa.string()}
    for row0, t in csv_blocks(path, cols, block_bytes, what="admissions"):
        yield row0, pa.table({"subject_id": t["subject_id"], "hadm_id": t["hadm_id"],
                              "admit_s": parse_seconds(t["admittime"], path, "admittime",
                                                       row0)})


def ecg_blocks(ecg_root: str | Path, block_bytes: int = BLOCK_BYTES):
    """(row0, table subject_id, study_id, t_s, path) per block, in file order."""
    path = Path(ecg_root) / ECG_RECORD_LIST
    cols = {"subject_id": pa.int64(), "study_id": pa.int64(), "ecg_time": pa.string(),
            "path": pa.string()}
    for row0, t in csv_blocks(path, cols, block_bytes, what="ECG record"):
        yield row0, pa.table({"subject_id": t["subject_id"], "study_id": t["study_id"],
                              "t_s": parse_seconds(t["ecg_time"], path, "ecg_time", row0),
                              "path": t["path"]})


def cxr_blocks(cxr_root: str | Path, block_bytes: int = BLOCK_BYTES):
    """(row0, table dicom_id, subject_id, study_id, ViewPosition, frontal (AP / PA), t_ms) per
    block, in file order."""
    path = Path(cxr_root) / CXR_FILES["metadata"]
    cols = {"dicom_id": pa.string(), "subject_id": pa.int64(), "study_id": pa.int64(),
            "ViewPosition": pa.string(), "StudyDate": pa.int64(), "StudyTime": pa.float64()}
    for row0, t in csv_blocks(path, cols, block_bytes, what="CXR metadata"):
        t_ms = study_datetime_ms(t["StudyDate"].to_pandas().astype("Int64"),
                                 t["StudyTime"].to_pandas(), path, row0)
        yield row0, pa.table({"dicom_id": t["dicom_id"], "subject_id": t["subject_id"],
                              "study_id": t["study_id"], "ViewPosition": t["ViewPosition"],
                              "frontal": pc.fill_null(pc.is_in(t["ViewPosition"],
                                                  pa.array(CXR_VIEWS, pa.string())), False),
                              "t_ms": t_ms})


def chexpert_blocks(cxr_root: str | Path, block_bytes: int = BLOCK_BYTES):
    """(row0, table subject_id, study_id) per block."""
    path = Path(cxr_root) / CXR_FILES["chexpert"]
    cols = {"subject_id": pa.int64(), "study_id": pa.int64()}
    yield from csv_blocks(path, cols, block_bytes, what="CheXpert")
