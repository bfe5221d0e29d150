"""TokenIndex on an index written straight to disk: lookups and gathers equal the in-memory
answers, read with positional reads (no memory map), a piece's reads bounded by the piece."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from symile_data.features import text as T
from symile_data.features.keyhash import lookup
from symile_data.features.text import TokenIndex, pad_tokens


def _index(d, n: int, seed: int = 0):
    """(hashes, offsets, ids) of ``n`` texts with 2-20 ids each, written in the index layout."""
    rng = np.random.default_rng(seed)
    h = np.unique(rng.integers(1, 2**63, n + 64, dtype=np.int64).astype(np.uint64))[:n]
    lens = rng.integers(2, 21, n)
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    ids = rng.integers(3, 1000, int(off[-1]), dtype=np.int32)
    (d / "index").mkdir(parents=True)
    h.tofile(d / "index/hash.bin")
    off.tofile(d / "index/offsets.bin")
    ids.tofile(d / "index/ids.bin")
    (d / "manifest.json").write_text(json.dumps(
        {"index": {"texts": n, "tokens": int(off[-1])}, "pad_id": 1}))
    return h, off, ids


def test_find_and_gather_equal_in_memory(tmp_path, monkeypatch):
    h, off, ids = _index(tmp_path, 20_000)
    monkeypatch.setattr(np, "memmap", None)        # never a memory map
    monkeypatch.setattr(TokenIndex, "FENCE", 1)    # fence read in 3 chunks of 8192 hashes
    assert np.array_equal(TokenIndex(tmp_path).fence, h)
    monkeypatch.setattr(TokenIndex, "FENCE", 128)
    monkeypatch.setattr(TokenIndex, "PIECE", 3000)
    index = TokenIndex(tmp_path)
    assert np.array_equal(index.fence, h[::128])
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(h), 7_000)                          # repeats, any order
    absent = np.array([0, 2**64 - 1, h[5] + np.uint64(1)], np.uint64)
    found, n_tok = index.find(np.concatenate([h[rows], absent]))
    assert np.array_equal(found, np.r_[rows, -1, -1, -1])
    assert np.array_equal(n_tok, np.r_[np.diff(off)[rows], 0, 0, 0])
    assert np.array_equal(lookup(h, h[rows]), rows)
    lists = pa.ListArray.from_arrays(pa.array(off), pa.array(ids))
    for length in (8, 25):                                         # cut (</s> kept) / padded
        want_ids, want_mask = pad_tokens(lists.take(pa.array(rows)), length, 1)
        got_ids, got_mask = index.gather(rows, length)
        assert np.array_equal(got_ids, want_ids) and np.array_equal(got_mask, want_mask)


def test_reads_per_piece_do_not_grow_with_the_index(tmp_path, monkeypatch):
    """A piece reads only its rows' hash blocks, offset pairs and ids: the same bound at 2k and
    60k texts, a small fraction of the larger files (a memory map touched pages all over)."""
    monkeypatch.setattr(TokenIndex, "PIECE", 64)
    monkeypatch.setattr(TokenIndex, "FENCE", 16)
    bound = 64 * (16 * 8 + 512)                    # 64 hash blocks of 128 B, plus gaps: 40 KB
    real = T.read_spans
    for n in (2_000, 60_000):
        sizes = []
        monkeypatch.setattr(T, "read_spans", lambda *a, **k: (
            lambda r: sizes.append(len(r[0])) or r)(real(*a, **k)))
        h, off, ids = _index(tmp_path / str(n), n)
        index = TokenIndex(tmp_path / str(n))
        rows = np.random.default_rng(2).integers(0, n, 50 * index.PIECE)
        found, _ = index.find(h[rows])
        got_ids, _ = index.gather(found, 16)
        assert np.array_equal(found, rows) and len(sizes) == 200   # 50 pieces x 4 reads
        assert max(sizes) <= bound, n
    assert min(h.nbytes, ids.nbytes) > 10 * bound                # files of 480 KB, 2.6 MB
