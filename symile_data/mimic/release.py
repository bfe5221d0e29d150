"""``symile-data mimic cohort --from-release DIR``: the released cohort and splits, exactly.

The released CSVs (PhysioNet ``symile-mimic`` 1.0.0, written by the reference scripts
``process_mimic_data.py`` and ``create_dataset_splits.py``):
  symile_mimic_data.csv  one row per admission of the cohort: subject_id, hadm_id, admittime,
                         ecg_study_id, ecg_time, ecg_path, cxr_dicom_id, cxr_study_id,
                         cxr_StudyDateTime, cxr_path, CheXpert labels, and the 50 labs as
                         columns named by itemid ("50802", ...), raw valuenum (empty = none)
  train.csv / val.csv    the admissions of those splits (subject_id, hadm_id, cxr_path,
                         ecg_path, labs, "{itemid}_percentile")
  test.csv, val_retrieval.csv   long format with label_hadm_id / label (queries: label 1)
The cohort is pinned to those rows: each admission of train / val / test is looked up in the
local MIMIC trees (admission in admissions.csv.gz with the same subject; the ECG study in
record_list.csv and its WFDB header on disk; the CXR dicom in the metadata and its image file on
disk). Lab values are the released ones (the reference's pick). An admission that cannot be
found is a row of ``failures.parquet`` naming what is missing, never silently dropped; admissions
of symile_mimic_data.csv in no split (the reference dropped them at split time) are counted.
Output: the same ``cohort.parquet`` (schema ``mimic_cohort``) as ``mimic cohort``, so
``mimic shards`` runs unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from symile_data.errors import require_csv_columns
from symile_data.io.atomic import atomic_path, atomic_write_json
from symile_data.mimic.config import LAB_COLUMNS, LAB_ITEMIDS, CohortConfig
from symile_data.mimic.readers import (MimicInputError, cxr_relpath, read_admissions,
                                       read_cxr_metadata, read_ecg_records)
from symile_data.schema import get

COHORT_CSV = "symile_mimic_data.csv"
SPLIT_CSVS = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
NEEDED = ("subject_id", "hadm_id", "ecg_study_id", "cxr_dicom_id", "cxr_study_id")


def _csv(path: Path, cols: list[str]) -> pd.DataFrame:
    require_csv_columns(path, cols, MimicInputError)
    return pd.read_csv(path, usecols=cols)


def released_splits(release: Path) -> pd.DataFrame:
    """hadm_id, split of the released admissions (test: the label-1 query rows)."""
    parts = []
    for split, name in SPLIT_CSVS.items():
        cols = ["hadm_id"] + (["label_hadm_id", "label"] if split == "test" else [])
        df = _csv(release / name, cols)
        if split == "test":
            df = df[(df["label"] == 1) & (df["label_hadm_id"] == df["hadm_id"])]
        parts.append(pd.DataFrame({"hadm_id": df["hadm_id"].to_numpy(np.int64),
                                   "split": split}))
    out = pd.concat(parts, ignore_index=True)
    dup = out["hadm_id"].duplicated()
    if dup.any():
        raise MimicInputError(f"{release}: hadm_id {int(out['hadm_id'][dup].iloc[0])} is in "
                              f"two split CSVs")
    return out


def _lookup(df: pd.DataFrame, key: str, values: np.ndarray) -> np.ndarray:
    """Row position in ``df`` of each value (-1 = absent); ``df[key]`` must be unique."""
    index = pd.Index(df[key].to_numpy())
    return index.get_indexer(values) if index.is_unique else \
        index.drop_duplicates().get_indexer(values)


def cohort_from_release(release: str | Path, mimic_iv: str | Path, ecg_root: str | Path,
                        cxr_root: str | Path, out: str | Path, cfg: CohortConfig
                        ) -> dict[str, Any]:
    release, ecg_root, cxr_root, out = Path(release), Path(ecg_root), Path(cxr_root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").unlink(missing_ok=True)
    lab_names = [str(i) for i in LAB_ITEMIDS]
    rel = _csv(release / COHORT_CSV, list(NEEDED) + lab_names)
    splits = released_splits(release)
    df = splits.merge(rel, on="hadm_id", how="left", validate="one_to_one")
    errors = np.full(len(df), "", dtype=object)

    def fail(mask: np.ndarray, msg: str | np.ndarray) -> None:
        new = mask & (errors == "")
        errors[new] = msg if isinstance(msg, str) else msg[new]

    fail(df["subject_id"].isna().to_numpy(), f"not in {COHORT_CSV}")
    hadm = df["hadm_id"].to_numpy(np.int64)
    subj = df["subject_id"].fillna(-1).to_numpy(np.int64)
    adm = read_admissions(mimic_iv)
    a = _lookup(adm, "hadm_id", hadm)
    fail(a < 0, "admission not in hosp/admissions.csv.gz")
    fail((a >= 0) & (adm["subject_id"].to_numpy()[np.maximum(a, 0)] != subj),
         "admission belongs to another subject_id in hosp/admissions.csv.gz")
    ecg = read_ecg_records(ecg_root)
    e = _lookup(ecg, "study_id", df["ecg_study_id"].fillna(-1).to_numpy(np.int64))
    fail(e < 0, "ECG study_id not in record_list.csv")
    ecg_path = np.where(e >= 0, ecg["path"].to_numpy(dtype=object)[np.maximum(e, 0)], "")
    hea = np.array([(ecg_root / f"{p}.hea").is_file() if p else False for p in ecg_path])
    fail((e >= 0) & ~hea, np.array([f"ECG record {ecg_root / p}.hea not found"
                                    for p in ecg_path], dtype=object))
    meta = read_cxr_metadata(cxr_root)
    c = _lookup(meta, "dicom_id", df["cxr_dicom_id"].fillna("").astype(str).to_numpy())
    fail(c < 0, "CXR dicom_id not in mimic-cxr-2.0.0-metadata.csv.gz")
    cxr_path = cxr_relpath(subj, df["cxr_study_id"].fillna(-1).to_numpy(np.int64),
                           df["cxr_dicom_id"].fillna("").astype(str).to_numpy(), cfg.cxr_ext)
    have = np.array([(cxr_root / p).is_file() for p in cxr_path])
    fail((c >= 0) & ~have, np.array([f"CXR image {cxr_root / p} not found" for p in cxr_path],
                                    dtype=object))
    ok = errors == ""
    k = np.flatnonzero(ok)
    cols = {"subject_id": subj[k], "hadm_id": hadm[k],
            "admittime": pa.array(adm["admit_s"].to_numpy()[a[k]], pa.timestamp("s")),
            "ecg_study_id": ecg["study_id"].to_numpy()[e[k]],
            "ecg_time": pa.array(ecg["t_s"].to_numpy()[e[k]], pa.timestamp("s")),
            "ecg_path": ecg_path[k].astype(str),
            "cxr_dicom_id": meta["dicom_id"].to_numpy(dtype=object)[c[k]].astype(str),
            "cxr_study_id": meta["study_id"].to_numpy()[c[k]],
            "cxr_time": pa.array(meta["t_ms"].to_numpy()[c[k]], pa.timestamp("ms")),
            "cxr_path": cxr_path[k].astype(str)}
    cols.update({col: df[name].to_numpy(np.float64)[k] for col, name in zip(LAB_COLUMNS,
                                                                             lab_names)})
    cols["split"] = df["split"].to_numpy(dtype=object)[k].astype(str)
    table = pa.table(cols).cast(get("mimic_cohort"))
    failures = pa.table({"hadm_id": hadm[~ok], "split": df["split"].to_numpy(dtype=object)[~ok]
                         .astype(str), "status": ["failed"] * int((~ok).sum()),
                         "error": errors[~ok].astype(str)})
    for name, t in (("cohort.parquet", table), ("release_failures.parquet", failures)):
        with atomic_path(out / name) as tmp:
            pq.write_table(t, tmp, compression="zstd")
    dropped = int((~rel["hadm_id"].isin(splits["hadm_id"])).sum())
    report = {"source": "release", "release": str(release),
              "released": {"cohort_csv_rows": len(rel), "in_splits": len(splits),
                           "in_no_split": dropped,
                           **{s: int((splits["split"] == s).sum()) for s in SPLIT_CSVS}},
              "cohort": {"admissions": int(ok.sum()),
                         **{f"{s}_admissions": int((cols["split"] == s).sum())
                            for s in SPLIT_CSVS}},
              "failed": int((~ok).sum()),
              "errors": sorted(set(errors[~ok].tolist()))[:20],
              "labs": f"values from {COHORT_CSV} (the reference's pick)"}
    atomic_write_json(out / "report.json", report)
    return report
