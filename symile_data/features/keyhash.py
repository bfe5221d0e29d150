"""Vectorised 64-bit hashes of Arrow string columns, and sorted-hash lookups.

Joining 11M sample rows against 11M unique texts (M3 ``l``, w = 10) cannot keep the strings in
a Python dict or an Arrow hash table of the whole set. Instead every key is reduced to a 64-bit
hash computed with numpy straight from the Arrow buffers (no Python object per string); tables
are kept sorted by that hash and looked up with ``np.searchsorted`` (8 bytes per unique item,
on disk when large). Distinct keys of one table that share a hash are detected when the table
is built (probability ~n^2 / 2^65: ~3e-6 at 11M keys) and stop with an error.

Hash: polynomial over the UTF-8 bytes (mod 2^64, odd multiplier) of the string, mixed with its
length through the splitmix64 finaliser. Deterministic across runs and machines.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

_P = np.uint64(0x100000001B3)          # FNV prime: odd, so the polynomial is invertible
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_LEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _pow_table(n: int) -> np.ndarray:
    out = np.full(max(n, 1), _P, np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)   # P^k mod 2^64 (wraps silently for arrays)


PIECE_BYTES = 1 << 20   # string bytes hashed at once (temporaries: ~50 B per byte)


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """(n,) uint64 hash per string (nulls hash like the empty string). Works in pieces of
    about ``PIECE_BYTES`` of string data, so memory does not grow with the input."""
    if isinstance(values, pa.ChunkedArray):
        parts = [hash_strings(c) for c in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    arr = values.cast(pa.large_binary())
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64)
    off = np.frombuffer(arr.buffers()[1], np.int64, count=n + 1, offset=arr.offset * 8)
    if off[-1] - off[0] > PIECE_BYTES and n > 1:
        cuts = np.searchsorted(off, off[0] + np.arange(PIECE_BYTES, off[-1] - off[0],
                                                        PIECE_BYTES))
        bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, n - 1), [n]]))
        return np.concatenate([_hash_piece(arr.slice(a, b - a))
                               for a, b in zip(bounds[:-1], bounds[1:])])
    return _hash_piece(arr)


def _hash_piece(arr: pa.Array) -> np.ndarray:
    n = len(arr)
    off = np.frombuffer(arr.buffers()[1], np.int64, count=n + 1, offset=arr.offset * 8)
    lens = np.diff(off)
    if arr.null_count:
        lens = np.where(arr.is_null().to_numpy(zero_copy_only=False), 0, lens)
    total = int(lens.sum())
    h = np.zeros(n, np.uint64)
    if total:
        buf = arr.buffers()[2]
        data = np.frombuffer(buf, np.uint8) if buf is not None else np.zeros(0, np.uint8)
        starts = off[:-1]
        # byte positions of every string's bytes, in row order, and each byte's index in it
        row = np.repeat(np.arange(n), lens)
        first = np.concatenate([[0], np.cumsum(lens)[:-1]])
        pos = np.arange(total) - first[row]
        byte = data[starts[row] + pos].astype(np.uint64) + np.uint64(1)
        terms = byte * _pow_table(int(lens.max()))[pos]
        nonempty = lens > 0
        h[nonempty] = np.add.reduceat(terms, first[nonempty])
    return _mix(h ^ (lens.astype(np.uint64) * _LEN))


def lookup(sorted_hashes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row of each query hash in ``sorted_hashes`` (ascending, unique), -1 when absent."""
    if len(sorted_hashes) == 0:
        return np.full(len(query), -1, np.int64)
    pos = np.searchsorted(sorted_hashes, query)
    pos = np.minimum(pos, len(sorted_hashes) - 1)
    found = np.asarray(sorted_hashes[pos]) == query
    return np.where(found, pos, -1).astype(np.int64)


def lookup_fenced(sorted_hashes: np.ndarray, fence: np.ndarray, step: int,
                  query: np.ndarray) -> np.ndarray:
    """``lookup`` for a large (memory-mapped) ``sorted_hashes``: ``fence`` = every step-th hash
    (in RAM) picks each query's block, a vectorised binary search inside the block finishes.
    Touches at most the pages of one block (step * 8 B) per query, never the whole file."""
    n = len(sorted_hashes)
    if n == 0 or len(query) == 0:
        return np.full(len(query), -1, np.int64)
    lo = np.maximum(np.searchsorted(fence, query, "right") - 1, 0).astype(np.int64) * step
    hi = np.minimum(lo + step, n)
    while True:                                       # lower bound within [lo, hi)
        active = np.flatnonzero(lo < hi)
        if not active.size:
            break
        mid = (lo[active] + hi[active]) // 2
        less = np.asarray(sorted_hashes[mid]) < query[active]
        lo[active] = np.where(less, mid + 1, lo[active])
        hi[active] = np.where(less, hi[active], mid)
    pos = np.minimum(lo, n - 1)
    found = np.asarray(sorted_hashes[pos]) == query
    return np.where(found, pos, -1).astype(np.int64)


def check_unique(sorted_hashes: np.ndarray, keys: pa.Array, where: str) -> None:
    """Raise when two distinct keys share a hash (``keys`` in the same sorted order)."""
    dup = np.flatnonzero(np.diff(sorted_hashes) == 0)
    if dup.size:
        a, b = keys[int(dup[0])].as_py(), keys[int(dup[0]) + 1].as_py()
        raise ValueError(f"{where}: 64-bit key hash collision between {a!r} and {b!r} "
                         "(distinct keys); please report this")
