"""Feature tables (once per unique item, failures recorded, stable, resumable) and the join."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from symile_data.features.config import JoinConfig
from symile_data.features.join import join_m3
from symile_data.features.m3 import encode_m3
from symile_data.features.tables import read_feature_table
from symile_data.io.atomic import read_json
from symile_data.io.reader import split_files


@pytest.fixture(autouse=True)
def _kit(kit):
    global make_media, make_samples, features_cfg
    make_media, make_samples, features_cfg = kit.make_media, kit.make_samples, kit.features_cfg


@pytest.fixture()
def m3(tmp_path):
    media = tmp_path / "media"
    make_media(media, n_images=6, n_clips=4)
    # reference only the good items (img000-004, aud000-002): a clean join
    make_samples(tmp_path / "samples", "symile-m3-2-xs", n_images=5, n_clips=3)
    return tmp_path


def _encode(root: Path, models, out="features", **kw):
    return encode_m3(features_cfg(models, **kw), root / "media" / "m3_images.parquet",
                     root / "media" / "m3_clips.parquet", root / "samples", root / out)


def _tables(root: Path, name="features"):
    index = read_json(root / name / "index.json")
    return {m: read_feature_table(root / name / index[m])[0] for m in ("image", "audio")}, index


def test_encode_records_failures_and_dedup(tmp_path, tiny_models):
    make_media(tmp_path / "media", n_images=6, n_clips=4)
    make_samples(tmp_path / "samples", "symile-m3-2-xs", n_images=6, n_clips=4)  # refs failures
    rep = _encode(tmp_path, tiny_models)["modalities"]
    img, aud = rep["image"], rep["audio"]
    assert (img["unique_items"], img["ok"], img["failed"]) == (6, 5, 1)
    assert (aud["unique_items"], aud["ok"], aud["failed"]) == (4, 3, 1)
    assert "truncated" in img["failures"][0]["error"] and img["failures"][0]["key"] == "img005"
    assert "3.wav" in aud["failures"][0]["error"]  # the failing file is named
    assert img["rows"] == 46 and img["dedup_factor"] == pytest.approx(46 / img["unique"], 1e-3)
    assert rep["text"]["dedup_factor"] > 1
    tables, _ = _tables(tmp_path)
    t = tables["image"]
    assert t["key"].to_pylist() == sorted(t["key"].to_pylist())
    assert t.filter(pa.compute.equal(t["status"], "failed"))["feat"].null_count == 1
    assert t.schema.field("feat").type == pa.list_(pa.float16(), 32)


def test_encode_only_items_that_samples_use(m3, tiny_models, monkeypatch):
    # the media tables hold 6 images / 4 clips; the samples use 5 / 3 (the good ones); the
    # sample columns are streamed in batches of 7 rows (46 rows in all)
    from symile_data.features import m3 as M
    monkeypatch.setattr(M, "SCAN_ROWS", 7)
    seen = []
    iter_batches = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda self, *a, **k:
                        (seen.append(b.num_rows) or b for b in iter_batches(self, *a, **k)))
    rep = _encode(m3, tiny_models)["modalities"]
    assert seen and max(seen) == 7
    for m, used, pool in (("image", 5, 6), ("audio", 3, 4)):
        r = rep[m]
        assert (r["unique_items"], r["ok"], r["failed"], r["encoded_this_run"]) == \
            (used, used, 0, used)
        assert r["media_table_items"] == pool and r["unique"] == used
        assert r["dedup_factor"] == pytest.approx(r["rows"] / used, 1e-3)
    tables, _ = _tables(m3)
    assert tables["image"]["key"].to_pylist() == [f"img{i:03d}" for i in range(5)]
    assert tables["audio"]["key"].to_pylist() == [f"aud{i:03d}" for i in range(3)]


def test_upstream_failed_rows_are_not_decoded(tmp_path, tiny_models):
    make_media(tmp_path / "media", corrupt=False)
    t = pq.read_table(tmp_path / "media" / "m3_images.parquet")
    status = t["status"].to_pylist()
    status[1] = "failed"
    t = t.set_column(t.schema.get_field_index("status"), "status", pa.array(status))
    pq.write_table(t, tmp_path / "media" / "m3_images.parquet")
    make_samples(tmp_path / "samples", "symile-m3-2-xs", 6, 4)
    rep = _encode(tmp_path, tiny_models)["modalities"]["image"]
    assert rep["failed"] == 1 and rep["failures"][0]["error"].startswith("upstream failed")


def test_features_stable_and_resumable(m3, tiny_models):
    _encode(m3, tiny_models, out="a")
    rep_b = _encode(m3, tiny_models, out="b", batch_size_image=2, batch_size_audio=1,
                    num_workers=1)  # decode in a worker process
    for d in ("image", "audio", "text"):
        a_files = sorted((m3 / "a" / d).rglob("*.parquet"))
        b_files = sorted((m3 / "b" / d).rglob("*.parquet"))
        assert [f.name for f in a_files] == [f.name for f in b_files] and a_files
        for fa, fb in zip(a_files, b_files):  # byte-identical, even with other batch sizes
            assert hashlib.sha256(fa.read_bytes()).digest() == \
                hashlib.sha256(fb.read_bytes()).digest(), fa
    assert rep_b["modalities"]["image"]["encoded_this_run"] == 5
    # resume: a full rerun encodes nothing; a part without its marker is redone alone
    again = _encode(m3, tiny_models, out="b")["modalities"]
    assert again["image"]["encoded_this_run"] == 0 and again["image"]["skipped_resumed"] == 5
    part0 = sorted((m3 / "b" / "image").rglob("part-00000.done.json"))[0]
    part0.unlink()
    redo = _encode(m3, tiny_models, out="b")["modalities"]["image"]
    assert redo["skipped_resumed"] == 2 and redo["encoded_this_run"] == 3


def test_duplicate_content_gets_identical_features(tmp_path, tiny_models):
    make_media(tmp_path / "media", corrupt=False)
    # img001 is a second key pointing at img000's bytes (e.g. the same photo in two synsets)
    shutil.copy(tmp_path / "media" / "img" / "0.jpg", tmp_path / "media" / "img" / "1.jpg")
    make_samples(tmp_path / "samples", "symile-m3-2-xs", 6, 4)
    _encode(tmp_path, tiny_models)
    t = _tables(tmp_path)[0]["image"]
    feats = np.asarray(t["feat"].combine_chunks().flatten()).reshape(t.num_rows, -1)
    assert np.array_equal(feats[0], feats[1]) and not np.array_equal(feats[0], feats[2])


def _shard_table(root: Path, split: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in
                             split_files(root / "shards" / "symile-m3-2-xs", split)])


def test_join_is_exact(m3, tiny_models):
    _encode(m3, tiny_models)
    rep = join_m3(m3 / "samples", m3 / "features", m3 / "shards", JoinConfig())
    tables, index = _tables(m3)
    tokens = pa.concat_tables([pq.read_table(f) for f in sorted(
        (m3 / "features" / index["text"]).glob("part-*.parquet"))]).to_pylist()
    tok = {r["text"]: r["input_ids"] for r in tokens}
    feat = {m: dict(zip(t["key"].to_pylist(), t["feat"].to_pylist())) for m, t in tables.items()}
    samples = {s: pq.read_table(split_files(m3 / "samples" / "symile-m3-2-xs", s)[0])
               for s in ("train", "val", "test")}
    L = rep["datasets"][0]["text_len"]
    assert L == max(len(v) for v in tok.values())
    for split, src in samples.items():
        out = _shard_table(m3, split)
        assert out.num_rows == src.num_rows
        assert out.select(src.column_names).equals(src.cast(out.select(src.column_names).schema))
        for r in out.to_pylist():  # per-row check against the tables (test-only Python loop)
            assert r["image_feat"] == feat["image"][r["image_key"]]
            assert r["audio_feat"] == feat["audio"][r["audio_key"]]
            ids = tok[r["text"]]
            assert r["text_input_ids"][:len(ids)] == ids
            assert r["text_attention_mask"] == [1] * len(ids) + [0] * (L - len(ids))
            assert set(r["text_input_ids"][len(ids):]) <= {1}  # <pad>
    # rows sharing an image key carry identical features (duplicates identical)
    out = _shard_table(m3, "train").to_pandas()
    g = out.groupby("image_key")["image_feat"].apply(lambda s: len({tuple(x) for x in s}))
    assert (g == 1).all() and (out["image_key"].value_counts() > 1).any()
    # rerun: every shard skipped, identical bytes
    before = {f: f.read_bytes() for f in (m3 / "shards").rglob("*.parquet")}
    join_m3(m3 / "samples", m3 / "features", m3 / "shards", JoinConfig())
    assert before == {f: f.read_bytes() for f in (m3 / "shards").rglob("*.parquet")}


def test_join_fixed_length_and_failed_items(tmp_path, tiny_models):
    make_media(tmp_path / "media", n_images=6, n_clips=4)
    make_samples(tmp_path / "samples", "symile-m3-2-xs", n_images=6, n_clips=4)  # refs failures
    _encode(tmp_path, tiny_models)
    with pytest.raises(ValueError, match=r"symile-m3-2-xs/\w+: \d+ sample\(s\) without an ok"):
        join_m3(tmp_path / "samples", tmp_path / "features", tmp_path / "shards", JoinConfig())
    cfg = JoinConfig(on_missing_feature="drop", text_length="fixed", text_fixed_length=5)
    rep = join_m3(tmp_path / "samples", tmp_path / "features", tmp_path / "shards", cfg)
    d = rep["datasets"][0]
    assert d["text_len"] == 5 and sum(v["rows"] for v in d["dropped"].values()) > 0
    out = _shard_table(tmp_path, "train")
    assert out.num_rows == d["rows"]["train"] < 30
    assert not set(out["image_key"].to_pylist()) & {"img005"}
    assert not set(out["audio_key"].to_pylist()) & {"aud003"}
    ids = np.asarray(out["text_input_ids"].combine_chunks().flatten()).reshape(-1, 5)
    mask = np.asarray(out["text_attention_mask"].combine_chunks().flatten()).reshape(-1, 5)
    assert (ids[:, 0] == 0).all() and ((mask.sum(1) < 5) | (ids[:, -1] == 2)).all()
