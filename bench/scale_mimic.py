"""Scale bench, Symile-MIMIC half (issue 11): wall seconds and peak RSS of every stage at
growing MIMIC-IV sizes, and the fitted growth with admissions. Prints JSON.

    python bench/scale_mimic.py --admissions 10000 100000 430000 [--work DIR] [--keep]
    python bench/scale.py --dataset mimic ...        (dispatches here: main(argv))

Per size: a MIMIC-layout tree (symile_data/mimic/synth_scale.py: ~275 labevents rows per
admission as MIMIC-IV 2.2, shared media, cohort ~2.7% of admissions as the real 11.6k / 430k),
then each stage in its own subprocess: ``labevents`` (csv.gz -> Parquet), ``cohort``, ``shards``
(Parquet), ``export`` (export-reference). Peak RSS is the child's VmHWM. A size whose stages
were not all run is not fitted; sizes beyond the largest measured are extrapolated from the
measured slope and marked ``"extrapolated": true``. The tree and outputs of a size are deleted
after it unless --keep.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STAGES = ("labevents", "cohort", "shards", "export")
# what --reuse deletes before a stage runs (the labevents conversion is skipped while its
# Parquet is up to date; shards and export skip finished work)
OUTPUTS = {"labevents": ["cohort/labevents.parquet"], "cohort": [], "shards": ["shards"],
           "export": ["export"]}
FULL_ADMISSIONS = 430_000

CHILD = r"""
import json, re, sys, time
from pathlib import Path
stage, w = sys.argv[1], Path(sys.argv[2])
raw = w / "raw"
t0 = time.perf_counter()
info = {}
if stage == "labevents":
    from symile_data.mimic.labevents import convert_labevents
    convert_labevents(raw / "mimic-iv/hosp/labevents.csv.gz", w / "cohort/labevents.parquet")
    import pyarrow.parquet as pq
    info["rows"] = pq.ParquetFile(w / "cohort/labevents.parquet").metadata.num_rows
elif stage == "cohort":
    from symile_data.mimic.cohort import build_cohort
    from symile_data.mimic.config import CohortConfig
    rep = build_cohort(raw / "mimic-iv", raw / "mimic-iv-ecg", raw / "mimic-cxr-jpg",
                       w / "cohort", CohortConfig(ecg_check_threads=2))
    info = {"rows": rep["cohort"]["admissions"], "ecg_reads": rep["ecg"]["records_checked"]}
elif stage == "shards":
    from symile_data.mimic.build import build_shards
    from symile_data.mimic.config import ShardsConfig
    rep = build_shards(w / "cohort", raw / "mimic-iv-ecg", raw / "mimic-cxr-jpg", w / "shards",
                       ShardsConfig())
    info = {"rows": rep["ok"]}
elif stage == "export":
    from symile_data.publish.reference import export_reference
    rec = export_reference(w / "shards", w / "export")
    info = {"largest_tensor_mb": round(max(f["bytes"] for f in rec["files"].values()) / 2**20),
            "bytes_written_mb": round(sum(f["bytes"] for f in rec["files"].values()) / 2**20)}
info["wall_s"] = round(time.perf_counter() - t0, 2)
info["peak_rss_mb"] = round(int(re.search(r"VmHWM:\s+(\d+)",
                                          open("/proc/self/status").read())[1]) / 1024)
print(json.dumps(info))
"""


# the allocator pipelines/mimic_cohort.py sets for its process (labevents conversion + cohort)
STAGE_ENV = {"labevents": {"ARROW_DEFAULT_MEMORY_POOL": "system"},
             "cohort": {"ARROW_DEFAULT_MEMORY_POOL": "system"}}


def run_stage(stage: str, work: Path) -> dict:
    t0 = time.perf_counter()
    env = {**__import__("os").environ, "SYMILE_DATA_PROGRESS": "off", **STAGE_ENV.get(stage, {})}
    res = subprocess.run([sys.executable, "-c", CHILD, stage, str(work)], capture_output=True,
                         text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"stage {stage} at {work}: exit {res.returncode}\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["wall_incl_startup_s"] = round(time.perf_counter() - t0, 2)
    return out


def fit(sizes: list[int], values: list[float]) -> dict:
    """Log-log slope (1 = linear, 0 = flat) and growth from the smallest to the largest size."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.maximum(np.asarray(values, float), 1e-3))
    slope = round(float(np.polyfit(x, y, 1)[0]), 3) if len(sizes) > 1 else None
    return {"loglog_slope": slope,
            "growth_pct": round(100 * (values[-1] / values[0] - 1), 1),
            "per_100k_admissions": round(float(np.polyfit(sizes, values, 1)[0]) * 1e5, 2)
            if len(sizes) > 1 else None}


def extrapolate(sizes: list[int], values: list[float], target: int) -> float:
    """Linear in admissions from the measured points (the measured slope)."""
    a, b = np.polyfit(sizes, values, 1)
    return round(float(a * target + b), 1)


def main(argv: list[str] | None = None) -> int:
    """CLI entry (also called by bench/scale.py --dataset mimic with the remaining args)."""
    run(parse_args(argv))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--admissions", type=int, nargs="+", default=[10_000, 100_000, 430_000])
    ap.add_argument("--work", default="/work/scratch/scale_mimic/bench")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--rows-per-admission", type=int, default=275)
    ap.add_argument("--p-cxr", type=float, default=0.01,
                    help="share of admissions with a CXR study in window (0.01: cohort ~2.7%%)")
    ap.add_argument("--extrapolate-to", type=int, default=FULL_ADMISSIONS)
    ap.add_argument("--export-max-rows", type=int, default=2000,
                    help="skip export-reference (disk: ~5.4 MB per cohort row in the reference "
                         "layout) when the cohort has more rows; marked skipped")
    ap.add_argument("--keep", action="store_true", help="keep trees and outputs")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse a kept tree of the same size and the kept outputs of the stages "
                         "not run (e.g. --stages cohort export on kept shards)")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Run the bench; prints and returns the JSON result."""
    from symile_data.mimic.synth_scale import synth_scale_tree
    results = []
    for n in sorted(args.admissions):
        work = Path(args.work) / f"a{n}"
        t0 = time.perf_counter()
        if args.reuse and (work / "raw" / "synth_report.json").exists():
            rep = json.loads((work / "raw" / "synth_report.json").read_text())
            for st in args.stages:          # outputs of the stages run; the others' are kept
                for sub in OUTPUTS[st]:
                    if (work / sub).is_dir():
                        shutil.rmtree(work / sub)
                    else:
                        (work / sub).unlink(missing_ok=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
            rep = synth_scale_tree(work / "raw", n, rows_per_admission=args.rows_per_admission,
                                   p_cxr=args.p_cxr)
        row = {"admissions": n, "synth_s": round(time.perf_counter() - t0, 1),
               "labevents_rows": rep["labevents_rows"], "ecg_records": rep["ecg_records"],
               "cxr_rows": rep["cxr_rows"], "stages": {}}
        for st in args.stages:
            cohort_rows = row["stages"].get("cohort", {}).get("rows", 0)
            if st == "export" and cohort_rows > args.export_max_rows:
                row["stages"][st] = {"skipped": f"cohort {cohort_rows} rows > --export-max-rows"}
                continue
            row["stages"][st] = run_stage(st, work)
            print(json.dumps({"admissions": n, "stage": st, **row["stages"][st]}),
                  file=sys.stderr, flush=True)
        results.append(row)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    growth, extra = {}, {}
    for st in args.stages:
        ok = [r for r in results if "wall_s" in r["stages"][st]]
        sizes = [r["admissions"] for r in ok]
        rss = [r["stages"][st]["peak_rss_mb"] for r in ok]
        wall = [r["stages"][st]["wall_s"] for r in ok]
        if not ok:
            continue
        growth[st] = {"sizes": sizes, "peak_rss_mb": fit(sizes, rss), "wall_s": fit(sizes, wall)}
        if len(sizes) > 1 and args.extrapolate_to > sizes[-1]:
            extra[st] = {"admissions": args.extrapolate_to, "extrapolated": True,
                         "peak_rss_mb": extrapolate(sizes, rss, args.extrapolate_to),
                         "wall_s": extrapolate(sizes, wall, args.extrapolate_to)}
    out = {"bench": "scale_mimic", "sizes": results, "growth": growth,
           "extrapolation": extra or None,
           "goal": "every stage: peak RSS <= 4096 MB, growth <= 10% over the sizes"}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    sys.exit(main())
