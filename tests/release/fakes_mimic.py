"""A fake PhysioNet ``symile-mimic`` release made from a generated MIMIC tree.

Generated tree (``symile_data.mimic.synth``) -> our cohort -> our shards -> ``export-reference``
(the reference tensor layout: {train,val,val_retrieval,test}/*.pt) plus the release CSVs in the
reference's columns: symile_mimic_data.csv (cohort rows, labs as columns named by itemid, plus
one admission in no split, as the reference's split-time drop leaves), train.csv / val.csv, the
long-format val_retrieval.csv / test.csv (rows in the tensors' order) and labs_means.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from symile_data.io.manifest import read_manifest
from symile_data.mimic.build import build_shards
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import LAB_COLUMNS, LAB_ITEMIDS, CohortConfig, ShardsConfig, \
    SynthConfig
from symile_data.mimic.synth import synth_tree
from symile_data.publish.reference import export_reference

TREES = ("mimic-iv", "mimic-iv-ecg", "mimic-cxr-jpg")


def make_mimic_release(root: Path, admissions: int = 90) -> dict[str, Path]:
    raw, cohort, shards, rel = (root / n for n in ("raw", "cohort", "shards", "release"))
    synth_tree(raw, SynthConfig(admissions=admissions, cxr_height=336, cxr_width=320))
    iv, ecg, cxr = (raw / t for t in TREES)
    build_cohort(iv, ecg, cxr, cohort, CohortConfig(train_size=0.5, val_size=0.25,
                                                    ecg_check_threads=1))
    build_shards(cohort, ecg, cxr, shards, ShardsConfig())
    export_reference(shards, rel)
    c = pq.read_table(cohort / "cohort.parquet").to_pandas()
    labs = {str(i): c[col] for i, col in zip(LAB_ITEMIDS, LAB_COLUMNS)}
    full = pd.DataFrame({
        "subject_id": c.subject_id, "hadm_id": c.hadm_id, "admittime": c.admittime,
        "cxr_dicom_id": c.cxr_dicom_id, "cxr_study_id": c.cxr_study_id,
        "cxr_StudyDateTime": c.cxr_time.dt.floor("s"), "cxr_path": c.cxr_path,
        "Edema": 1.0, "ecg_study_id": c.ecg_study_id, "ecg_time": c.ecg_time,
        "ecg_path": c.ecg_path, **labs})
    extra = full.iloc[[0]].assign(hadm_id=999_999_999)       # in no split (split-time drop)
    pd.concat([full, extra]).to_csv(rel / "symile_mimic_data.csv", index=False)
    sub = dict(zip(c.hadm_id, c.subject_id))
    means = read_manifest(shards / "symile-mimic")["extra"]["lab_mean_percentile"]
    (rel / "labs_means.json").write_text(json.dumps(
        {f"{i}_percentile": m for i, m in zip(LAB_ITEMIDS, means)}, indent=4))
    for split in ("train", "val", "val_retrieval", "test"):
        hadm = torch.load(rel / split / f"hadm_id_{split}.pt").numpy()
        df = full.set_index("hadm_id").loc[hadm].reset_index()
        df = df[["subject_id", "hadm_id", "cxr_path", "ecg_path", *labs]]
        if split in ("val_retrieval", "test"):
            df["label_hadm_id"] = torch.load(rel / split / f"label_hadm_id_{split}.pt").numpy()
            df["label"] = torch.load(rel / split / f"label_{split}.pt").numpy()
        assert (df.subject_id.to_numpy() == np.array([sub[h] for h in hadm])).all()
        df.to_csv(rel / f"{split}.csv", index=False)
    return {"raw": raw, "cohort": cohort, "shards": shards, "release": rel,
            "mimic_iv": iv, "ecg": ecg, "cxr": cxr}
