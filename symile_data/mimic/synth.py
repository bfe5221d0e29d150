"""MIMIC-layout generator: MIMIC-IV hosp, MIMIC-IV-ECG and MIMIC-CXR-JPG trees (issue 5).

``synth_tree(out, cfg)`` writes
  out/mimic-iv/hosp/{patients,admissions,labevents,d_labitems}.csv.gz
  out/mimic-iv-ecg/record_list.csv + files/p{4}/p{subject}/s{study}/{study}.hea/.dat
  out/mimic-cxr-jpg/mimic-cxr-2.0.0-{metadata,chexpert,split}.csv.gz
                   + files/p{2}/p{subject}/s{study}/{dicom_id}.jpg
  out/*/SHA256SUMS.txt (as PhysioNet ships them), out/synth_report.json (written last)
with the real column sets, events before / inside / after every window, shared events of close
readmissions, lateral views, missing JPGs, NaN and all-zero ECGs, studies without CheXpert
labels, StudyTime with fractions, and the planted signal of synth_media.py. The tree is built in
a sibling ``.partial`` directory and renamed into place (complete or absent).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from symile_data.config import params_hash
from symile_data.hashing import sha256_file
from symile_data.io.atomic import atomic_write_json, read_json
from symile_data.mimic.config import SynthConfig
from symile_data.mimic.synth_labs import d_labitems_frame, labevents_frame
from symile_data.mimic.synth_cxr import cxr_frames, write_cxr_images
from symile_data.mimic.synth_tables import (ecg_frame, fmt_ts, labevents_table, write_csv,
                                            write_ecg_records)

H = 3600
T0 = 4_417_977_600          # 2110-01-01 00:00:00 in seconds since 1970 (date-shifted era)


def _admissions(rng: np.random.Generator, cfg: SynthConfig) -> pd.DataFrame:
    """One row per admission with latents a, b (0/1) and c, d (N(0, 1))."""
    n = cfg.admissions
    again = rng.random(n) < cfg.p_readmit
    again[0] = False
    subj_idx = np.cumsum(~again) - 1
    n_subj = int(subj_idx[-1]) + 1
    subject_ids = 10_000_000 + np.cumsum(rng.integers(1, 60, n_subj))
    close = rng.random(n) < 0.5                     # readmission 30-60 h later: shared events
    gap = np.where(close, rng.integers(30 * 60, 60 * 60, n) * 60,
                   rng.integers(30, 700, n) * 86_400 + rng.integers(0, 86_400, n))
    start = T0 + rng.integers(0, 90 * 365, n) * 86_400 + rng.integers(0, 1440, n) * 60
    step = np.where(again, gap, start)
    csum = np.cumsum(step)
    first_pos = np.flatnonzero(~again)
    base = csum[first_pos] - step[first_pos]
    admit = csum - base[subj_idx]
    hadm = 20_000_000 + rng.permutation(n) * 7 + rng.integers(0, 7, n)
    return pd.DataFrame({
        "subject_id": subject_ids[subj_idx], "hadm_id": hadm, "admit_s": admit,
        "a": rng.integers(0, 2, n), "b": rng.integers(0, 2, n),
        "c": rng.normal(0, 1, n), "d": rng.normal(0, 1, n)})


def _hosp_tables(rng, adm: pd.DataFrame) -> dict[str, pd.DataFrame]:
    n = len(adm)
    subj = adm["subject_id"].drop_duplicates().to_numpy()
    ns = len(subj)
    patients = pd.DataFrame({
        "subject_id": subj, "gender": np.where(rng.random(ns) < 0.5, "F", "M"),
        "anchor_age": rng.integers(18, 91, ns), "anchor_year": rng.integers(2110, 2190, ns),
        "anchor_year_group": "2011 - 2013", "dod": None})
    disch = adm["admit_s"].to_numpy() + rng.integers(1, 10 * 24, n) * H
    admissions = pd.DataFrame({
        "subject_id": adm["subject_id"], "hadm_id": adm["hadm_id"],
        "admittime": fmt_ts(adm["admit_s"].to_numpy()), "dischtime": fmt_ts(disch),
        "deathtime": None, "admission_type": np.where(rng.random(n) < 0.6, "EW EMER.",
                                                       "URGENT"),
        "admit_provider_id": None, "admission_location": "EMERGENCY ROOM",
        "discharge_location": "HOME", "insurance": "Other", "language": "ENGLISH",
        "marital_status": None, "race": "UNKNOWN", "edregtime": None, "edouttime": None,
        "hospital_expire_flag": 0})
    return {"patients": patients, "admissions": admissions}


def write_sha256sums(root: Path) -> None:
    """root/SHA256SUMS.txt as PhysioNet ships it ("<sha256>  <relative path>", sorted): the
    DVC dependency that stands for every media file of the tree (dvc.yaml mimic_* stages)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS.txt")
    lines = [f"{sha256_file(p)}  {p.relative_to(root).as_posix()}\n" for p in files]
    (root / "SHA256SUMS.txt").write_text("".join(lines))


def synth_tree(out: str | Path, cfg: SynthConfig) -> dict:
    """Write the three trees under ``out``; returns the report (also ``synth_report.json``)."""
    out = Path(out)
    h = params_hash(cfg)
    report_path = out / "synth_report.json"
    if report_path.exists() and read_json(report_path).get("params_hash") == h:
        return read_json(report_path)
    part = out.with_name(f".{out.name}.partial")
    shutil.rmtree(part, ignore_errors=True)
    rng = np.random.default_rng(cfg.seed)
    adm = _admissions(rng, cfg)
    hosp = _hosp_tables(rng, adm)
    labs = labevents_frame(rng, adm["subject_id"].to_numpy(), adm["hadm_id"].to_numpy(),
                           adm["admit_s"].to_numpy(), adm["b"].to_numpy(),
                           adm["d"].to_numpy(), cfg.p_labs, cfg.signal_strength)
    for name, df in (*hosp.items(), ("labevents", labevents_table(labs)),
                     ("d_labitems", d_labitems_frame())):
        write_csv(df, part / "mimic-iv" / "hosp" / f"{name}.csv.gz")
    ecg = ecg_frame(rng, adm, cfg)
    write_csv(ecg.drop(columns=["lat_a", "lat_c", "kind"]),
              part / "mimic-iv-ecg" / "record_list.csv")
    write_ecg_records(rng, ecg, part / "mimic-iv-ecg", cfg)
    meta, chexpert, split, latents = cxr_frames(rng, adm, cfg)
    cxr_root = part / "mimic-cxr-jpg"
    write_csv(meta, cxr_root / "mimic-cxr-2.0.0-metadata.csv.gz")
    write_csv(chexpert, cxr_root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    write_csv(split, cxr_root / "mimic-cxr-2.0.0-split.csv.gz")
    n_missing = write_cxr_images(rng, meta, latents, cxr_root, cfg)
    report = {"params_hash": h, "params": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
              "admissions": len(adm), "subjects": int(adm["subject_id"].nunique()),
              "labevents_rows": len(labs), "ecg_records": len(ecg),
              "ecg_bad_records": int((ecg["kind"] > 0).sum()),
              "cxr_dicoms": len(meta), "cxr_studies": int(meta["study_id"].nunique()),
              "cxr_missing_jpg": n_missing, "chexpert_studies": len(chexpert)}
    for root in ("mimic-iv", "mimic-iv-ecg", "mimic-cxr-jpg"):
        write_sha256sums(part / root)
    atomic_write_json(part / "synth_report.json", report)
    # latents of every admission: the ground truth of the planted signal (for analysis)
    adm.drop(columns=["admit_s"]).to_parquet(part / "latents.parquet", index=False)
    if out.exists():
        shutil.rmtree(out)
    part.rename(out)
    return report
