"""Time the whole `dvc repro` from a clean state, per stage, then a second (no-op) run.

Copies the working tree (without data/ models/ reports/ plots/ dvc.lock and the DVC cache) to a
temporary directory, runs `dvc repro` there with the project's venv first on PATH (the stage
commands run `python ...`), timestamps DVC's "Running stage" lines and prints JSON:
{"total_s", "rc", "stages": {name: seconds}, "groups": {...}, "noop_s", "noop_up_to_date"}.
Usage: python bench/e2e.py [--keep DIR] [--params FILE]   (minutes: it runs the whole demo)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP = {"data", "models", "reports", "plots", "dvc.lock", ".venv", ".pytest_cache"}
STAGE = re.compile(r"Running stage '([^']+)'")


def _copy(dst: Path) -> None:
    def ignore(d: str, names: list[str]) -> set[str]:
        rel = Path(d).relative_to(REPO)
        out = {n for n in names if str(rel) == "." and n in SKIP}
        if rel == Path(".dvc"):
            out |= {"cache", "tmp"} & set(names)
        return out | {n for n in names if n == "__pycache__"}
    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)


def _repro(work: Path, env: dict) -> tuple[int, float, list[tuple[float, str]], str]:
    t0 = time.perf_counter()
    marks, tail = [], []
    proc = subprocess.Popen(["dvc", "repro"], cwd=work, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:                                  # type: ignore[union-attr]
        m = STAGE.search(line)
        if m:
            marks.append((time.perf_counter() - t0, m.group(1)))
        tail = (tail + [line])[-20:]
    rc = proc.wait()
    return rc, time.perf_counter() - t0, marks, "".join(tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", default=None, help="run in this (new) dir and keep it")
    ap.add_argument("--params", default=None, help="copy this file over params.yaml first")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="e2e-bench-")) / "r"
    _copy(work)
    if args.params:
        shutil.copy(args.params, work / "params.yaml")
    venv_bin = REPO / ".venv" / "bin"
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(REPO / ".venv"), "PYTHONPATH": str(work),
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    rc, total, marks, tail = _repro(work, env)
    bounds = marks + [(total, "END")]
    stages = {name: round(b - a, 1) for (a, name), (b, _) in zip(bounds, bounds[1:])}
    groups: dict[str, float] = defaultdict(float)
    for name, s in stages.items():
        groups[name.split("@")[0]] += s
    out = {"total_s": round(total, 1), "rc": rc, "cpus": os.cpu_count(),
           "load_avg": os.getloadavg(), "stages": stages,
           "groups": {k: round(v, 1) for k, v in groups.items()}}
    if rc == 0:
        rc2, noop, _, tail2 = _repro(work, env)
        out.update(noop_s=round(noop, 1),
                   noop_up_to_date="Data and pipelines are up to date" in tail2 and rc2 == 0)
    else:
        out["tail"] = tail
    print(json.dumps(out, indent=1))
    if not args.keep:
        shutil.rmtree(work.parent, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
