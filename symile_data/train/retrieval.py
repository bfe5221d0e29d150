"""Bounded-memory building blocks of zero-shot retrieval (used by ``train/evaluate.py``).

- ``EmbeddingStore``: (n, d) float32 rows written once, read in chunks; in RAM up to
  ``max_bytes``, beyond it a memory map in a temporary directory (M3 ``l``: ~410k distinct test
  images x 8192 x 4 B = 13 GB would not fit a 24 GB machine next to anything else).
- ``TieKeys``: the uniform keys ``argmax_random_ties`` draws (``torch.rand`` of the (Q, C) score
  shape from one CPU generator, row-major, chunk after chunk), produced lazily: key (q, c) is
  element q * C + c of the generator's stream (``torch.rand`` fills serially, so a stream
  drawn in pieces equals one drawn at once). Drawn only when some query has exactly tied
  scores, so the common case costs nothing, and results equal the whole-matrix computation.
- ``argmax_streamed``: for one query chunk, the argmax over candidates read in chunks, with the
  ties of ``argmax_random_ties``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

MAX_STORE_BYTES = 1 << 30       # candidate embeddings kept in RAM up to 1 GiB (fp32)
KEY_BLOCK = 1 << 22             # random keys drawn per piece (16 MB)


class EmbeddingStore:
    """(n, d) float32 rows: ``put(rows, values)`` then ``chunks(size)`` / ``take(rows)``."""

    def __init__(self, n: int, d: int, max_bytes: int = MAX_STORE_BYTES):
        self.n, self.d, self.max_bytes = n, d, max_bytes
        self._tmp = None
        if n * d * 4 <= max_bytes:
            self._ram: np.ndarray | None = np.zeros((n, d), np.float32)
        else:
            self._ram = None
            self._tmp = tempfile.TemporaryDirectory(prefix="symile-eval-")
            self.path = Path(self._tmp.name) / "emb.f32"
            np.memmap(self.path, np.float32, "w+", shape=(n, d)).flush()

    @property
    def on_disk(self) -> bool:
        return self._ram is None

    def _array(self, mode: str) -> np.ndarray:
        if self._ram is not None:
            return self._ram
        return np.memmap(self.path, np.float32, mode, shape=(self.n, self.d))

    def put(self, rows: np.ndarray, values: Tensor) -> None:
        arr = self._array("r+")
        arr[rows] = values.detach().float().cpu().numpy()
        if self.on_disk:
            arr.flush()
            del arr                                   # unmap: pages leave the resident set

    def take(self, rows: np.ndarray) -> Tensor:
        arr = self._array("r")
        out = torch.from_numpy(np.ascontiguousarray(arr[rows]))
        del arr
        return out

    def chunk_size(self, n_queries: int) -> int:
        """Candidate rows per scoring step: all of them while both the rows read and the
        (n_queries, rows) float32 scores stay under max_bytes, else max_bytes worth."""
        by_scores = self.max_bytes // (4 * max(1, n_queries))
        by_rows = self.n if not self.on_disk else self.max_bytes // (4 * self.d)
        return max(1, min(self.n, by_scores, by_rows))

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


class TieKeys:
    """Lazy view of the stream ``torch.rand`` would give over all (query, candidate) pairs."""

    def __init__(self, generator: torch.Generator):
        self.gen, self.pos = generator, 0            # stream elements consumed so far

    def at(self, positions: np.ndarray) -> np.ndarray:
        """Keys at ascending stream positions (>= every position asked before)."""
        out = np.empty(len(positions), np.float32)
        for i, p in enumerate(positions):
            p = int(p)
            if p < self.pos:
                raise ValueError("tie keys must be requested in stream order")
            while self.pos + KEY_BLOCK <= p:         # skip whole pieces
                torch.rand(KEY_BLOCK, generator=self.gen)
                self.pos += KEY_BLOCK
            if p > self.pos:
                torch.rand(p - self.pos, generator=self.gen)
            out[i] = float(torch.rand(1, generator=self.gen)[0])
            self.pos = p + 1
        return out


def argmax_streamed(score: Callable[[Tensor], Tensor], store: EmbeddingStore, n_q: int,
                    q_first: int, keys: TieKeys) -> np.ndarray:
    """(Qc,) index of the best of ``store``'s C rows for the queries of one chunk.

    score(candidate rows (Cc, d)) -> (Qc, Cc) scores; q_first = global index of the chunk's
    first query (for the tie stream). Exact ties are broken like ``argmax_random_ties`` over
    the whole (Q, C) matrix would: by the largest key at q * C + c, first on equal keys.
    """
    n_c, step = store.n, store.chunk_size(n_q)
    best = count = idx = None
    for lo in range(0, n_c, step):
        s = score(store.take(np.arange(lo, min(n_c, lo + step)))).cpu()   # (Qc, Cc)
        cmax, carg = s.max(dim=1)
        ccount = (s == cmax[:, None]).sum(dim=1)
        if best is None:
            best, idx, count = cmax, carg + lo, ccount
            continue
        better, same = cmax > best, cmax == best
        idx = torch.where(better, carg + lo, idx)
        count = torch.where(better, ccount, torch.where(same, count + ccount, count))
        best = torch.where(better, cmax, best)
    pred = idx.numpy().copy()
    tied = np.flatnonzero(count.numpy() > 1)
    for q in tied:                                   # rare: recompute the row, read its keys
        row = torch.cat([score(store.take(np.arange(lo, min(n_c, lo + step))))[q].cpu()
                         for lo in range(0, n_c, step)])
        cols = np.flatnonzero((row == best[q]).numpy())
        k = keys.at((q_first + q) * n_c + cols)
        pred[q] = cols[int(np.argmax(k))]
    return pred
