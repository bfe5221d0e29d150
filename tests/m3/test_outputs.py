"""Dataset layout: determinism, resume, datasets.load_dataset, embedded bytes, WebDataset."""
from __future__ import annotations

import dataclasses
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from symile_data.io.manifest import read_manifest
from symile_data.io.validate import validate_dataset
from symile_data.m3.config import M3SamplesConfig
from symile_data.m3.samples import build_samples

from .conftest import P_MISSING

NAME = f"symile-m3-2-demo-miss{P_MISSING:g}"


def _build(built, out, **kw):
    cfg = M3SamplesConfig(ws=(2,), custom_sizes={"demo": [300, 50, 50]}, missing_p=P_MISSING,
                          max_rows_per_shard=200, **kw)
    return build_samples(out, cfg, built["translations"], built["images"], built["clips"],
                         out / "wds")


def test_same_params_same_bytes_and_resume(built, tmp_path):
    _build(built, tmp_path / "a")
    _build(built, tmp_path / "b")
    ma, mb = read_manifest(tmp_path / "a" / NAME), read_manifest(tmp_path / "b" / NAME)
    assert ma["splits"] == mb["splits"] and ma["splits"]["train"]["num_shards"] == 2
    assert validate_dataset(tmp_path / "a" / NAME)["ok"]
    # a rerun skips finished shards (same files, untouched)
    shard = sorted((tmp_path / "a" / NAME).glob("train-*.parquet"))[0]
    mtime = shard.stat().st_mtime_ns
    _build(built, tmp_path / "a")
    assert shard.stat().st_mtime_ns == mtime
    other = _build(built, tmp_path / "c", seed=1)
    assert other and read_manifest(tmp_path / "c" / NAME)["splits"] != ma["splits"]


def test_rows_do_not_depend_on_shard_size(built, tmp_path):
    _build(built, tmp_path / "a")
    a = pq.ParquetDataset(sorted((tmp_path / "a" / NAME).glob("train-*.parquet"))).read()
    big = build_samples(tmp_path / "b", M3SamplesConfig(
        ws=(2,), custom_sizes={"demo": [300, 50, 50]}, missing_p=P_MISSING, block_rows=64),
        built["translations"], built["images"], built["clips"])
    assert big
    b = pq.ParquetDataset(sorted((tmp_path / "b" / NAME).glob("train-*.parquet"))).read()
    assert a.num_rows == b.num_rows == 300
    assert a.column("key").equals(b.column("key"))
    assert a.column("lang").equals(a.column("lang"))


def test_load_dataset_reads_the_card(built):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(built["samples"]), NAME, split="test")
    assert ds.num_rows == 600 and set(ds.column_names) >= {"text", "image_key", "audio_key"}


def test_embedded_media_decode_as_hf_image_and_audio(built, tmp_path):
    datasets = pytest.importorskip("datasets")
    _build(built, tmp_path, embed_media=True)
    ds = datasets.load_dataset(str(tmp_path), NAME, split="validation")
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["audio"], datasets.Audio)
    # raw bytes (decoding audio needs torchcodec, not a dependency here)
    row = ds.cast_column("image", datasets.Image(decode=False)).cast_column(
        "audio", datasets.Audio(decode=False))[0]
    from PIL import Image
    assert Image.open(io.BytesIO(row["image"]["bytes"])).size == (40, 40)
    assert row["audio"]["bytes"][:4] == b"RIFF"


def test_embedded_media_samples_validate(built, tmp_path):
    """`symile-data validate` accepts the embed_media columns its schema declares (it found
    them "differ from schema 'm3_samples'" when the README's validate ran on such samples)."""
    _build(built, tmp_path, embed_media=True)
    report = validate_dataset(tmp_path / NAME)
    assert report["ok"], report["problems"]


def test_webdataset_export(built, tmp_path):
    import webdataset as wds
    _build(built, tmp_path, wds_export=True)
    m = read_manifest(tmp_path / "wds" / NAME)
    assert m["splits"]["train"]["rows"] == 300
    tars = sorted(str(p) for p in (tmp_path / "wds" / NAME).glob("val-*.tar"))
    sample = next(iter(wds.WebDataset(tars, shardshuffle=False)))
    meta = json.loads(sample["json"])
    assert sample["txt"].decode() == meta["text"] and sample["jpg"][:2] == b"\xff\xd8"
    assert sample["wav"][:4] == b"RIFF"


def test_unknown_size_and_bad_w_are_config_errors():
    from symile_data.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match="size 'huge'"):
        from_dict(M3SamplesConfig, {"sizes": ["huge"]}, "params.yaml:m3_samples")
    with pytest.raises(ConfigError, match="ws"):
        from_dict(M3SamplesConfig, {"ws": [3]}, "params.yaml:m3_samples")
    assert dataclasses.replace(M3SamplesConfig(), sizes=("xs",)).split_rows("xs")[0] == 500_000


def test_samples_are_drawn_block_by_block(built, tmp_path, monkeypatch):
    """Scale (issue 11): the stage never draws more than one block of rows at once, and the
    shards it writes hold exactly the rows of the whole split drawn in one go."""
    from symile_data.m3 import sampling
    sizes, draw = [], sampling.sample_block
    monkeypatch.setattr(sampling, "sample_block",
                        lambda inp, n, *a, **k: sizes.append(n) or draw(inp, n, *a, **k))
    cfg = M3SamplesConfig(ws=(2,), custom_sizes={"demo": [300, 50, 50]}, missing_p=P_MISSING,
                          block_rows=64, max_rows_per_shard=100)
    build_samples(tmp_path / "a", cfg, built["translations"], built["images"], built["clips"])
    assert sizes and max(sizes) == 64                            # 400 rows, blocks of 64
    got = pq.ParquetDataset(sorted((tmp_path / "a" / NAME).glob("train-*.parquet"))).read()
    assert len(list((tmp_path / "a" / NAME).glob("train-*.parquet"))) == 3
    monkeypatch.setattr(sampling, "sample_block", draw)
    from symile_data.m3.samples import load_inputs
    from symile_data.schema import m3_samples_schema
    whole = sampling.SplitSource(load_inputs(2, built["translations"], built["images"],
                                             built["clips"]), "train", 300, 0, P_MISSING,
                                 m3_samples_schema(), block_rows=64).take_range(0, 300)
    assert got.equals(whole.cast(got.schema))


def test_finished_split_keeps_no_block(built):
    """A split's source drops its cached block with its last rows: the sources of the splits
    already written hold nothing while the next is written (they held a block each)."""
    from symile_data.m3 import sampling
    from symile_data.m3.samples import load_inputs
    from symile_data.schema import m3_samples_schema
    src = sampling.SplitSource(load_inputs(2, built["translations"], built["images"],
                                           built["clips"]), "val", 150, 0, P_MISSING,
                               m3_samples_schema(), block_rows=64)
    parts = [src.take_range(0, 100)]
    assert src._cache is not None and src._cache[0] == 1
    parts.append(src.take_range(100, 150))
    assert src._cache is None
    again = src.take_range(0, 150)                        # still answers, same rows
    assert pa.concat_tables(parts).equals(again)


def test_default_blocks_bound_memory():
    cfg = M3SamplesConfig()
    assert cfg.block_rows <= 100_000 and cfg.max_rows_per_shard <= 250_000


def test_samples_with_wds_write_only_under_out(built, tmp_path, monkeypatch):
    """`m3 samples --out X` with wds_export and no --wds-out: the tars go to X/wds, not to a
    default path beside the working directory (it was data/m3/samples/wds whatever X was)."""
    from .conftest import stage, write_params
    params = write_params(tmp_path / "params.yaml",
                          m3_samples={"ws": [2], "custom_sizes": {"demo": [60, 20, 20]},
                                      "wds_export": True, "wds_samples_per_shard": 50})
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "X"
    assert stage("m3_samples").main(["--params", str(params), "--translations",
                                     str(built["translations"]), "--images",
                                     str(built["images"]), "--clips", str(built["clips"]),
                                     "--out", str(out)]) == 0
    assert list(cwd.iterdir()) == []                      # nothing beside the given --out
    assert read_manifest(out / "wds" / "symile-m3-2-demo")["format"] == "webdataset"
