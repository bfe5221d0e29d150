"""Readers for Parquet shards: a streaming torch IterableDataset and a map-style dataset.

The unit of work is one row group of one shard. Units are split across torch.distributed ranks
and DataLoader workers (unit u goes to global worker u mod (world * workers)), optionally in a
seeded per-epoch order. Columns are converted per row group, never per row:
fixed_size_list<T>[D] -> (rows, D) array, scalars -> (rows,), strings -> list[str].
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from symile_data.io.manifest import ManifestError, read_manifest


def split_files(dataset_dir: str | Path, split: str) -> list[Path]:
    """The shard files of ``split`` in manifest order (which is shard-index order)."""
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    if split not in manifest["splits"]:
        raise ManifestError(f"{dataset_dir}: no split '{split}'; has "
                            f"{', '.join(sorted(manifest['splits']))}")
    return [dataset_dir / s["file"] for s in manifest["splits"][split]["shards"]]


def check_columns(files: Sequence[Path], columns: Sequence[str] | None) -> None:
    """Fail fast, naming the shard, when a requested column is not in it."""
    if columns is None:
        return
    for f in files:
        names = set(pq.read_schema(f).names)
        missing = [c for c in columns if c not in names]
        if missing:
            raise KeyError(f"{f}: no column(s) {missing}; has {sorted(names)}")


def column_to_numpy(col: pa.ChunkedArray | pa.Array, name: str = "?") -> Any:
    """One arrow column -> (rows, ...) numpy array, or list[str] for strings."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if arr.null_count and (pa.types.is_fixed_size_list(t) or pa.types.is_list(t)):
        raise ValueError(f"column '{name}' has {arr.null_count} null vectors")
    if pa.types.is_fixed_size_list(t):
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(arr), t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = arr.value_lengths().to_numpy(zero_copy_only=False)
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths == lengths[0]).all():
            return flat.reshape(len(arr), int(lengths[0]))
        return np.split(flat, np.cumsum(lengths)[:-1])
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return arr.to_pylist()
    return arr.to_numpy(zero_copy_only=False)


def table_to_arrays(table: pa.Table) -> dict[str, Any]:
    return {n: column_to_numpy(table.column(n), n) for n in table.column_names}


def to_tensors(arrays: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in arrays.items():
        if isinstance(v, np.ndarray) and v.dtype != object:
            v = np.ascontiguousarray(v)
            # arrow hands out read-only zero-copy views; torch wants writable memory
            out[k] = torch.from_numpy(v if v.flags.writeable else v.copy())
        else:
            out[k] = list(v)
    return out


def _take(arrays: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    return {k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx])
            for k, v in arrays.items()}


def _concat(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if not a:
        return b
    return {k: (np.concatenate([a[k], b[k]]) if isinstance(a[k], np.ndarray)
                else list(a[k]) + list(b[k])) for k in b}


def _nrows(arrays: dict[str, Any]) -> int:
    return len(next(iter(arrays.values()))) if arrays else 0


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ParquetIterable(IterableDataset):
    """Streams batches (dicts of tensors / lists) from Parquet shards.

    Use with ``DataLoader(ds, batch_size=None, num_workers=k)``. ``shuffle_buffer`` > 0 shuffles
    the row-group order per epoch (seeded by seed and epoch) and rows within windows of at least
    ``shuffle_buffer`` rows (a block shuffle: cheap, and every window mixes several row groups).
    """

    def __init__(self, files: Sequence[str | Path], columns: Sequence[str] | None = None,
                 batch_size: int = 256, shuffle_buffer: int = 0, seed: int = 0,
                 drop_last: bool = False):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("ParquetIterable: no shard files given")
        self.columns = list(columns) if columns is not None else None
        self.batch_size, self.shuffle_buffer = batch_size, shuffle_buffer
        self.seed, self.drop_last, self.epoch = seed, drop_last, 0
        check_columns(self.files, self.columns)
        self.units = [(f, g) for f in self.files
                      for g in range(pq.ParquetFile(f).metadata.num_row_groups)]
        self.num_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _my_units(self) -> list[tuple[Path, int]]:
        units = list(self.units)
        if self.shuffle_buffer > 0:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(units))
            units = [units[i] for i in order]
        rank, world = _world()
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        g, total = rank * nw + wid, world * nw
        return units[g::total]

    def _read(self, unit: tuple[Path, int]) -> dict[str, Any]:
        f, g = unit
        return table_to_arrays(pq.ParquetFile(f).read_row_group(g, columns=self.columns))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, _ = _world()
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, self.epoch, rank, info.id if info else 0])
        buf: dict[str, Any] = {}
        bs = self.batch_size
        for unit in self._my_units():
            buf = _concat(buf, self._read(unit))
            n = _nrows(buf)
            if n < max(bs, self.shuffle_buffer):
                continue
            # block shuffle: once a window of >= shuffle_buffer rows is buffered, permute it and
            # emit every full batch; each row is copied about twice (no per-batch buffer copy)
            if self.shuffle_buffer > 0:
                buf = _take(buf, rng.permutation(n))
            n_out = n // bs * bs
            for s in range(0, n_out, bs):
                yield to_tensors(_take(buf, np.arange(s, s + bs)))
            buf = _take(buf, np.arange(n_out, n))
        n = _nrows(buf)
        if self.shuffle_buffer > 0 and n:
            buf = _take(buf, rng.permutation(n))
        for s in range(0, n, bs):
            if s + bs > n and self.drop_last:
                break
            yield to_tensors(_take(buf, np.arange(s, min(n, s + bs))))


class ParquetMapDataset(Dataset):
    """Random access to rows of Parquet shards (evaluation); caches one row group."""

    def __init__(self, files: Sequence[str | Path], columns: Sequence[str] | None = None):
        self.files = [Path(f) for f in files]
        self.columns = list(columns) if columns is not None else None
        check_columns(self.files, self.columns)
        self.units, starts, total = [], [], 0
        for f in self.files:
            meta = pq.ParquetFile(f).metadata
            for g in range(meta.num_row_groups):
                self.units.append((f, g))
                starts.append(total)
                total += meta.row_group(g).num_rows
        self.starts, self.total = starts, total
        self._cache: tuple[int, dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self.total

    def _unit(self, u: int) -> dict[str, Any]:
        if self._cache is None or self._cache[0] != u:
            f, g = self.units[u]
            self._cache = (u, table_to_arrays(
                pq.ParquetFile(f).read_row_group(g, columns=self.columns)))
        return self._cache[1]

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self.total <= i < self.total:
            raise IndexError(f"row {i} out of range for {self.total} rows")
        i %= self.total
        u = bisect.bisect_right(self.starts, i) - 1
        arrays = self._unit(u)
        j = i - self.starts[u]
        return {k: (torch.tensor(v[j]) if isinstance(v, np.ndarray)
                    and v.dtype != object else v[j]) for k, v in arrays.items()}

    def read_all(self, columns: Sequence[str] | None = None) -> dict[str, Any]:
        """Whole columns as tensors (for evaluation sets that fit in memory)."""
        cols = list(columns) if columns is not None else self.columns
        table = pa.concat_tables(pq.read_table(f, columns=cols) for f in self.files)
        return to_tensors(table_to_arrays(table))
