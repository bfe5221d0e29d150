"""torch's DataLoader as a client of ParquetIterable: ``set_epoch`` reaches the workers, also
persistent ones (which keep the dataset copy they started with across epochs)."""
from __future__ import annotations

import pytest
from torch.utils.data import DataLoader

from symile_data.io.reader import ParquetIterable, split_files


def batches_per_epoch(chain, epochs: int, **loader_kw) -> list[list[tuple[str, ...]]]:
    """For each epoch, the batches' keys, sorted (workers interleave batches in any order)."""
    files = split_files(chain / "data/m3/shards/symile-m3-2-demo", "train")
    ds = ParquetIterable(files, columns=["key"], batch_size=8, shuffle_buffer=16, seed=3)
    loader = DataLoader(ds, batch_size=None, **loader_kw)
    out = []
    for e in range(epochs):
        ds.set_epoch(e)
        out.append(sorted(tuple(b["key"]) for b in loader))
    return out


@pytest.mark.parametrize("persistent", [False, True])
def test_every_epoch_reshuffles_with_workers(chain, persistent):
    ref = batches_per_epoch(chain, 3, num_workers=0)
    assert ref[0] != ref[1] and ref[1] != ref[2]          # set_epoch reshuffles
    got = batches_per_epoch(chain, 3, num_workers=2, persistent_workers=persistent)
    assert got == ref                                     # epoch e, not epoch 0 again
