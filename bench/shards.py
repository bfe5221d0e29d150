"""Shard I/O throughput (JSON on stdout).

Parquet write and read rows/s and MB/s for a 100k-row table with 1024-d and 1280-d float16
feature columns, and ParquetIterable samples/s with 0 and 2 DataLoader workers, shuffled
(shuffle_buffer 10,000) and unshuffled: the median of ``--repeats`` passes, with the 1-minute
load average before the passes (the box may be shared), and samples per CPU second (process +
DataLoader workers), which a shared box does not distort.
Goals: shuffled within 10% of unshuffled; >= 50k samples/s with 2 workers on 2 cores.
Usage: python bench/shards.py [--rows 100000] [--repeats 3] [--out /tmp/symile-bench-shards]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch.utils.data import DataLoader

from symile_data import schema
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.reader import ParquetIterable, split_files


def _cpu_s() -> float:
    """CPU seconds of this process and of its reaped children (DataLoader workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def make_table(n: int) -> tuple[pa.Table, pa.Schema]:
    rng = np.random.default_rng(0)
    img = rng.standard_normal((n, 1024), dtype=np.float32).astype(np.float16)
    aud = rng.standard_normal((n, 1280), dtype=np.float32).astype(np.float16)
    sch = schema._with_meta("bench", [
        pa.field("key", pa.string(), nullable=False),
        pa.field("cls_id", pa.int16(), nullable=False),
        pa.field("image_feat", schema.vec(1024), nullable=False),
        pa.field("audio_feat", schema.vec(1280), nullable=False)])
    t = pa.table({"key": [f"s{i:08d}" for i in range(n)],
                  "cls_id": rng.integers(0, 1000, n).astype(np.int16),
                  "image_feat": pa.FixedSizeListArray.from_arrays(pa.array(img.reshape(-1)), 1024),
                  "audio_feat": pa.FixedSizeListArray.from_arrays(pa.array(aud.reshape(-1)), 1280)})
    return t, sch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/symile-bench-shards"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    table, sch = make_table(args.rows)
    mb = table.nbytes / 1e6
    t0 = time.perf_counter()
    write_parquet_dataset(args.out, {"train": table}, sch, name="bench", params_hash="b",
                          spec=ShardSpec(target_shard_bytes=200_000_000, row_group_rows=4096))
    t_write = time.perf_counter() - t0
    files = split_files(args.out, "train")
    t0 = time.perf_counter()
    n = sum(pq.read_table(f).num_rows for f in files)
    t_read = time.perf_counter() - t0
    res = {"rows": args.rows, "arrow_mb": round(mb, 1),
           "disk_mb": round(sum(f.stat().st_size for f in files) / 1e6, 1),
           "shards": len(files),
           "parquet_write_rows_s": round(args.rows / t_write), "parquet_write_mb_s": round(mb / t_write, 1),
           "parquet_read_rows_s": round(n / t_read), "parquet_read_mb_s": round(mb / t_read, 1)}
    res["load_avg_1min_before"] = round(os.getloadavg()[0], 2)
    for workers in (0, 2):
        for shuffle in (0, 10_000):
            rates, cpu_rates = [], []
            for _ in range(args.repeats):
                ds = ParquetIterable(files, batch_size=256, shuffle_buffer=shuffle, seed=0)
                loader = DataLoader(ds, batch_size=None, num_workers=workers,
                                    persistent_workers=False)
                t0, c0 = time.perf_counter(), _cpu_s()
                seen = sum(len(b["key"]) for b in loader)
                rates.append(seen / (time.perf_counter() - t0))
                cpu_rates.append(seen / (_cpu_s() - c0))
            tag = "shuffled" if shuffle else "unshuffled"
            res[f"iterable_samples_s_{tag}_workers{workers}"] = round(statistics.median(rates))
            res[f"iterable_samples_s_{tag}_workers{workers}_all"] = [round(r) for r in rates]
            # load-independent: samples per CPU second of this process and its workers
            res[f"iterable_samples_per_cpu_s_{tag}_workers{workers}"] = round(
                statistics.median(cpu_rates))
    res["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    for w in (0, 2):
        res[f"shuffled_over_unshuffled_cpu_workers{w}"] = round(
            res[f"iterable_samples_per_cpu_s_shuffled_workers{w}"]
            / res[f"iterable_samples_per_cpu_s_unshuffled_workers{w}"], 3)
        res[f"shuffled_over_unshuffled_workers{w}"] = round(
            res[f"iterable_samples_s_shuffled_workers{w}"]
            / res[f"iterable_samples_s_unshuffled_workers{w}"], 3)
    res["goal_within_10pct_met"] = min(res["shuffled_over_unshuffled_workers0"],
                                       res["shuffled_over_unshuffled_workers2"]) >= 0.9
    res["goal_50k_samples_s_2_workers_met"] = res["iterable_samples_s_shuffled_workers2"] >= 50_000
    print(json.dumps(res, indent=2))
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
