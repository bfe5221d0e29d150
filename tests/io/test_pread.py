"""io/pread.py: scattered positional reads give the bytes asked for, one read per run."""
from __future__ import annotations

import os

import numpy as np
import pytest

from symile_data.io import pread
from symile_data.io.pread import read_rows, read_spans


def _count_reads(monkeypatch) -> list[tuple[int, int]]:
    calls = []
    real = os.preadv

    def counted(fd, bufs, pos):
        calls.append((pos, len(bufs[0])))
        return real(fd, bufs, pos)
    monkeypatch.setattr(pread.os, "preadv", counted)
    return calls


def test_read_spans_any_order_overlaps_and_runs(tmp_path, monkeypatch):
    data = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8)
    path = tmp_path / "f.bin"
    data.tofile(path)
    # unsorted, duplicated, overlapping, adjacent, empty and far-apart spans
    start = np.array([90_000, 10, 10, 12, 30, 5_000, 99_990, 40, 0, 50_000])
    length = np.array([100, 20, 20, 3, 10, 0, 10, 1, 0, 64])
    calls = _count_reads(monkeypatch)
    buf, pos = read_spans(path, start, length, gap=16)
    for s, n, p in zip(start, length, pos):
        assert np.array_equal(buf[p:p + n], data[s:s + n])
    # runs within 16 bytes merge: [0..41) | 5000 (empty) | 50000 | 90000 | 99990
    assert [c[0] for c in calls] == [0, 50_000, 90_000, 99_990]
    assert len(buf) == sum(c[1] for c in calls) == 41 + 64 + 100 + 10
    # far apart: one read each; the buffer holds only what was asked (+ gaps < gap)
    calls.clear()
    buf, pos = read_spans(path, np.arange(0, 100_000, 1_000), np.full(100, 8), gap=512)
    assert len(calls) == 100 and len(buf) == 800
    empty, none = read_spans(path, np.zeros(0), np.zeros(0))
    assert len(empty) == 0 and len(none) == 0


def test_read_rows_equal_fancy_indexing_and_errors_name_the_file(tmp_path):
    table = np.random.default_rng(1).standard_normal((500, 7)).astype(np.float16)
    path = tmp_path / "feat.bin"
    table.tofile(path)
    rows = np.random.default_rng(2).integers(0, 500, 2_000)    # repeats, any order
    assert np.array_equal(read_rows(path, rows, np.float16, 7), table[rows])
    assert read_rows(path, np.zeros(0, np.int64), np.float16, 7).shape == (0, 7)
    flat = np.arange(100, dtype=np.int64)
    flat.tofile(tmp_path / "o.bin")
    assert np.array_equal(read_rows(tmp_path / "o.bin", [99, 3, 3], np.int64)[:, 0], [99, 3, 3])
    with pytest.raises(ValueError, match=r"o\.bin: short read at byte 800"):
        read_rows(tmp_path / "o.bin", [100], np.int64)           # past the end
    with pytest.raises(ValueError, match=r"o\.bin: span 0 starts at byte -8"):
        read_rows(tmp_path / "o.bin", [-1], np.int64)


def test_rows_outside_the_table_are_named(tmp_path):
    from symile_data.io.pread import check_rows
    assert check_rows([0, 2], 3, "t.bin").dtype == np.int64
    with pytest.raises(ValueError, match=r"t\.bin: no feature row 3 \(it has 3\)"):
        check_rows([1, 3, -1], 3, "t.bin", "feature row")
    with pytest.raises(ValueError, match="no row -1"):
        check_rows([-1], 3, "t.bin")


def test_token_gather_outside_the_index_is_named(tmp_path):
    from symile_data.features.text import TokenIndex
    from tests.features.test_token_index import _index
    _index(tmp_path, 50)
    with pytest.raises(ValueError, match=r"index: no text row 50 \(it has 50\)"):
        TokenIndex(tmp_path).gather(np.array([0, 50]), 8)
