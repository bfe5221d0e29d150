"""Scattered reads of a large file with positional reads (pread), never a memory map.

Why (measured, issue 11, ``bench/token_index.py``): the join looked tokens up in a memory map
of the text index, re-mapped per piece of 8,192 rows. On a page fault the kernel maps up to
64 KB of already cached pages around the faulting one ("fault-around"; ``madvise(MADV_RANDOM)``
does not stop it), so 8,192 random lookups made up to 8,192 x 64 KB of each file resident:
65,536 lookups held +13 MB over the resident set before them at 100k texts, +55 MB at 1M and
+192 MB at 4M (nearly the whole index), growing with the index up to ~1.5 GB. A pread copies
only the bytes asked for; the file stays in the page cache, outside the process.

Spans are read in file order, one pread per run of spans less than ``GAP`` bytes apart (dense
lookups into a small file cost a few reads, not one per span): a call holds at most
sum(lengths) + len(spans) x GAP bytes, whatever the size of the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

GAP = 512   # bytes: spans closer than this are read by one pread (a syscall ~ copying a few KB)


def read_spans(path: str | Path, start: np.ndarray, length: np.ndarray, gap: int = GAP
               ) -> tuple[np.ndarray, np.ndarray]:
    """Bytes ``[start[i], start[i] + length[i])`` of ``path`` for every i.

    Returns ``(buf, pos)``: span i is ``buf[pos[i]:pos[i] + length[i]]``. ``buf`` holds the runs
    in file order, so sorted fixed-width records stay sorted in it and a span starting at a
    multiple of k bytes (all lengths multiples of k) starts at a multiple of k in ``buf``.
    """
    start = np.asarray(start, np.int64)
    length = np.asarray(length, np.int64)
    if len(start) == 0:
        return np.zeros(0, np.uint8), np.zeros(0, np.int64)
    if (start < 0).any() or (length < 0).any():
        i = int(np.flatnonzero((start < 0) | (length < 0))[0])
        raise ValueError(f"{path}: span {i} starts at byte {start[i]} with length {length[i]}")
    order = np.argsort(start, kind="stable")
    s = start[order]
    e = s + length[order]
    reach = np.maximum.accumulate(e)                   # end of the run so far
    first = np.flatnonzero(np.r_[True, s[1:] > reach[:-1] + gap])
    new = np.zeros(len(s), bool)
    new[first] = True
    run = np.cumsum(new) - 1                           # run of each sorted span
    run_s = s[first]
    run_len = np.maximum.reduceat(e, first) - run_s
    run_off = np.r_[0, np.cumsum(run_len)[:-1]].astype(np.int64)
    buf = np.empty(int(run_len.sum()), np.uint8)
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        for a, n, o in zip(run_s.tolist(), run_len.tolist(), run_off.tolist()):
            got = os.preadv(fd, [buf[o:o + n]], a) if n else 0
            if got != n:
                raise ValueError(f"{path}: short read at byte {a} ({got} of {n} bytes; "
                                 "file truncated?)")
    pos = np.empty(len(s), np.int64)
    pos[order] = run_off[run] + s - run_s[run]
    return buf, pos


def check_rows(rows: np.ndarray, n: int, where: str | Path, what: str = "row") -> np.ndarray:
    """``rows`` as int64, or a ValueError naming ``where`` and the first row outside [0, n)."""
    rows = np.asarray(rows, np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= n):
        bad = int(rows[(rows < 0) | (rows >= n)][0])
        raise ValueError(f"{where}: no {what} {bad} (it has {n})")
    return rows


def read_rows(path: str | Path, rows: np.ndarray, dtype, width: int = 1) -> np.ndarray:
    """``(len(rows), width)`` copy of rows of a flat file of ``(n, width)`` ``dtype`` values
    (no header), e.g. feature vectors or index entries looked up at random."""
    dtype = np.dtype(dtype)
    row_bytes = dtype.itemsize * width
    rows = np.asarray(rows, np.int64)
    buf, pos = read_spans(path, rows * row_bytes, np.full(len(rows), row_bytes))
    return buf.view(dtype).reshape(-1, width)[pos // row_bytes]
