"""TensorFile: a torch.save file written row by row (export-reference at full MIMIC size)."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from symile_data.publish.tensorfile import TensorFile


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_rows_in_any_order_load_as_torch_save(tmp_path, dtype):
    x = torch.arange(7 * 3 * 4 * 5).reshape(7, 3, 4, 5).to(dtype)
    tf = TensorFile(tmp_path / "t.pt", tuple(x.shape), dtype)
    tf.write(0, x[:2].numpy())
    tf.write_rows(np.array([6, 2, 5]), x[[6, 2, 5]].numpy())
    tf.write_rows(np.array([3, 4]), x[[3, 4]].numpy())
    tf.close()
    for y in (torch.load(tmp_path / "t.pt", weights_only=True),
              torch.load(tmp_path / "t.pt", weights_only=True, mmap=True)):
        assert y.dtype == dtype and torch.equal(y, x)
    assert zipfile.ZipFile(tmp_path / "t.pt").testzip() is None     # CRC-32 patched
    (tmp_path / "ref").mkdir()
    torch.save(x, tmp_path / "ref" / "t.pt")     # same bytes as torch.save at the same name:
    assert (tmp_path / "t.pt").read_bytes() == (tmp_path / "ref" / "t.pt").read_bytes()
    # CRC in the data descriptor, serialization id from every record's CRC (it was the
    # skeleton's: 26 bytes differed, so a released file exported back failed a checksum)


def test_bytes_equal_torch_save_for_large_rows(tmp_path):
    """Rows written in several batches of a CRC chunk's size and more (the real CXR case)."""
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((5, 3, 320, 320))
                         .astype(np.float32))
    tf = TensorFile(tmp_path / "cxr_val.pt", tuple(x.shape), torch.float32)
    for i in range(0, 5, 2):
        tf.write(i, x[i:i + 2].numpy())
    tf.close()
    (tmp_path / "ref").mkdir()
    torch.save(x, tmp_path / "ref" / "cxr_val.pt")
    assert (tmp_path / "cxr_val.pt").read_bytes() == (tmp_path / "ref" / "cxr_val.pt").read_bytes()


def test_vector_empty_and_bounds(tmp_path):
    v = TensorFile(tmp_path / "v.pt", (4,), torch.int64)
    v.write(0, np.array([5, 6, 7, 8]))
    v.close()
    assert torch.load(tmp_path / "v.pt").tolist() == [5, 6, 7, 8]
    e = TensorFile(tmp_path / "e.pt", (0, 3), torch.float32)
    e.close()
    assert torch.load(tmp_path / "e.pt").shape == (0, 3)
    b = TensorFile(tmp_path / "b.pt", (2, 3), torch.float32)
    with pytest.raises(ValueError, match="outside"):
        b.write(1, np.zeros((2, 3), np.float32))
    b.close()


def test_rows_from_source_rows_are_views(tmp_path, monkeypatch):
    """write_rows(rows, x, src): out[rows[j]] = x[src[j]], a row of x going to several rows
    (the retrieval long format), each write a view of x (no gathered copy)."""
    x = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    rows = np.array([7, 0, 1, 2, 5, 6, 3, 4])
    src = np.array([0, 1, 2, 3, 1, 2, 0, 0])
    seen = []
    real = TensorFile.write
    monkeypatch.setattr(TensorFile, "write", lambda self, start, y: (
        seen.append((start, len(y), np.shares_memory(y, x))), real(self, start, y)))
    tf = TensorFile(tmp_path / "t.pt", (8, 6), torch.float32)
    tf.write_rows(rows, x, src)
    tf.close()
    want = np.empty((8, 6), np.float32)
    want[rows] = x[src]
    assert np.array_equal(torch.load(tmp_path / "t.pt", weights_only=True).numpy(), want)
    assert all(view for _, _, view in seen)
    # one write per run consecutive in the file and in x: rows 0-2 <- x[1:4], 4-6 <- x[0:3]
    assert sorted(seen) == [(0, 3, True), (3, 1, True), (4, 3, True), (7, 1, True)]
    with pytest.raises(ValueError, match="source rows"):
        TensorFile(tmp_path / "u.pt", (8, 6), torch.float32).write_rows(rows, x, src[:3])


def test_crc_read_back_in_fixed_chunks(tmp_path, monkeypatch):
    """close() reads the storage back through one reused CRC_CHUNK buffer: the CRC-32 is right
    across chunk edges and Python memory stays near one chunk (plus the 1 MB tail read that
    patches the zip directory), not the tensor (4.8 MB)."""
    import tracemalloc
    from symile_data.publish import tensorfile
    monkeypatch.setattr(tensorfile, "CRC_CHUNK", 10_000, raising=False)  # not a size divisor
    x = np.random.default_rng(0).standard_normal((400, 3000)).astype(np.float32)
    tf = TensorFile(tmp_path / "t.pt", x.shape, torch.float32)
    tf.write(0, x)
    tracemalloc.start()
    try:
        tf.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert zipfile.ZipFile(tmp_path / "t.pt").testzip() is None
    assert np.array_equal(torch.load(tmp_path / "t.pt", weights_only=True).numpy(), x)
    assert x.nbytes == 4_800_000 and peak < 1_200_000
