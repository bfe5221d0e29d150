"""Tables and files of the MIMIC-IV-ECG and MIMIC-CXR-JPG generated trees, and CSV writing.

Strings (paths, timestamps, ids) are built with pyarrow compute kernels, never per row.
Time offsets relative to admittime: ECG in seconds, CXR in milliseconds (StudyTime fractions).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from symile_data.mimic.config import ECG_FS, ECG_LEAD_NAMES, SynthConfig
from symile_data.mimic.synth_media import ecg_batch, spoil_ecg
from symile_data.mimic.wfdb_io import write_wfdb16
from symile_data.progress import progress

H = 3600


def fmt_ts(seconds: np.ndarray, fmt: str = "%Y-%m-%d %H:%M:%S") -> pa.Array:
    return pc.strftime(pa.array(np.asarray(seconds, np.int64), pa.timestamp("s")), format=fmt)


def _s(x) -> pa.Array:
    return pc.cast(pa.array(np.asarray(x)), pa.string())


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """MIMIC-CXR-style dicom_ids: five dash-separated groups of 8 hex digits."""
    nib = rng.integers(0, 16, (n, 40), dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", np.uint8)[nib]            # (n, 40) ASCII
    out = np.full((n, 44), ord("-"), np.uint8)
    for g in range(5):
        out[:, g * 9:g * 9 + 8] = chars[:, g * 8:(g + 1) * 8]
    return pa.array(out.view("S44").ravel().astype(str))


def write_csv(df: pd.DataFrame | pa.Table, path: Path) -> None:
    """CSV (``.gz``: gzip, deterministic bytes), header row, quoting only where needed."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    opts = pacsv.WriteOptions(quoting_style="needed")
    if path.suffix == ".gz":
        with pa.CompressedOutputStream(str(path), "gzip") as f:
            pacsv.write_csv(table, f, opts)
    else:
        pacsv.write_csv(table, str(path), opts)


def labevents_table(labs: pd.DataFrame) -> pa.Table:
    """The MIMIC-IV 2.2 labevents column set from synth_labs.labevents_frame output."""
    t = labs["charttime_s"].to_numpy()
    val = pa.array(labs["valuenum"].to_numpy(), from_pandas=True)
    value = pc.if_else(pc.is_null(val), "___", pc.cast(val, pa.string()))
    n = len(labs)
    null = pa.nulls(n, pa.string())
    return pa.table({
        "labevent_id": labs["labevent_id"].to_numpy(), "subject_id": labs["subject_id"].to_numpy(),
        "hadm_id": pa.array(labs["hadm_id"], pa.int64(), from_pandas=True),
        "specimen_id": labs["specimen_id"].to_numpy(), "itemid": labs["itemid"].to_numpy(),
        "order_provider_id": null, "charttime": fmt_ts(t), "storetime": fmt_ts(t + 2 * H),
        "value": value, "valuenum": val, "valueuom": pa.array(np.full(n, "mg/dL")),
        "ref_range_lower": null, "ref_range_upper": null, "flag": null,
        "priority": pa.array(np.full(n, "ROUTINE")), "comments": null})


def ecg_frame(rng: np.random.Generator, adm: pd.DataFrame, cfg: SynthConfig) -> pd.DataFrame:
    """record_list.csv rows + latents: main ECG in [-24 h, +24 h] (some exactly at the edges),
    a valid follow-up after a NaN / all-zero one, decoys before and after the window."""
    n = len(adm)
    has = rng.random(n) < cfg.p_ecg
    off = rng.integers(-24 * H, 24 * H + 1, n)
    e = rng.random(n)
    off = np.where(e < 0.02, -24 * H, np.where(e > 0.98, 24 * H, off))
    bad = has & (rng.random(n) < cfg.p_bad_ecg)
    kind = np.where(bad, 1 + (rng.random(n) < 0.5), 0)
    follow = bad & (rng.random(n) < 0.8) & (off < 24 * H - 120)
    f_off = off + 60 + (rng.random(n) * (24 * H - 60 - off)).astype(np.int64)
    before, after = rng.random(n) < 0.5, rng.random(n) < 0.5
    b_off = -24 * H - rng.integers(60, 72 * H, n)
    a_off = 24 * H + rng.integers(60, 72 * H, n)
    a, c = adm["a"].to_numpy(), adm["c"].to_numpy()
    ra, rc = rng.integers(0, 2, n), rng.normal(0, 1, n)
    parts = [(has, off, a, c, kind), (follow, f_off, a, c, 0 * kind),
             (before, b_off, ra, rc, 0 * kind), (after, a_off, 1 - ra, -rc, 0 * kind)]
    idx = np.concatenate([np.flatnonzero(m) for m, *_ in parts])
    cols = [np.concatenate([p[j + 1][p[0]] for p in parts]) for j in range(4)]  # off,a,c,kind
    subj = adm["subject_id"].to_numpy()[idx]
    t = adm["admit_s"].to_numpy()[idx] + cols[0]
    study = 40_000_000 + rng.permutation(len(idx)) * 5 + rng.integers(0, 5, len(idx))
    ss, st = _s(subj), _s(study)
    path = _join("files/p", pc.utf8_slice_codeunits(ss, 0, 4), "/p", ss, "/s", st, "/", st)
    df = pd.DataFrame({"subject_id": subj, "study_id": study, "file_name": st.to_numpy(False),
                       "ecg_time": fmt_ts(t).to_numpy(False), "path": path.to_numpy(False),
                       "lat_a": cols[1], "lat_c": cols[2], "kind": cols[3], "t": t})
    return df.sort_values(["subject_id", "t", "study_id"], ignore_index=True).drop(columns="t")


def write_ecg_records(rng, ecg: pd.DataFrame, root: Path, cfg: SynthConfig,
                      chunk: int = 128) -> None:
    paths = ecg["path"].to_numpy()
    for s in progress(range(0, len(ecg), chunk), desc="synth ECG records",
                      total=-(-len(ecg) // chunk)):
        sl = slice(s, s + chunk)
        sig = ecg_batch(rng, ecg["lat_a"].to_numpy()[sl], ecg["lat_c"].to_numpy()[sl],
                        cfg.ecg_samples, cfg.signal_strength)
        spoil_ecg(rng, sig, ecg["kind"].to_numpy()[sl])
        for i, p in enumerate(paths[sl]):                      # one file pair per record
            write_wfdb16(root / p, sig[i], ECG_FS, ECG_LEAD_NAMES)
