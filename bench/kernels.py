"""What pinned kernels cost: the demo's training stages under SYMILE_KERNELS=native vs portable.

Runs the ``m3_train``, ``mimic_train`` and ``xor_train`` stage scripts (Symile) on the shards of
a finished demo (``bench/e2e.py --keep DIR`` or the repository's own ``data/``), with the
epochs cut by ``--epochs-scale`` so a set of runs takes minutes, alternating the modes
``--reps`` times. Prints JSON: per stage and mode, the median CPU seconds (user + sys of the
stage process) and wall seconds, and each pinned mode's ratio to native.

    python bench/kernels.py --root DIR [--reps 2] [--epochs-scale 0.1]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MODES = ("native", "portable")
STAGES = {  # stage script, params section, dataset under ROOT, extra args
    "m3_train": ("pipelines/m3_train.py", "m3_train", "data/m3/shards/symile-m3-2-demo", []),
    "mimic_train": ("pipelines/mimic_train.py", "mimic_train", "data/mimic/shards/symile-mimic",
                    []),
    "xor_train": ("pipelines/xor_train.py", "xor_train", "data/xor", ["--p", "1.0"]),
}


def _params(root: Path, scale: float, tmp: Path) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())   # this checkout's settings
    for _, section, _, _ in STAGES.values():
        params[section]["epochs"] = max(1, round(params[section]["epochs"] * scale))
    if "m3_train" in params:   # the tiny text model of the demo, wherever ROOT is
        params["m3_train"]["text_model"] = str(root / params["m3_train"]["text_model"])
    out = tmp / "params.yaml"
    out.write_text(yaml.safe_dump(params))
    return out


def _run(stage: str, mode: str, root: Path, params: Path, out: Path) -> dict:
    script, _, dataset, extra = STAGES[stage]
    if stage == "xor_train":
        args = ["--data", str(root / dataset), "--models", str(out), "--method", "symile"]
    else:
        args = ["--dataset", str(root / dataset), "--method", "symile", "--out", str(out)]
    env = {**os.environ, "SYMILE_KERNELS": mode, "PYTHONPATH": str(REPO),
           "SYMILE_DATA_PROGRESS": "off"}
    for k in ("SYMILE_KERNELS_PINNED", "GLIBC_TUNABLES", "ATEN_CPU_CAPABILITY", "MKL_CBWR"):
        env.pop(k, None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / script), *args, *extra, "--params", str(params)],
                   env=env, check=True, capture_output=True, cwd=root)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(REPO), help="a finished demo (its data/)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--epochs-scale", type=float, default=0.1)
    ap.add_argument("--stages", default=",".join(STAGES))
    args = ap.parse_args()
    root = Path(args.root).resolve()
    out: dict = {"load_avg": os.getloadavg(), "epochs_scale": args.epochs_scale, "stages": {}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        params = _params(root, args.epochs_scale, tmp)
        for stage in args.stages.split(","):
            runs: dict[str, list[dict]] = {m: [] for m in MODES}
            for rep in range(args.reps):
                for mode in MODES:                              # alternated: same load
                    runs[mode].append(_run(stage, mode, root, params, tmp / f"{stage}-{mode}-{rep}"))
            med = {m: {k: statistics.median(r[k] for r in rs) for k in ("cpu_s", "wall_s")}
                   for m, rs in runs.items()}
            out["stages"][stage] = {**med, **{f"{m}_over_native": {
                k: round(med[m][k] / med["native"][k], 2) for k in ("cpu_s", "wall_s")}
                for m in MODES[1:]}}
    out["load_avg_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
