"""MIMIC-CXR-JPG tables (metadata, chexpert, split) and JPG files for the generator.

Per admission: a main study in (+24 h, +72 h] (some exactly at +72 h: in; some exactly at +24 h:
out), decoy studies before and after the window with unrelated latents. A study has one frontal
view (AP or PA) and often a lateral; some studies are lateral only. Some JPGs are not written
(missing files) and some studies have no CheXpert row. StudyTime is HHMMSS or HHMMSS.fff.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from PIL import Image

from symile_data.mimic.config import CHEXPERT_LABELS, SynthConfig
from symile_data.mimic.synth_media import cxr_batch
from symile_data.mimic.synth_tables import _join, _s, fmt_ts, hex_ids
from symile_data.progress import progress

HMS = 3_600_000   # one hour in ms


def _studies(rng: np.random.Generator, adm: pd.DataFrame, cfg: SynthConfig) -> pd.DataFrame:
    n = len(adm)
    has = rng.random(n) < cfg.p_cxr
    off = rng.integers(24 * HMS + 1, 72 * HMS + 1, n)
    e = rng.random(n)
    off = np.where(e < 0.02, 72 * HMS, np.where(e > 0.98, 24 * HMS, off))
    before, after = rng.random(n) < 0.35, rng.random(n) < 0.35
    b_off = rng.integers(-48 * HMS, 24 * HMS, n)
    a_off = rng.integers(72 * HMS + 1000, 240 * HMS, n)
    side = adm["a"].to_numpy() ^ adm["b"].to_numpy()
    c, d = adm["c"].to_numpy(), adm["d"].to_numpy()
    rs, rc, rd = rng.integers(0, 2, n), rng.normal(0, 1, n), rng.normal(0, 1, n)
    parts = [(has, off, c, d, side), (before, b_off, rc, rd, rs),
             (after, a_off, -rc, -rd, 1 - rs)]
    idx = np.concatenate([np.flatnonzero(p[0]) for p in parts])
    cols = [np.concatenate([p[j + 1][p[0]] for p in parts]) for j in range(4)]
    whole = rng.random(len(idx)) < 0.5                          # no fraction in StudyTime
    t_ms = adm["admit_s"].to_numpy()[idx] * 1000 + cols[0]
    t_ms = np.where(whole, t_ms // 1000 * 1000, t_ms)
    m = len(idx)
    return pd.DataFrame({"subject_id": adm["subject_id"].to_numpy()[idx],
                         "study_id": 50_000_000 + rng.permutation(m) * 3 + rng.integers(0, 3, m),
                         "t_ms": t_ms, "c": cols[1], "d": cols[2], "side": cols[3],
                         "lateral_only": rng.random(m) < 0.05})


def cxr_frames(rng, adm: pd.DataFrame, cfg: SynthConfig):
    """(metadata, chexpert, split, latents): latents per dicom row for drawing the images."""
    st = _studies(rng, adm, cfg)
    with_lat = ~st["lateral_only"].to_numpy() & (rng.random(len(st)) < 0.6)
    frontal = np.where(rng.random(len(st)) < 0.6, "AP", "PA")
    views = [(~st["lateral_only"].to_numpy(), frontal),
             (with_lat | st["lateral_only"].to_numpy(),
              np.where(rng.random(len(st)) < 0.8, "LATERAL", "LL"))]
    sidx = np.concatenate([np.flatnonzero(m) for m, _ in views])
    view = np.concatenate([v[m] for m, v in views])
    rows = st.iloc[sidx].reset_index(drop=True)
    order = np.lexsort((view, rows["study_id"].to_numpy(), rows["t_ms"].to_numpy(),
                        rows["subject_id"].to_numpy()))
    rows, view = rows.iloc[order].reset_index(drop=True), view[order]
    n = len(rows)
    dicom = hex_ids(rng, n)
    sec = rows["t_ms"].to_numpy() // 1000
    frac = (rows["t_ms"].to_numpy() % 1000) / 1000.0
    hms = pc.cast(fmt_ts(sec, "%H%M%S"), "int64").to_numpy() + frac
    meta = pd.DataFrame({
        "dicom_id": dicom.to_numpy(False), "subject_id": rows["subject_id"],
        "study_id": rows["study_id"],
        "PerformedProcedureStepDescription": np.where(view == "AP", "CHEST (PORTABLE AP)",
                                                      "CHEST (PA AND LAT)"),
        "ViewPosition": view, "Rows": cfg.cxr_height, "Columns": cfg.cxr_width,
        "StudyDate": pc.cast(fmt_ts(sec, "%Y%m%d"), "int64").to_numpy(), "StudyTime": hms,
        "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
        "ViewCodeSequence_CodeMeaning": np.where(view == "AP", "antero-posterior",
                                                 np.where(view == "PA", "postero-anterior",
                                                          "lateral")),
        "PatientOrientationCodeSequence_CodeMeaning": "Erect"})
    studies = st.sort_values("study_id")
    studies = studies[rng.random(len(studies)) >= cfg.p_no_chexpert]
    lab = rng.choice(np.array([1.0, 0.0, -1.0, np.nan]), (len(studies), len(CHEXPERT_LABELS)),
                     p=[0.15, 0.1, 0.05, 0.7])
    chexpert = pd.DataFrame(lab, columns=list(CHEXPERT_LABELS))
    chexpert.insert(0, "study_id", studies["study_id"].to_numpy())
    chexpert.insert(0, "subject_id", studies["subject_id"].to_numpy())
    chexpert["Cardiomegaly"] = np.where(studies["c"].to_numpy() > 1.0, 1.0,
                                        chexpert["Cardiomegaly"])
    split = pd.DataFrame({"dicom_id": meta["dicom_id"], "study_id": meta["study_id"],
                          "subject_id": meta["subject_id"],
                          "split": np.where(meta["subject_id"] % 100 < 98, "train",
                                            np.where(meta["subject_id"] % 2 == 0, "validate",
                                                     "test"))})
    ss, sst = _s(meta["subject_id"]), _s(meta["study_id"])
    path = _join("files/p", pc.utf8_slice_codeunits(ss, 0, 2), "/p", ss, "/s", sst, "/",
                 dicom, ".jpg")
    latents = pd.DataFrame({"path": path.to_numpy(False), "c": rows["c"], "d": rows["d"],
                            "side": rows["side"], "lateral": np.isin(view, ["LATERAL", "LL"]),
                            "missing": rng.random(n) < cfg.p_missing_jpg})
    return meta, chexpert, split, latents


def write_cxr_images(rng, meta: pd.DataFrame, lat: pd.DataFrame, root: Path,
                     cfg: SynthConfig, chunk: int = 32) -> int:
    """Draw and save every JPG except the 'missing' ones; returns the number left missing."""
    paths = lat["path"].to_numpy()
    for s in progress(range(0, len(lat), chunk), desc="synth CXR images",
                      total=-(-len(lat) // chunk)):
        sl = slice(s, s + chunk)
        imgs = cxr_batch(rng, lat["c"].to_numpy()[sl], lat["d"].to_numpy()[sl],
                         lat["side"].to_numpy()[sl], lat["lateral"].to_numpy()[sl],
                         cfg.cxr_height, cfg.cxr_width, cfg.signal_strength)
        for i in np.flatnonzero(~lat["missing"].to_numpy()[sl]):   # one file per image
            p = root / paths[s + i]
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(imgs[i]).save(p, format="JPEG", quality=90)
    return int(lat["missing"].sum())
