"""export-reference holds one batch (issue 11): the column reader keeps one row group, the
retrieval tensors are written from views of one converted batch (no gathered copies), and many
tiny batches give the same bytes as one batch per tensor."""
from __future__ import annotations

import hashlib
import shutil
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from symile_data import hashing
from symile_data.io.parquet import ShardSpec, encoding_options, write_parquet_dataset
from symile_data.publish import reference, tensorfile
from symile_data.publish.reference import export_reference, iter_column
from symile_data.publish.tensorfile import TensorFile


def test_column_reader_holds_one_row_group(tmp_path):
    """16 row groups of 4 incompressible ECG rows: while a batch is alive Arrow holds about one
    row group's decode, not the file's column chunks (a reader over the whole file held the
    compressed chunk of every row group: +3.3 MB per group on real 1,000-row shards)."""
    n, group, width = 64, 4, 6000
    x = np.random.default_rng(0).standard_normal((n, width)).astype(np.float32)
    t = pa.table({"hadm_id": pa.array(np.arange(n)),
                  "ecg": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), width)})
    path = tmp_path / "s.parquet"
    pq.write_table(t, path, row_group_size=group, compression="zstd",
                   **encoding_options(t.schema))
    del t
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 16
    compressed = sum(meta.row_group(g).column(1).total_compressed_size for g in range(16))
    group_bytes = group * width * 4                      # 96 KB of float32 values
    pool = pa.default_memory_pool()
    base = pool.bytes_allocated()
    held, rows = [], []
    for b in iter_column([path], ["ecg"], batch_rows=group):
        held.append(pool.bytes_allocated() - base)
        rows.append(b["ecg"].copy())       # the batch itself is freed
    got = np.concatenate(rows)
    del rows
    assert np.array_equal(got, x) and len(held) == 16
    # one group's values + its int16 levels + its compressed chunk, far below the whole column
    assert max(held) <= 6 * group_bytes < compressed
    # batches never span row groups, whatever batch_rows asks for
    assert [len(b["ecg"]) for b in iter_column([path], ["ecg"], batch_rows=6)] == [4] * 16


def one_group_copy(root, dst):
    """The same MIMIC dataset with every split in one shard of one row group."""
    shutil.copytree(root / "retrieval", dst / "retrieval")
    src = root / "samples"
    splits = {s: pq.read_table(sorted(src.glob(f"{s}-*.parquet"))) for s in ("train", "val",
                                                                             "test")}
    write_parquet_dataset(dst / "samples", splits, splits["train"].schema,
                          name="symile-mimic-tiny", params_hash="mh",
                          spec=ShardSpec(max_rows_per_shard=1000, row_group_rows=1000),
                          flags={"mimic_derived": True})


def tree_hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.pt"))}


def test_many_batches_same_bytes_as_one_batch_and_writes_only_views(mimic_root, tmp_path,
                                                                     monkeypatch):
    root, _ = mimic_root(side=8, t=5, sizes=(13, 11, 12))
    one_group_copy(root, tmp_path / "whole")
    monkeypatch.setattr(reference, "BATCH_BYTES", 1 << 40)     # one batch per tensor
    export_reference(tmp_path / "whole", tmp_path / "one")
    monkeypatch.setattr(reference, "BATCH_BYTES", 1)           # one row per batch
    seen = {"batches": 0, "rows": 0, "writes": 0}
    real_rows, real_write = TensorFile.write_rows, TensorFile.write

    def write_rows(self, rows, x, src=None):
        assert len(x) <= reference.batch_rows_for(self) == 1     # at most one batch converted
        seen["batches"] += 1
        seen["rows"] += len(rows)
        self._batch = x
        try:
            real_rows(self, rows, x, *([] if src is None else [src]))
        finally:
            del self._batch

    def write(self, start, x):
        if hasattr(self, "_batch"):                                # a retrieval (gathered) row
            assert np.shares_memory(x, self._batch)               # a view, never a copy
            seen["writes"] += 1
        real_write(self, start, x)

    monkeypatch.setattr(TensorFile, "write_rows", write_rows)
    monkeypatch.setattr(TensorFile, "write", write)
    export_reference(root, tmp_path / "many")
    one, many = tree_hashes(tmp_path / "one"), tree_hashes(tmp_path / "many")
    assert len(one) == 24 and one == many                 # same pid: byte-identical files
    # val_retrieval 110 + test 120 rows, 5 tensors each; a source row goes to several rows
    assert seen["rows"] == 5 * 230 and seen["writes"] == seen["rows"]
    assert seen["batches"] == 5 * (11 + 12)                  # each source row converted once


def test_export_numpy_memory_is_one_batch(mimic_root, tmp_path, monkeypatch):
    """Numpy and Python memory (tracemalloc) stays near one ~96 KB batch (plus the 1 MB tail
    read that patches the zip directory) while the largest tensor (the val_retrieval CXR, 250
    rows x 48 KB) is 12 MB: no tensor, split or gathered copy is materialised."""
    root, _ = mimic_root(side=64, t=20, sizes=(30, 25, 20))
    monkeypatch.setattr(reference, "BATCH_BYTES", 96 << 10)    # 2 CXR rows, 100 ECG rows
    monkeypatch.setattr(tensorfile, "CRC_CHUNK", 64 << 10,     # 8 MB on real tensors
                        raising=False)
    monkeypatch.setattr(hashing, "CHUNK", 64 << 10)
    export_reference(root, tmp_path / "warm")          # imports and caches outside the trace
    tracemalloc.start()
    try:
        rec = export_reference(root, tmp_path / "ref")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    largest = max(f["bytes"] for f in rec["files"].values())
    assert largest > 12_000_000
    assert peak < largest / 6, (peak, largest)
