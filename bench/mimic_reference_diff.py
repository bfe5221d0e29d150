"""Our Symile-MIMIC cohort vs the reference's rules, side by side on a generated tree (JSON).

    python bench/mimic_reference_diff.py [ADMISSIONS] [--tree DIR] [--seeds 20]

The reference rules are re-implemented here from their description (docs/mimic.md, "Differences
from the reference cohort"), not copied: (1) ties at the earliest time broken by file order
(records / labevents / metadata rows as they appear in the files) instead of our keys (ECG
study_id, labevent_id, CXR study_id + dicom_id); (2) StudyTime truncated to whole seconds
before the +24 h < dt <= +72 h window (ours keeps the fraction); (3) splits: a random
train_size rows, val/test rows whose subject is in train dropped, then val_size rows, test
rows whose subject is in val dropped (ours assigns whole subjects and drops nothing). Each
factor is measured alone against our cohort; the split rule's drop share is the mean over
seeds with the reference's proportions (10,000 / 800 of 11,622 admissions).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import (CXR_FILES, CXR_VIEWS, HOSP_FILES, LAB_ITEMIDS,
                                      CohortConfig, SynthConfig)
from symile_data.mimic.readers import cxr_relpath, read_admissions, study_datetime_ms
from symile_data.mimic.synth import synth_tree
from symile_data.mimic.wfdb_io import WfdbError, ecg_quality, read_wfdb

H_S = 3600


def _window(adm: pd.DataFrame, ev: pd.DataFrame, t: str, lo_s: float, hi_s: float,
            lo_open: bool, unit: int = 1) -> pd.DataFrame:
    """Events of each admission's subject with lo < (or <=) t - admittime <= hi; ``t`` in
    seconds (unit 1) or milliseconds (unit 1000), bounds in seconds."""
    m = adm.merge(ev, on="subject_id")
    d = m[t] - m["admit_s"] * unit
    lo_s, hi_s = lo_s * unit, hi_s * unit
    ok = ((d > lo_s) if lo_open else (d >= lo_s)) & (d <= hi_s)
    return m[ok]


def _first(cands: pd.DataFrame, by: list[str], group: list[str]) -> pd.DataFrame:
    return cands.sort_values(group + by, kind="stable").groupby(group, sort=False).head(1)


def _picks(cands: pd.DataFrame, t: str, key: list[str], value: str, group: list[str]):
    """(pick by our keys, pick by file order, number of groups with a tie at the minimum)."""
    ours = _first(cands, [t, *key], group).set_index(group)[value]
    ref = _first(cands, [t, "file_row"], group).set_index(group)[value]
    n_at_min = cands[cands[t] == cands.groupby(group)[t].transform("min")].groupby(group).size()
    return ours, ref.reindex(ours.index), int((n_at_min > 1).sum())


def measure(iv: Path, ecg_root: Path, cxr_root: Path, work: Path, seeds: int) -> dict:
    """Side-by-side counts on the MIMIC-layout trees ``iv`` / ``ecg_root`` / ``cxr_root``."""
    build_cohort(iv, ecg_root, cxr_root, work / "cohort",
                 CohortConfig(train_size=0.5, val_size=0.25, ecg_check_threads=2))
    ours = pq.read_table(work / "cohort/cohort.parquet").to_pandas()
    adm = read_admissions(iv)
    out: dict = {"admissions": len(adm), "our_cohort": len(ours)}
    # ECG: every in-window record checked (the reference checks the whole corpus first)
    rec = pd.read_csv(ecg_root / "record_list.csv")
    rec["file_row"] = np.arange(len(rec))
    rec["t_s"] = pd.to_datetime(rec["ecg_time"]).to_numpy().astype("datetime64[s]").astype(
        np.int64)
    e = _window(adm, rec, "t_s", -24 * H_S, 24 * H_S, False)

    def usable(p: str) -> bool:
        try:
            return ecg_quality(read_wfdb(ecg_root / p)) is None
        except WfdbError:
            return False
    good = {p: usable(p) for p in e["path"].unique()}
    e = e[e["path"].map(good)]
    eo, er, eties = _picks(e, "t_s", ["study_id"], "study_id", ["hadm_id"])
    out["ecg"] = {"admissions_with_tie_at_earliest": eties,
                  "pick_differs_by_tie_rule": int((eo != er).sum())}
    # labs: earliest per (admission, itemid); file order = row order of labevents.csv.gz
    lab = pd.read_csv(iv / HOSP_FILES["labevents"], usecols=["labevent_id", "subject_id",
                                                             "itemid", "charttime", "valuenum"])
    lab["file_row"] = np.arange(len(lab))
    lab = lab[lab["itemid"].isin(LAB_ITEMIDS) & lab["valuenum"].notna()]
    lab["t_s"] = pd.to_datetime(lab["charttime"]).to_numpy().astype("datetime64[s]").astype(
        np.int64)
    lw = _window(adm, lab, "t_s", -24 * H_S, 24 * H_S, False)
    lo, lr, lties = _picks(lw, "t_s", ["labevent_id"], "valuenum", ["hadm_id", "itemid"])
    diff = (lo != lr) & ~(lo.isna() & lr.isna())
    out["labs"] = {"admission_itemid_pairs_with_tie": lties,
                   "values_differ_by_tie_rule": int(diff.sum()),
                   "admissions_affected": int(diff[diff].index.get_level_values(0).nunique())}
    # CXR: frontal, file present; window on ms (ours) or truncated seconds (reference)
    meta = pd.read_csv(cxr_root / CXR_FILES["metadata"])
    meta["file_row"] = np.arange(len(meta))
    meta["t_ms"] = study_datetime_ms(meta["StudyDate"], meta["StudyTime"], Path("metadata"))
    meta["t_trunc"] = (meta["t_ms"] // 1000) * 1000
    meta = meta[meta["ViewPosition"].isin(CXR_VIEWS)]
    rel = cxr_relpath(meta["subject_id"].to_numpy(), meta["study_id"].to_numpy(),
                      meta["dicom_id"].to_numpy())
    meta = meta[[(cxr_root / p).is_file() for p in rel]]
    out["cxr"] = {"frontal_rows_with_fraction": int((meta["t_ms"] % 1000 != 0).sum())}
    picks = {}
    for t in ("t_ms", "t_trunc"):
        c = _window(adm, meta, t, 24 * H_S, 72 * H_S, True, unit=1000)
        picks[t] = _picks(c, t, ["study_id", "dicom_id"], "dicom_id", ["hadm_id"])
    o_ms, r_ms, cties = picks["t_ms"]
    o_tr = picks["t_trunc"][0]
    both = o_ms.index.intersection(o_tr.index)
    out["cxr"].update({
        "admissions_with_tie_at_earliest": cties,
        "pick_differs_by_tie_rule": int((o_ms != r_ms).sum()),
        "admissions_in_window_only_with_fraction": int(len(o_ms.index.difference(o_tr.index))),
        "admissions_in_window_only_truncated": int(len(o_tr.index.difference(o_ms.index))),
        "pick_differs_by_truncation": int((o_ms[both] != o_tr[both]).sum())})
    out["split_rule"] = split_drop(ours, seeds)
    return out


def reference_split(df: pd.DataFrame, train_n: int, val_n: int, rng) -> dict[str, int]:
    """Row-level random splits, then the drops of rows whose subject is in an earlier split."""
    order = rng.permutation(len(df))
    train, rest = df.iloc[order[:train_n]], df.iloc[order[train_n:]]
    rest = rest[~rest["subject_id"].isin(train["subject_id"])]
    order = rng.permutation(len(rest))
    val, test = rest.iloc[order[:val_n]], rest.iloc[order[val_n:]]
    test = test[~test["subject_id"].isin(val["subject_id"])]
    return {"train": len(train), "val": len(val), "test": len(test)}


def split_drop(cohort: pd.DataFrame, seeds: int) -> dict:
    n = len(cohort)
    train_n, val_n = round(n * 10_000 / 11_622), round(n * 800 / 11_622)
    kept = [sum(reference_split(cohort, train_n, val_n, np.random.default_rng(s)).values())
            for s in range(seeds)]
    dropped = 1 - np.array(kept) / n
    test_ref = n - train_n - val_n
    return {"rows": n, "train_n": train_n, "val_n": val_n, "seeds": seeds,
            "dropped_share_mean": round(float(dropped.mean()), 4),
            "dropped_share_std": round(float(dropped.std()), 4),
            "test_rows_without_drop": test_ref,
            "subjects": int(cohort["subject_id"].nunique())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("admissions", type=int, nargs="?", default=3000)
    ap.add_argument("--tree", default=None, help="an existing generated tree (else generated)")
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refdiff-") as tmp:
        tree = Path(args.tree) if args.tree else Path(tmp) / "tree"
        if not args.tree:
            synth_tree(tree, SynthConfig(admissions=args.admissions, cxr_height=336,
                                         cxr_width=320))
        res = measure(tree / "mimic-iv", tree / "mimic-iv-ecg", tree / "mimic-cxr-jpg",
                      Path(tmp), args.seeds)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
