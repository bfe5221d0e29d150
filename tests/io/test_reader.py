"""Streaming and map-style readers, dataset card + datasets.load_dataset offline."""
import numpy as np
import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader

from symile_data import schema
from symile_data.io.card import write_card
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.reader import ParquetIterable, ParquetMapDataset, split_files


def _feat_schema(d=8):
    return schema._with_meta("test_feats", [
        pa.field("key", pa.string(), nullable=False),
        pa.field("idx", pa.int64(), nullable=False),
        pa.field("feat", schema.vec(d, pa.float16()), nullable=False)])


def _table(n, d=8):
    feats = (np.arange(n)[:, None] + np.arange(d)[None, :] / 10).astype(np.float16)
    return pa.table({"key": [f"k{i:05d}" for i in range(n)], "idx": np.arange(n),
                     "feat": pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), d)})


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "ds"
    write_parquet_dataset(d, {"train": _table(1000), "test": _table(90)}, _feat_schema(),
                          name="toy", params_hash="h",
                          spec=ShardSpec(max_rows_per_shard=250, row_group_rows=50))
    return d


def test_stream_in_order_with_tensors(dataset):
    ds = ParquetIterable(split_files(dataset, "train"), columns=["idx", "feat"], batch_size=64)
    batches = list(ds)
    idx = torch.cat([b["idx"] for b in batches])
    assert idx.tolist() == list(range(1000))
    assert batches[0]["feat"].shape == (64, 8) and batches[0]["feat"].dtype == torch.float16
    assert set(batches[0]) == {"idx", "feat"}
    assert [len(b["idx"]) for b in batches][-1] == 1000 - 15 * 64


def test_shuffle_is_seeded_complete_and_epoch_dependent(dataset):
    files = split_files(dataset, "train")
    ds = ParquetIterable(files, columns=["idx"], batch_size=32, shuffle_buffer=200, seed=3)
    e0 = torch.cat([b["idx"] for b in ds]).tolist()
    assert sorted(e0) == list(range(1000)) and e0 != list(range(1000))
    assert e0 == torch.cat([b["idx"] for b in ds]).tolist()
    ds.set_epoch(1)
    assert torch.cat([b["idx"] for b in ds]).tolist() != e0


def test_workers_partition_rows(dataset):
    ds = ParquetIterable(split_files(dataset, "train"), columns=["idx", "key"], batch_size=50,
                         drop_last=False)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    seen = [i for b in loader for i in b["idx"].tolist()]
    assert sorted(seen) == list(range(1000))
    assert isinstance(next(iter(loader))["key"], list)


def test_ranks_partition_rows(dataset, monkeypatch):
    import symile_data.io.reader as r
    files = split_files(dataset, "train")
    parts = []
    for rank in range(2):
        monkeypatch.setattr(r, "_world", lambda rank=rank: (rank, 2))
        parts.append([i for b in ParquetIterable(files, ["idx"], batch_size=100) for i in b["idx"].tolist()])
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == list(range(1000))


def test_drop_last(dataset):
    ds = ParquetIterable(split_files(dataset, "test"), ["idx"], batch_size=40, drop_last=True)
    assert [len(b["idx"]) for b in ds] == [40, 40]


def test_map_dataset(dataset):
    ds = ParquetMapDataset(split_files(dataset, "train"), columns=["key", "feat"])
    assert len(ds) == 1000
    row = ds[777]
    assert row["key"] == "k00777" and row["feat"].shape == (8,)
    assert float(row["feat"][0]) == 777.0
    assert ds[-1]["key"] == "k00999"
    with pytest.raises(IndexError):
        ds[1000]
    allc = ds.read_all()
    assert allc["feat"].shape == (1000, 8)


def test_bad_inputs(dataset):
    with pytest.raises(ValueError, match="no shard files"):
        ParquetIterable([], batch_size=4)
    with pytest.raises(Exception, match="no split 'val'"):
        split_files(dataset, "val")
    with pytest.raises(KeyError, match=r"train-00000-of-00004.parquet: no column\(s\) \['nope'\]"):
        ParquetIterable(split_files(dataset, "train"), columns=["idx", "nope"])
    with pytest.raises(KeyError, match="no column"):
        ParquetMapDataset(split_files(dataset, "train"), columns=["nope"])


def test_card_loads_with_datasets_offline(tmp_path):
    root = tmp_path / "repo"
    for name, n in (("cfg-a", 120), ("cfg-b", 60)):
        write_parquet_dataset(root / name, {"train": _table(n), "test": _table(10)},
                              _feat_schema(), name=name, params_hash="h",
                              spec=ShardSpec(max_rows_per_shard=50, row_group_rows=25))
    card = write_card(root, title="toy", description="two configs")
    text = card.read_text()
    assert "config_name: cfg-a" in text and "path: cfg-b/train-*.parquet" in text
    import datasets
    ds = datasets.load_dataset(str(root), "cfg-b", cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows == 60 and ds["test"].num_rows == 10
    assert len(ds["train"][0]["feat"]) == 8


def _uneven(tmp_path):
    """Shards of 333 / 120 / 50 rows with row groups of 37: no size divides anything."""
    d = tmp_path / "uneven"
    t = _table(503)
    write_parquet_dataset(d, {"train": t}, _feat_schema(), name="uneven", params_hash="h",
                          spec=ShardSpec(max_rows_per_shard=170, row_group_rows=37))
    return split_files(d, "train")


@pytest.mark.parametrize("shuffle", [0, 100])
@pytest.mark.parametrize("world", [2, 3])
def test_ranks_get_equal_disjoint_batches_on_uneven_shards(tmp_path, shuffle, world):
    files = _uneven(tmp_path)
    per_rank = []
    for rank in range(world):
        ds = ParquetIterable(files, ["idx"], batch_size=32, shuffle_buffer=shuffle, seed=1,
                             rank=rank, world=world)
        ds.set_epoch(2)
        per_rank.append([b["idx"].tolist() for b in ds])
        assert len(per_rank[-1]) == len(ds)
    sizes = [[len(b) for b in r] for r in per_rank]
    assert all(s == sizes[0] for s in sizes)                 # same batch count and sizes
    rows = [i for r in per_rank for b in r for i in b]
    assert len(rows) == len(set(rows)) == 503 // world * world   # disjoint; remainder dropped


def test_workers_do_not_change_batch_contents(tmp_path):
    files = _uneven(tmp_path)
    ds = ParquetIterable(files, ["idx"], batch_size=16, shuffle_buffer=64, seed=5)
    alone = sorted(tuple(b["idx"].tolist()) for b in ds)
    pooled = sorted(tuple(b["idx"].tolist()) for b in
                    DataLoader(ds, batch_size=None, num_workers=2))
    assert alone == pooled and len(alone) == len(ds) == -(-503 // 16)
