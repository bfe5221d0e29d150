"""Probe (issue 11): peak memory of the text stage's bucket spill (``features/text.py``
``_partition``) by number of texts and buckets, each in a fresh process.

  nice -n 10 python bench/text_buckets.py --runs 7:1500000,7:11000000,3:1500000 \
      --work /work/scratch/x/tb          (BITS:TEXTS per run; prints JSON)

Synthetic distinct texts (~30 characters, Latin and Greek) arrive in batches of 65,536 like
the sample shards' text column; peak RSS is the process's (``ru_maxrss``), ``base`` the
resident set before the spill.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _batches(n: int, rows: int = 65_536):
    import pyarrow as pa
    rng = np.random.default_rng(0)
    for lo in range(0, n, rows):
        k = min(rows, n - lo)
        yield pa.array([f"w{x:x} word{y} ελλην {z}" for x, y, z in
                        zip(rng.integers(0, 2**40, k), rng.integers(0, 10**6, k),
                            range(lo, lo + k))])


def probe(bits: int, n: int, work: Path) -> dict:
    from symile_data.features.text import _partition
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as t:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        t0 = time.perf_counter()
        _partition(_batches(n), bits, Path(t))
        return {"buckets": 1 << bits, "texts": n, "base_mb": base,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "wall_s": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="7:1500000,7:11000000,3:1500000")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--probe", help=argparse.SUPPRESS)   # child: BITS:TEXTS
    a = p.parse_args(argv)
    if a.probe:
        bits, n = (int(x) for x in a.probe.split(":"))
        print(json.dumps(probe(bits, n, a.work)))
        return
    out = []
    for run in a.runs.split(","):
        r = subprocess.run([sys.executable, __file__, "--work", str(a.work), "--probe", run],
                           capture_output=True, text=True, check=True)
        out.append(json.loads(r.stdout))
        print(json.dumps(out[-1]), file=sys.stderr)
    print(json.dumps({"probe": "text_buckets", "results": out}, indent=1))


if __name__ == "__main__":
    main()
