"""Benchmark the M3 sampler; prints JSON. Run by hand: .venv/bin/python bench/m3.py

- sample_1m_w{2,10}: rows/s drawing 1M rows in memory (goal >= 200k rows/s, peak <= 2 GB);
- build_xs_w2: time and peak memory to write symile-m3-2-xs (500k/25k/25k = 550k rows) as
  Parquet shards through the foundation writer.
Inputs mimic full ImageNet: 1,000 classes x 1,300 image keys, 50 clips per language.
Each measurement runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _inputs(w: int, n_img: int = 1300, n_clip: int = 50):
    import numpy as np
    import pyarrow as pa

    from symile_data.m3.classes import load_classes
    from symile_data.m3.sampling import SamplingInputs
    from symile_data.m3.translations import langs_for_w
    langs, c = langs_for_w(w), load_classes()
    n = len(c)
    return SamplingInputs(
        langs=langs, cls_ids=np.arange(n, dtype=np.int16), synsets=pa.array(c.synsets),
        words=pa.array([f"{name}-{lang}" for name in c.names for lang in langs]),
        img_offsets=np.arange(0, n * n_img + 1, n_img, dtype=np.int64),
        image_keys=pa.array([f"{i:032x}" for i in range(n * n_img)]),
        clip_offsets=np.arange(0, w * n_clip + 1, n_clip, dtype=np.int64),
        audio_keys=pa.array([f"a{i:031x}" for i in range(w * n_clip)]))


def run_one(kind: str, w: int) -> dict:
    from symile_data.m3.sampling import SplitSource
    from symile_data.schema import m3_samples_schema
    inp = _inputs(w)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if kind == "sample":
        rows = 1_000_000
        SplitSource(inp, "train", rows, 0, 0.5, m3_samples_schema()).take_range(0, rows)
    else:
        from symile_data.io.parquet import ShardSpec, write_parquet_dataset
        rows = 550_000
        with tempfile.TemporaryDirectory() as d:
            splits = {s: SplitSource(inp, s, n, 0, 0.0, m3_samples_schema())
                      for s, n in zip(("train", "val", "test"), (500_000, 25_000, 25_000))}
            write_parquet_dataset(d, splits, m3_samples_schema(), name=f"symile-m3-{w}-xs",
                                  params_hash="bench", spec=ShardSpec())
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rows": rows, "seconds": round(dt, 3), "rows_per_s": round(rows / dt),
            "peak_rss_mb": round(peak / 1024), "rss_before_mb": round(rss0 / 1024)}


def main() -> int:
    if len(sys.argv) == 3:
        print(json.dumps(run_one(sys.argv[1], int(sys.argv[2]))))
        return 0
    out = {}
    for name, kind, w in (("sample_1m_w2", "sample", 2), ("sample_1m_w10", "sample", 10),
                          ("build_xs_w2", "build", 2)):
        r = subprocess.run([sys.executable, __file__, kind, str(w)], capture_output=True,
                           text=True, check=True, env={"SYMILE_DATA_PROGRESS": "off",
                                                       "PATH": "/usr/bin:/bin"})
        out[name] = json.loads(r.stdout.strip().splitlines()[-1])
    out["goal"] = {"rows_per_s": 200_000, "peak_rss_mb": 2048}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
