"""Same bytes on other x86-64 CPUs: train under emulated CPUs and compare checkpoints (issue 21).

Runs the ``mimic_train`` stage script (ResNet CNNs, linear heads, the Symile loss: conv,
GEMM, elementwise and reduction kernels) on a tiny generated dataset, once on this CPU and once
under ``qemu-x86_64 -cpu MODEL`` for each MODEL (user-mode emulation: CPUID reports that CPU,
so torch, MKL, oneDNN, numpy and glibc's libm pick that CPU's kernels), in both kernel modes
(``SYMILE_KERNELS=portable``, the default, and ``native``). Prints JSON: md5 of every output
file per (mode, cpu) and, per mode, whether every CPU wrote the same bytes.

    apt-get install qemu-user     # once
    python bench/cross_cpu.py [--cpus Nehalem,Haswell] [--out DIR]

Minutes: torch loads in ~15 s under emulation and training runs ~10x slower.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "train"))
from train_helpers import mimic_table, write_dataset  # noqa: E402

from symile_data.kernels import portable_env  # noqa: E402

FILES = ("last.pt", "best.pt", "metrics.jsonl", "done.json")


def _dataset(tmp: Path) -> tuple[Path, Path]:
    ds = write_dataset(tmp / "mimic", {"train": mimic_table(48, "train", 0),
                                       "val": mimic_table(16, "val", 1),
                                       "test": mimic_table(16, "test", 2)})
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["mimic_train"].update(epochs=2, batch_size=16, d=16, torch_threads=0)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    return ds, tmp / "params.yaml"


def _train(tmp: Path, ds: Path, params: Path, cpu: str, mode: str) -> dict:
    out = tmp / f"{mode}-{cpu}" / "run"
    env = {k: v for k, v in os.environ.items() if k not in portable_env(1)}
    env.update(PYTHONPATH=str(REPO), SYMILE_DATA_PROGRESS="off", SYMILE_KERNELS=mode)
    if mode != "native":
        # what the pin's one re-exec would set: under qemu-user an execve runs natively, so
        # the pinned environment is given from the start and the pin does not re-execute
        tunables = portable_env(1)["GLIBC_TUNABLES"]
        env.update(GLIBC_TUNABLES=tunables, SYMILE_KERNELS_PINNED=tunables)
    cmd = [sys.executable, str(REPO / "pipelines/mimic_train.py"), "--dataset", str(ds),
           "--method", "symile", "--out", str(out), "--params", str(params)]
    if cpu != "host":
        cmd = ["qemu-x86_64", "-cpu", cpu] + cmd
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode:
        return {"rc": p.returncode, "stderr": p.stderr[-2000:]}
    return {"seconds": round(time.perf_counter() - t0, 1),
            "md5": {f: hashlib.md5((out / f).read_bytes()).hexdigest() for f in FILES}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpus", default="Nehalem,Haswell",
                    help="qemu CPU models to emulate besides this CPU (qemu-x86_64 -cpu help)")
    ap.add_argument("--modes", default="portable,native")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temp dir)")
    args = ap.parse_args()
    if not shutil.which("qemu-x86_64"):
        print("bench/cross_cpu.py: qemu-x86_64 not found (apt-get install qemu-user)",
              file=sys.stderr)
        return 2
    tmp = Path(args.out or tempfile.mkdtemp(prefix="cross-cpu-"))
    tmp.mkdir(parents=True, exist_ok=True)
    ds, params = _dataset(tmp)
    import torch
    cpus = ["host"] + args.cpus.split(",")
    runs = {mode: {cpu: _train(tmp, ds, params, cpu, mode) for cpu in cpus}
            for mode in args.modes.split(",")}
    same = {mode: len({json.dumps(r.get("md5")) for r in by_cpu.values()}) == 1
            and all("md5" in r for r in by_cpu.values()) for mode, by_cpu in runs.items()}
    print(json.dumps({"host_aten_capability": torch.backends.cpu.get_cpu_capability(),
                      "identical_across_cpus": same, "runs": runs}, indent=1))
    if not args.out:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if same.get("portable", True) else 1


if __name__ == "__main__":
    sys.exit(main())
