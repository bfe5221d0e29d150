"""Scale (issue 11): readers and writers hold one chunk at a time and hand freed memory back.

Each test fails if a stage kept the previous chunk (row group, shard) alive while building
the next one, which is what made peak memory grow with the number of chunks."""
import sys
import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from symile_data import schema
from symile_data.io import memory, reader
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.reader import ParquetIterable, ParquetMapDataset, split_files


D, GROUP = 16, 500           # row groups of 500 rows


def _schema(d=D):
    return schema._with_meta("test_feats", [
        pa.field("key", pa.string(), nullable=False),
        pa.field("idx", pa.int64(), nullable=False),
        pa.field("feat", schema.vec(d, pa.float16()), nullable=False)])


def _table(n, d=D):
    feats = (np.arange(n)[:, None] % 1000 + np.arange(d)[None, :] / 1000).astype(np.float16)
    return pa.table({"key": [f"k{i:05d}" for i in range(n)], "idx": np.arange(n),
                     "feat": pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), d)})


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "ds"
    write_parquet_dataset(d, {"train": _table(3500)}, _schema(), name="toy", params_hash="h",
                          spec=ShardSpec(max_rows_per_shard=1250, row_group_rows=GROUP))
    return d


def test_release_unused_keeps_live_data():
    arr = pc.add(pa.array(np.arange(100_000, dtype=np.float64)), 1.0)   # pool-allocated
    held = pa.total_allocated_bytes()
    memory.release_unused()
    assert pa.total_allocated_bytes() == held and arr[99_999].as_py() == 100_000.0
    if sys.platform.startswith("linux"):
        assert memory._malloc_trim() is not None        # glibc: the heaps are trimmed too


def _watch_groups(monkeypatch):
    """Wrap reader.read_group; at each call, count the arrays of earlier groups still alive
    (the wrapper hands out owning copies, so any view into a group keeps that copy alive)."""
    alive: list[weakref.ref] = []
    held = []

    def read_group(*a, **k):
        held.append(sum(r() is not None for r in alive))
        out = {n: v.copy() if isinstance(v, np.ndarray) else v for n, v in real(*a, **k).items()}
        alive.extend(weakref.ref(v) for v in out.values() if isinstance(v, np.ndarray))
        return out
    real = reader.read_group
    monkeypatch.setattr(reader, "read_group", read_group)
    return held


@pytest.mark.parametrize("shuffle", [0, 1500])
def test_iterable_frees_a_row_group_before_reading_the_next(dataset, monkeypatch, shuffle):
    # batches of 640 rows over row groups of 500: most windows straddle two or more groups
    held = _watch_groups(monkeypatch)
    ds = ParquetIterable(split_files(dataset, "train"), columns=["idx", "feat"],
                         batch_size=640, shuffle_buffer=shuffle, seed=1)
    batches = list(ds)
    idx = torch.cat([b["idx"] for b in batches])
    assert sorted(idx.tolist()) == list(range(3500))
    feat = torch.cat([b["feat"] for b in batches]).float()
    assert torch.equal(feat, torch.from_numpy(_table(3500)["feat"].combine_chunks().flatten()
                                              .to_numpy().reshape(3500, D)[idx]).float())
    if not shuffle:
        assert idx.tolist() == list(range(3500))
    assert len(held) >= 7 and max(held) == 0, held   # never two groups at once


def test_map_dataset_frees_its_cached_group(dataset, monkeypatch):
    held = _watch_groups(monkeypatch)
    ds = ParquetMapDataset(split_files(dataset, "train"), columns=["idx", "feat"])
    got = [int(ds[i]["idx"]) for i in (0, 600, 1200, 1, 3499)]
    assert got == [0, 600, 1200, 1, 3499] and len(held) == 5 and max(held) == 0, held


class _Source:
    """RowSource whose rows live in Arrow's pool; records the pool's bytes at each call."""

    def __init__(self, n):
        self.num_rows, self.seen = n, []

    def take_range(self, start, stop):
        self.seen.append(pa.total_allocated_bytes())
        x = pc.add(pa.array(np.arange(start, stop, dtype=np.float64)), 0.0)
        return pa.table({"x": x})


def test_parquet_writer_frees_a_shard_before_building_the_next(tmp_path):
    sch = schema._with_meta("t", [pa.field("x", pa.float64(), nullable=False)])
    src, shard_bytes = _Source(400_000), 100_000 * 8
    base = pa.total_allocated_bytes()
    write_parquet_dataset(tmp_path / "d", {"train": src}, sch, name="t", params_hash="h",
                          spec=ShardSpec(max_rows_per_shard=100_000, row_group_rows=8192))
    shards = sorted((tmp_path / "d").glob("train-*.parquet"))
    assert len(shards) == 4 and len(src.seen) == 5        # size probe + 4 shards
    # when shard i+1 is built, shard i's 800 kB are no longer held
    assert max(b - base for b in src.seen) < shard_bytes // 2, [b - base for b in src.seen]
    back = pa.concat_tables(pa.parquet.read_table(f) for f in shards)["x"].to_numpy()
    assert np.array_equal(back, np.arange(400_000, dtype=np.float64))
