"""Bucket files and the merge of sorted parts (io/buckets.py): the merge gives the rows of
every part in global key order, chunk by chunk, whatever the chunk size."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from symile_data.io.buckets import BucketWriter, merge_sorted, read_ipc, write_ipc


def _table(rng, n):
    return pa.table({"row": rng.permutation(n).astype(np.int64),
                     "subject": rng.integers(0, 40, n),
                     "name": pa.array([f"r{i}" for i in range(n)], pa.string())})


def test_bucket_writer_keeps_rows_and_order(tmp_path):
    rng = np.random.default_rng(0)
    t = _table(rng, 500)
    with BucketWriter(tmp_path, "x", 7, t.schema) as w:
        for lo in range(0, 500, 64):                      # several writes per bucket
            part = t.slice(lo, 64)
            w.write(part, part["subject"].to_numpy() % 7)
    assert w.rows.sum() == 500
    for b, p in enumerate(w.paths):
        got = read_ipc(p).to_pandas()
        want = t.to_pandas()[t["subject"].to_numpy() % 7 == b]
        assert got["name"].tolist() == want["name"].tolist()     # input order kept
    assert read_ipc(w.paths[0], ["row"]).column_names == ["row"]


def test_merge_sorted_equals_global_sort(tmp_path):
    rng = np.random.default_rng(1)
    t = _table(rng, 1000)
    parts = []
    with BucketWriter(tmp_path, "x", 6, t.schema) as w:
        w.write(t, t["subject"].to_numpy() % 6)
    for p in w.paths:                                     # each part sorted by its key
        s = read_ipc(p).sort_by("row")
        parts.append(p.with_suffix(".sorted.arrow"))
        write_ipc(parts[-1], s)
    want = t.sort_by("row")
    for chunk_rows in (1, 37, 1000, 5000):               # smaller than, equal to, above rows
        chunks = list(merge_sorted(parts, "row", chunk_rows))
        assert len(chunks) == -(-1000 // chunk_rows)
        assert max(c.num_rows for c in chunks) <= chunk_rows
        assert pa.concat_tables(chunks).equals(want)


def test_merge_sorted_empty_parts_and_ties(tmp_path):
    schema = pa.schema([("row", pa.int64()), ("v", pa.int64())])
    paths = []
    for i, rows in enumerate([[], [0, 2, 2], [], [1, 2]]):
        p = tmp_path / f"p{i}.arrow"
        write_ipc(p, pa.table({"row": rows, "v": [i] * len(rows)}, schema=schema))
        paths.append(p)
    got = pa.concat_tables(merge_sorted(paths, "row", 2))
    assert got["row"].to_pylist() == [0, 1, 2, 2, 2]
    assert got["v"].to_pylist() == [1, 3, 1, 1, 3]       # equal keys in part order
    assert list(merge_sorted(paths[:1], "row", 4)) == []
