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
    torch.save(x, tmp_path / "ref" / "t.pt")            # same layout and size as torch.save
    assert (tmp_path / "t.pt").stat().st_size == (tmp_path / "ref" / "t.pt").stat().st_size


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
