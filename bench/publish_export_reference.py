"""Throughput and peak memory of `export-reference` (M3 layout) on synthetic training shards
with the reference feature widths (image 1024, audio 1280 as float16; 32 tokens).
Prints JSON. Usage: python bench/publish_export_reference.py [N_ROWS]"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from symile_data.io.parquet import ShardSpec, write_parquet_dataset


def fsl(x, t):
    return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel(), type=t), x.shape[1])


def table(n, split, rng):
    ids = rng.integers(0, 1000, n)
    return pa.table({
        "key": [f"{split}-{i}" for i in range(n)], "split": [split] * n,
        "cls_id": pa.array(ids.astype(np.int16)), "synset": [f"n{i:08d}" for i in ids],
        "lang": ["en"] * n, "text": [f"w{i}_x" for i in ids],
        "image_feat": fsl(rng.standard_normal((n, 1024)).astype(np.float16), pa.float16()),
        "audio_feat": fsl(rng.standard_normal((n, 1280)).astype(np.float16), pa.float16()),
        "text_input_ids": fsl(rng.integers(0, 250000, (n, 32)).astype(np.int32), pa.int32()),
        "text_attention_mask": fsl(np.ones((n, 32), np.int8), pa.int8())})


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        write_parquet_dataset(src, {"train": table(n, "train", rng)}, table(1, "x", rng).schema,
                              name="bench", params_hash="b",
                              spec=ShardSpec(target_shard_bytes=50_000_000))
        # the export runs in a child process so its peak RSS is its own, not the table build's
        # VmHWM (peak RSS of this address space): ru_maxrss would survive fork+exec
        code = ("import sys, re; from symile_data.publish.reference import export_reference; "
                "export_reference(sys.argv[1], sys.argv[2]); "
                "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])")
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code, str(src), str(out)], check=True,
                             capture_output=True, text=True)
        dt = time.perf_counter() - t0
        rss = int(res.stdout.split()[-1]) / 1024   # the child's own peak (KiB -> MiB)
        print(json.dumps({"rows": n, "seconds_incl_startup": round(dt, 2),
                          "rows_per_s": round(n / dt),
                          "largest_output_tensor_mb": round(n * 1280 * 4 / 2**20, 1),
                          "export_peak_rss_mb": round(rss)}))

if __name__ == "__main__":
    main()
