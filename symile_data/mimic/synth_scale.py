"""MIMIC-layout tree at full MIMIC-IV size, in bounded memory (for bench/scale_mimic.py).

The tables come from the demo generator (synth.py, synth_labs.py, synth_tables.py,
synth_cxr.py) with three changes that make 430k admissions fit on one small machine:
- labevents is written in chunks of admissions and padded to ``rows_per_admission`` rows (~275
  in MIMIC-IV 2.2: 118M rows / 430k admissions) with rows the cohort must skip (items outside
  the 50, cohort items outside every window, rows without valuenum); with the real-file quirks:
  quoted ``comments`` holding commas and line breaks, empty ``valuenum``, several ``valueuom``
  spellings;
- media are shared: the record list points at a small pool of WFDB records (valid, NaN,
  all-zero), and one JPG is hard-linked at the path of every frontal CXR that some admission's
  window reaches (the only files the cohort and the shards look at);
- ``p_cxr`` is low so the cohort is ~2.7% of the admissions, as the real 11.6k of 430k.
"""
from __future__ import annotations

import gzip
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from PIL import Image

from symile_data.io.atomic import atomic_write_json
from symile_data.mimic.config import ECG_FS, ECG_LEAD_NAMES, LAB_ITEMIDS, SynthConfig
from symile_data.mimic.synth import _admissions, _hosp_tables
from symile_data.mimic.synth_cxr import cxr_frames
from symile_data.mimic.synth_labs import OTHER_ITEMIDS, d_labitems_frame, labevents_frame
from symile_data.mimic.synth_media import cxr_batch, ecg_batch, spoil_ecg
from symile_data.mimic.synth_tables import write_csv
from symile_data.mimic.wfdb_io import write_wfdb16
from symile_data.progress import progress

H = 3600
UOM = ["mg/dL", "mg/dl", "MG/DL", "mEq/L", "meq/L", "K/uL", "%", ""]
COMMENT = "Verified by lab, repeat analysis; see note.\nResult called to RN, 2 units"
ECG_POOL = 8                    # valid pool records; + one NaN and one all-zero record


def _filler(rng, subj, admit, n_rows: int) -> pd.DataFrame:
    """Rows the cohort skips: other items near the admission, cohort items far outside."""
    a = rng.integers(0, len(subj), n_rows)
    cohort_item = rng.random(n_rows) < 0.3
    item = np.where(cohort_item, np.asarray(LAB_ITEMIDS)[rng.integers(0, 50, n_rows)],
                    np.asarray(OTHER_ITEMIDS)[rng.integers(0, len(OTHER_ITEMIDS), n_rows)])
    far = np.where(rng.random(n_rows) < 0.5, -1, 1) * rng.integers(25 * H, 400 * 24 * H, n_rows)
    near = rng.integers(-48 * H, 48 * H, n_rows)
    return pd.DataFrame({"subject_id": subj[a], "hadm_id": pd.arrays.IntegerArray(
                             np.zeros(n_rows, np.int64), np.ones(n_rows, bool)),
                         "itemid": item, "charttime_s": admit[a] + np.where(cohort_item, far,
                                                                            near),
                         "valuenum": np.round(rng.uniform(0, 200, n_rows), 2)})


def _lab_table(df: pd.DataFrame, first_id: int, rng) -> pa.Table:
    """MIMIC-IV 2.2 labevents columns with the quirks (comments, empty valuenum, uom)."""
    n = len(df)
    t = df["charttime_s"].to_numpy()
    val = pa.array(df["valuenum"].to_numpy(), from_pandas=True)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    comment = pc.if_else(pa.array(rng.random(n) < 0.02), COMMENT, pa.scalar(None, pa.string()))
    return pa.table({
        "labevent_id": ids, "subject_id": df["subject_id"].to_numpy(),
        "hadm_id": pa.array(df["hadm_id"], pa.int64(), from_pandas=True),
        "specimen_id": 10_000_000 + ids * 3, "itemid": df["itemid"].to_numpy(),
        "order_provider_id": pa.nulls(n, pa.string()),
        # timestamp[s] columns: the CSV writer prints them as 'YYYY-MM-DD HH:MM:SS' (fast)
        "charttime": pa.array(t, pa.timestamp("s")),
        "storetime": pa.array(t + 2 * H, pa.timestamp("s")),
        "value": pc.if_else(pc.is_null(val), "___", pc.cast(val, pa.string())),
        "valuenum": val, "valueuom": pa.array(UOM).take(rng.integers(0, len(UOM), n)),
        "ref_range_lower": pa.nulls(n, pa.float64()), "ref_range_upper": pa.nulls(n, pa.float64()),
        "flag": pa.nulls(n, pa.string()), "priority": pa.array(np.full(n, "ROUTINE")),
        "comments": comment})


def write_labevents(rng, adm: pd.DataFrame, cfg: SynthConfig, path: Path,
                    rows_per_admission: int, chunk: int, level: int) -> int:
    """labevents.csv.gz in chunks of admissions; returns the row count. Each chunk's CSV text
    is gzipped on a second thread (zlib drops the GIL) while the next chunk is generated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    with gzip.open(path, "wb", compresslevel=level) as f, ThreadPoolExecutor(1) as ex:
        pending = None
        for s in progress(range(0, len(adm), chunk), desc="synth labevents",
                          total=-(-len(adm) // chunk)):
            a = adm.iloc[s:s + chunk]
            subj, admit = a["subject_id"].to_numpy(), a["admit_s"].to_numpy()
            labs = labevents_frame(rng, subj, a["hadm_id"].to_numpy(), admit,
                                   a["b"].to_numpy(), a["d"].to_numpy(), cfg.p_labs,
                                   cfg.signal_strength)
            labs = labs.drop(columns=["labevent_id", "specimen_id"])
            fill = _filler(rng, subj, admit, max(0, rows_per_admission * len(a) - len(labs)))
            df = pd.concat([labs, fill], ignore_index=True)   # ids in file order, as real
            sink = pa.BufferOutputStream()
            pacsv.write_csv(_lab_table(df, total + 1, rng), sink, pacsv.WriteOptions(
                include_header=total == 0, quoting_style="needed"))
            if pending is not None:
                pending.result()                             # at most one chunk in flight
            pending = ex.submit(f.write, sink.getvalue())
            total += len(df)
        if pending is not None:
            pending.result()
    return total


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def synth_scale_tree(out: str | Path, admissions: int, seed: int = 0,
                     rows_per_admission: int = 275, p_cxr: float = 0.01,
                     chunk: int = 5000, gzip_level: int = 1) -> dict:
    """Write the three trees under ``out`` (replaced); returns counts (also synth_report.json)."""
    from symile_data.mimic.cohort_steps import cxr_path_of, cxr_windows
    from symile_data.mimic.config import CXR_VIEWS
    from symile_data.mimic.readers import study_datetime_ms
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    cfg = SynthConfig(admissions=admissions, seed=seed, p_cxr=p_cxr)
    rng = np.random.default_rng(seed)
    adm = _admissions(rng, cfg)
    for name, df in (*_hosp_tables(rng, adm).items(), ("d_labitems", d_labitems_frame())):
        write_csv(df, out / "mimic-iv" / "hosp" / f"{name}.csv.gz")
    n_labs = write_labevents(rng, adm, cfg, out / "mimic-iv/hosp/labevents.csv.gz",
                             rows_per_admission, chunk, gzip_level)
    # ECG: record list of every admission; files from a pool (kind 0 ok, 1 NaN, 2 all zero)
    from symile_data.mimic.synth_tables import ecg_frame
    ecg = ecg_frame(rng, adm, cfg)
    kind = np.r_[np.zeros(ECG_POOL, np.int64), 1, 2]
    sig = ecg_batch(rng, rng.integers(0, 2, len(kind)), rng.normal(0, 1, len(kind)),
                    cfg.ecg_samples, cfg.signal_strength)
    spoil_ecg(rng, sig, kind)
    pool = [f"files/pool/r{i}" for i in range(len(kind))]
    for i, p in enumerate(pool):
        write_wfdb16(out / "mimic-iv-ecg" / p, sig[i], ECG_FS, ECG_LEAD_NAMES)
    k = ecg["kind"].to_numpy()
    pick = np.where(k == 0, rng.integers(0, ECG_POOL, len(k)), ECG_POOL + k - 1)
    ecg["path"] = np.asarray(pool, dtype=object)[pick]
    write_csv(ecg.drop(columns=["lat_a", "lat_c", "kind"]), out / "mimic-iv-ecg/record_list.csv")
    # CXR: tables as the demo; one JPG hard-linked where some admission's window reaches
    meta, chexpert, split, lat = cxr_frames(rng, adm, cfg)
    root = out / "mimic-cxr-jpg"
    for name, df in (("metadata", meta), ("chexpert", chexpert), ("split", split)):
        write_csv(df, root / f"mimic-cxr-2.0.0-{name}.csv.gz")
    m = meta[["dicom_id", "subject_id", "study_id", "ViewPosition"]].copy()
    m["t_ms"] = study_datetime_ms(meta["StudyDate"], meta["StudyTime"], Path("metadata"))
    m["missing"] = lat["missing"].to_numpy()
    front = m[m["ViewPosition"].isin(CXR_VIEWS).to_numpy(dtype=bool)].reset_index(drop=True)
    cxr = {"subject_id": front["subject_id"].to_numpy(), "study_id": front["study_id"].to_numpy(),
           "t_ms": front["t_ms"].to_numpy(), "dicom_id": pa.array(front["dicom_id"], pa.string())}
    order, lo, hi = cxr_windows(adm["subject_id"].to_numpy(), adm["admit_s"].to_numpy(), cxr)
    lens = hi - lo
    reach = np.repeat(lo, lens) + np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    rows = np.unique(order[reach])
    rows = rows[~front["missing"].to_numpy()[rows]]
    img = cxr_batch(rng, np.zeros(1), np.zeros(1), np.zeros(1, np.int64), np.zeros(1, bool),
                    cfg.cxr_height, cfg.cxr_width, cfg.signal_strength)[0]
    src = root / "files" / "pool.jpg"
    src.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(src, format="JPEG", quality=90)
    paths = cxr_path_of(cxr, ".jpg")(rows)
    for p in progress(paths, desc="link CXR", total=len(rows)):
        _link(src, root / p)
    report = {"admissions": admissions, "labevents_rows": n_labs, "ecg_records": len(ecg),
              "cxr_rows": len(meta), "cxr_files": len(rows), "chexpert_studies": len(chexpert),
              "rows_per_admission": rows_per_admission, "p_cxr": p_cxr, "seed": seed}
    atomic_write_json(out / "synth_report.json", report)
    return report
