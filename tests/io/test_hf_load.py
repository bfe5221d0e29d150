"""``datasets.load_dataset(<dataset folder>)`` (offline) sees exactly the shards: markers,
temporaries, locks and the manifest are invisible to the Hub's data-file patterns."""
import io
import json

import numpy as np
import pytest

from symile_data.io.manifest import MANIFEST, is_bookkeeping, marker_path
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.wds import write_wds_dataset
from symile_data.schema import xor_schema
from symile_data.xor import generate_xor

datasets = pytest.importorskip("datasets")


def _parquet_dir(d):
    rng = np.random.default_rng(0)
    splits = {"train": generate_xor(700, 4, 0.5, rng, "train"),
              "val": generate_xor(120, 4, 0.5, rng, "val"),
              "test": generate_xor(90, 4, 0.5, rng, "test")}
    return write_parquet_dataset(d, splits, xor_schema(4), name="hf", params_hash="h",
                                 spec=ShardSpec(max_rows_per_shard=300, row_group_rows=64))


def test_bookkeeping_names_are_hidden(tmp_path):
    m = _parquet_dir(tmp_path)
    for info in m["splits"].values():
        for e in info["shards"]:
            assert marker_path(tmp_path / e["file"]).name.startswith(".")
    visible = sorted(p.name for p in tmp_path.iterdir() if not is_bookkeeping(p.name))
    assert visible == sorted(e["file"] for i in m["splits"].values() for e in i["shards"])
    assert (tmp_path / MANIFEST).exists()


def test_load_dataset_parquet_folder_exact_rows(tmp_path):
    m = _parquet_dir(tmp_path / "ds")
    ds = datasets.load_dataset(str(tmp_path / "ds"), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].num_rows == 700 == m["splits"]["train"]["rows"]
    assert ds["validation"].num_rows == 120 and ds["test"].num_rows == 90
    assert ds["train"].column_names == xor_schema(4).names
    assert len(set(ds["train"]["key"])) == 700


def _wds_samples(n, split):
    out = []
    for i in range(n):
        buf = io.BytesIO()
        np.save(buf, np.arange(3, dtype=np.int16) + i)
        out.append({"__key__": f"{split}_{i:04d}", "json": json.dumps({"i": i}).encode(),
                    "npy": buf.getvalue()})
    return out


def test_load_dataset_webdataset_folder_exact_rows(tmp_path):
    d = tmp_path / "wds"
    write_wds_dataset(d, {"train": _wds_samples(25, "train"), "test": _wds_samples(7, "test")},
                      name="w", params_hash="h", samples_per_shard=10)
    ds = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "test"}
    assert ds["train"].num_rows == 25 and ds["test"].num_rows == 7
    assert sorted(r["i"] for r in ds["train"]["json"]) == list(range(25))


def test_manifest_never_read_as_data_even_with_unknown_split_names(tmp_path):
    # split names no Hub pattern knows: datasets falls back to every file ("**") as train;
    # manifest.json still stays out (extension filter) and markers are hidden
    rng = np.random.default_rng(1)
    write_parquet_dataset(tmp_path / "odd", {"queries": generate_xor(50, 3, 0.5, rng, "q"),
                                             "pool": generate_xor(30, 3, 0.5, rng, "p")},
                          xor_schema(3), name="o", params_hash="h",
                          spec=ShardSpec(max_rows_per_shard=20))
    ds = datasets.load_dataset(str(tmp_path / "odd"), cache_dir=str(tmp_path / "cache"))
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 80}
