"""Bench: Symile-MIMIC cohort step on a generated 50k-admission tree (issue 5, point 6).

Prints JSON: synth time; vectorised cohort time and peak RSS (own subprocess, labevents
conversion included and also reported alone); a per-admission pandas loop in the style of the
original code, timed in the same run on a random sample of admissions and extrapolated to all;
and an extrapolated full-MIMIC time (430k admissions, 118M labevents rows).

    .venv/bin/python bench/mimic.py [--admissions 50000] [--loop-sample 300] [--work DIR]

ECG records are written with 500 samples (not 5000) to keep the tree at ~1.5 GB; the cost of
reading a full 5000-sample record is measured separately and added in the extrapolation.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FULL_ADMISSIONS, FULL_LABEVENTS = 430_000, 118_000_000
ECG_SAMPLES = 500     # per generated ECG record (the real ones have 5000)

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import CohortConfig
from symile_data.mimic.labevents import convert_labevents
from symile_data.mimic import wfdb_io
# the bench's records have ECG_SAMPLES (not 5000) samples: the cohort's usability rule takes
# that shape here (a 5000-sample read's extra cost is added in the extrapolation)
wfdb_io.ecg_quality.__defaults__ = ((int(sys.argv[3]), 12),)
r, out = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
convert_labevents(r / "mimic-iv/hosp/labevents.csv.gz", out / "labevents.parquet")
t1 = time.perf_counter()
rep = build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", out, CohortConfig())
t2 = time.perf_counter()
print(json.dumps({"convert_s": t1 - t0, "join_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "cohort_rows": rep["cohort"]["admissions"], "ecg_reads": rep["ecg"]["records_checked"]}))
"""


def _read_cost(tmp: Path, n_samples: int, reps: int = 300) -> float:
    from symile_data.mimic.config import ECG_LEAD_NAMES
    from symile_data.mimic.wfdb_io import ecg_quality, read_wfdb, write_wfdb16
    sig = np.random.default_rng(0).normal(0, 0.3, (n_samples, 12))
    for i in range(reps):
        write_wfdb16(tmp / f"r{n_samples}_{i}", sig, 500, ECG_LEAD_NAMES)
    t = time.perf_counter()
    for i in range(reps):
        ecg_quality(read_wfdb(tmp / f"r{n_samples}_{i}"), (n_samples, 12))
    return (time.perf_counter() - t) / reps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--admissions", type=int, default=50_000)
    ap.add_argument("--loop-sample", type=int, default=300)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    os.environ["SYMILE_DATA_PROGRESS"] = "off"
    from symile_data.mimic.config import LAB_ITEMIDS, SynthConfig
    from symile_data.mimic.labevents import load_cohort_labs
    from symile_data.mimic.loop_reference import cohort_loop
    from symile_data.mimic.readers import (read_admissions, read_chexpert_studies,
                                           read_cxr_metadata, read_ecg_records)
    from symile_data.mimic.synth import synth_tree
    import pandas as pd

    work = Path(args.work or tempfile.mkdtemp(prefix="mimic-bench-"))
    raw = work / "raw"
    t = time.perf_counter()
    syn = synth_tree(raw, SynthConfig(admissions=args.admissions, seed=0, ecg_samples=ECG_SAMPLES,
                                      cxr_height=48, cxr_width=40))
    synth_s = time.perf_counter() - t
    out = work / "cohort"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(raw), str(out), str(ECG_SAMPLES)],
                          check=True, capture_output=True, text=True)
    vec = json.loads(proc.stdout.strip().splitlines()[-1])

    # per-admission loop (reference style) on a random sample, same inputs and shape rule
    from symile_data.mimic import wfdb_io
    wfdb_io.ecg_quality.__defaults__ = ((ECG_SAMPLES, 12),)
    adm = read_admissions(raw / "mimic-iv")
    sample = adm.sample(n=min(args.loop_sample, len(adm)), random_state=0)
    ecg, meta = read_ecg_records(raw / "mimic-iv-ecg"), read_cxr_metadata(raw / "mimic-cxr-jpg")
    labs = pd.DataFrame(load_cohort_labs(out / "labevents.parquet", LAB_ITEMIDS))
    chex = read_chexpert_studies(raw / "mimic-cxr-jpg")
    t = time.perf_counter()
    cohort_loop(sample, ecg, labs, meta, chex, raw / "mimic-iv-ecg", raw / "mimic-cxr-jpg")
    loop_per_adm = (time.perf_counter() - t) / len(sample)
    loop_all = loop_per_adm * len(adm)

    with tempfile.TemporaryDirectory() as d:
        read500, read5000 = _read_cost(Path(d), 500), _read_cost(Path(d), 5000)
    scale_rows = FULL_LABEVENTS / syn["labevents_rows"]
    scale_adm = FULL_ADMISSIONS / len(adm)
    # conservative: every part of the cohort step scaled by the larger (labevents) factor,
    # plus the extra cost of reading 5000-sample instead of 500-sample ECG records
    full_s = vec["total_s"] * max(scale_rows, scale_adm) + (read5000 - read500) * vec[
        "ecg_reads"] * scale_adm
    print(json.dumps({
        "admissions": len(adm), "labevents_rows": syn["labevents_rows"],
        "ecg_records": syn["ecg_records"], "cxr_studies": syn["cxr_studies"],
        "synth_s": round(synth_s, 1), "cohort": {k: round(v, 2) if isinstance(v, float) else v
                                                for k, v in vec.items()},
        "loop": {"sample_admissions": len(sample), "per_admission_ms": round(loop_per_adm * 1e3, 2),
                 "extrapolated_all_s": round(loop_all, 1)},
        "speedup_vs_loop": round(loop_all / vec["total_s"], 1),
        "speedup_vs_loop_join_only": round(loop_all / vec["join_s"], 1),
        "ecg_read_ms": {"500_samples": round(read500 * 1e3, 3),
                        "5000_samples": round(read5000 * 1e3, 3)},
        "full_mimic_extrapolated_min": round(full_s / 60, 1),
        "goals": {"speedup>=30": loop_all / vec["total_s"] >= 30,
                  "peak_rss<=4GB": vec["peak_rss_mb"] <= 4096,
                  "full_mimic<30min": full_s < 1800},
        "work_dir": str(work)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
