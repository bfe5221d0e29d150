"""Readers for Parquet shards: a streaming torch IterableDataset and a map-style dataset.

An epoch is the row groups' rows in shard order or a seeded per-epoch order; ranks take equal
contiguous shares (remainder dropped), DataLoader workers whole shuffle windows of them (see
``ParquetIterable``). Columns are converted per row group, never per row:
fixed_size_list<T>[D] -> (rows, D) array, scalars -> (rows,), strings -> list[str].
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from symile_data.io import lineage
from symile_data.io.manifest import ManifestError, read_manifest
from symile_data.io.memory import release_unused
from symile_data.io.openfile import parquet_file, parquet_schema, read_parquet


def split_files(dataset_dir: str | Path, split: str) -> list[Path]:
    """The shard files of ``split`` in manifest order (which is shard-index order)."""
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    lineage.note_read(dataset_dir, manifest)    # what is written from these rows inherits it
    if split not in manifest["splits"]:
        raise ManifestError(f"{dataset_dir}: no split '{split}'; has "
                            f"{', '.join(sorted(manifest['splits']))}")
    return [dataset_dir / s["file"] for s in manifest["splits"][split]["shards"]]


def check_columns(files: Sequence[Path], columns: Sequence[str] | None) -> None:
    """Fail fast, naming the shard, when a requested column is not in it."""
    if columns is None:
        return
    for f in files:
        names = set(parquet_schema(f).names)
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


def read_group(file: Path, group: int, columns: Sequence[str] | None,
               use_threads: bool = True) -> dict[str, Any]:
    """One row group as numpy arrays / lists; the decode's freed memory goes back to the OS
    (``io/memory.py``), so reading group after group does not creep."""
    arrays = table_to_arrays(parquet_file(file).read_row_group(
        group, columns=columns, use_threads=use_threads))
    release_unused()
    return arrays


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


def _concat(pieces: list[dict[str, Any]], perm: np.ndarray | None = None) -> dict[str, Any]:
    """Row pieces -> one dict of fresh arrays, rows in ``perm`` order when given.

    One copy per row either way: the permutation is applied while copying (each piece is
    scattered to the positions its rows take), so shuffling costs no extra pass.
    """
    out: dict[str, Any] = {}
    inv = np.argsort(perm) if perm is not None else None
    for k, first in pieces[0].items():
        if not isinstance(first, np.ndarray):
            flat = [x for p in pieces for x in p[k]]
            out[k] = flat if perm is None else [flat[i] for i in perm]
        elif perm is None:
            out[k] = np.concatenate([p[k] for p in pieces])
        else:
            n = sum(len(p[k]) for p in pieces)
            arr = np.empty((n,) + first.shape[1:], first.dtype)
            o = 0
            for p in pieces:
                arr[inv[o:o + len(p[k])]] = p[k]
                o += len(p[k])
            out[k] = arr
    return out


def _rows(arrays: dict[str, Any], idx: slice) -> dict[str, Any]:
    return {k: v[idx] for k, v in arrays.items()}


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def split_even(n: int, parts: int, i: int) -> tuple[int, int]:
    """[lo, hi) of part i when n items are cut into ``parts`` contiguous near-equal parts."""
    return n * i // parts, n * (i + 1) // parts


class ParquetIterable(IterableDataset):
    """Streams batches (dicts of tensors / lists) from Parquet shards.

    Use with ``DataLoader(ds, batch_size=None, num_workers=k)``.

    One epoch is a sequence of rows: the row groups in shard order, or, with ``shuffle_buffer``
    > 0, in a seeded per-(seed, epoch) order. Ranks (torch.distributed, or ``rank`` / ``world``
    given explicitly) take disjoint contiguous, EQUAL shares of it: ``num_rows // world`` rows
    each; the ``num_rows % world`` rows at the end of the epoch's order are dropped (a different
    set every shuffled epoch), so every rank yields the same number of batches of the same
    sizes (a DistributedDataParallel run cannot hang at the end of an epoch). A rank's rows are
    cut into windows of ``window`` rows (``shuffle_buffer`` rounded up to whole batches); with
    shuffling each window is permuted (seeded by seed, epoch, rank, window) while it is copied
    out of the row groups, and batches are views of it. Whole windows are dealt to DataLoader
    workers in contiguous blocks, so the batches' contents do not depend on the number of
    workers (only the order in which the DataLoader interleaves them does).
    """

    def __init__(self, files: Sequence[str | Path], columns: Sequence[str] | None = None,
                 batch_size: int = 256, shuffle_buffer: int = 0, seed: int = 0,
                 drop_last: bool = False, rank: int | None = None, world: int | None = None):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("ParquetIterable: no shard files given")
        self.columns = list(columns) if columns is not None else None
        self.batch_size, self.shuffle_buffer = batch_size, shuffle_buffer
        self.seed, self.drop_last = seed, drop_last
        # the epoch lives in shared memory: DataLoader workers hold a copy of this object made
        # when they start, and with persistent_workers=True they keep it across epochs, so a
        # plain attribute set in the main process would leave them on epoch 0 forever
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        r, w = _world()
        self.rank, self.world = (r if rank is None else rank), (w if world is None else world)
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} outside world size {self.world}")
        check_columns(self.files, self.columns)
        self.units, sizes = [], []
        for f in self.files:
            meta = parquet_file(f).metadata
            for g in range(meta.num_row_groups):
                self.units.append((f, g))
                sizes.append(meta.row_group(g).num_rows)
        self.unit_rows = np.array(sizes, np.int64)
        self.num_rows = int(self.unit_rows.sum())
        self.rank_rows = self.num_rows // self.world        # rows every rank gets per epoch
        self.window = batch_size * max(1, -(-shuffle_buffer // batch_size))

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Before iterating an epoch; seen by running DataLoader workers too."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank)."""
        if self.drop_last:
            return self.rank_rows // self.batch_size
        return -(-self.rank_rows // self.batch_size)

    def _order(self, epoch: int) -> np.ndarray:
        if self.shuffle_buffer > 0:
            return np.random.default_rng([self.seed, epoch]).permutation(len(self.units))
        return np.arange(len(self.units))

    def _windows(self) -> list[tuple[int, int, int]]:
        """(window index, first row, end row) of this DataLoader worker, rank-relative."""
        n = len(self) * self.batch_size if self.drop_last else self.rank_rows
        n_win = -(-n // self.window)
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        lo, hi = split_even(n_win, nw, wid)
        return [(k, k * self.window, min(n, (k + 1) * self.window)) for k in range(lo, hi)]

    def _read_rows(self, order: np.ndarray, starts: np.ndarray, a: int, b: int,
                   cache: dict, perm: np.ndarray | None) -> dict[str, Any]:
        """Rows [a, b) of the epoch's row sequence (row groups in ``order``), permuted."""
        pieces = []
        i = int(np.searchsorted(starts, a, side="right")) - 1
        while a < b:
            u = int(order[i])
            if cache.get("unit") != u:
                f, g = self.units[u]
                cache.clear()      # the previous row group goes before the next is decoded
                # one decode thread per DataLoader worker: the workers are the parallelism,
                # and arrow's pool in every worker would only contend for the same cores
                cache["arrays"] = read_group(f, g, self.columns,
                                             use_threads=get_worker_info() is None)
                cache["unit"] = u
            lo, hi = a - int(starts[i]), min(b, int(starts[i + 1])) - int(starts[i])
            piece = _rows(cache["arrays"], slice(lo, hi))
            a += hi - lo
            if a < b:      # the window goes on into the next row group: copy the rows out,
                piece = {k: v.copy() if isinstance(v, np.ndarray) else v   # so this group
                         for k, v in piece.items()}                # is freed before that one
            pieces.append(piece)
            i += 1
        return _concat(pieces, perm)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch = self.epoch                  # read once: the whole pass is one epoch
        order = self._order(epoch)
        starts = np.concatenate([[0], np.cumsum(self.unit_rows[order])])
        base = self.rank * self.rank_rows                    # this rank's first row
        bs, cache = self.batch_size, {}
        for k, a, b in self._windows():
            perm = (np.random.default_rng([self.seed, epoch, self.rank, k]).permutation(b - a)
                    if self.shuffle_buffer > 0 else None)
            # batches are views of the window: with DataLoader workers one shared-memory
            # transfer per window, not one per batch
            win = self._read_rows(order, starts, base + a, base + b, cache, perm)
            for s in range(0, b - a, bs):
                yield to_tensors(_rows(win, slice(s, min(b - a, s + bs))))


class ParquetMapDataset(Dataset):
    """Random access to rows of Parquet shards (evaluation); caches one row group."""

    def __init__(self, files: Sequence[str | Path], columns: Sequence[str] | None = None):
        self.files = [Path(f) for f in files]
        self.columns = list(columns) if columns is not None else None
        check_columns(self.files, self.columns)
        self.units, starts, total = [], [], 0
        for f in self.files:
            meta = parquet_file(f).metadata
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
            self._cache = None
            self._cache = (u, read_group(f, g, self.columns))
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
        table = pa.concat_tables(read_parquet(f, columns=cols) for f in self.files)
        return to_tensors(table_to_arrays(table))
