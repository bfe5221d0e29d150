"""Scale (issue 11): text tokens, feature encode and the join stream in chunks smaller than
the data, and give exactly what a whole-table computation gives."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from symile_data import schema as S
from symile_data.features import join as J
from symile_data.features.config import JoinConfig
from symile_data.features.keyhash import hash_strings, lookup, lookup_fenced
from symile_data.features.m3 import encode_m3
from symile_data.features.tables import read_feature_table
from symile_data.features.text import TextTokenizer, TokenIndex, encode_texts, pad_tokens
from symile_data.io.atomic import read_json
from symile_data.io.manifest import read_manifest
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.reader import split_files

WORDS = ["dog", "σκύλος", "犬", "crane bird", "γερανός", "kranich", "grúa", "журавель", "x"]


def _texts(rng, n):
    k = rng.integers(1, 4, n)
    return ["_".join(WORDS[j] for j in rng.integers(0, len(WORDS), kk)) for kk in k]


def test_hash_strings_vectorised_and_chunk_independent(monkeypatch):
    rng = np.random.default_rng(0)
    texts = list(dict.fromkeys(_texts(rng, 3000))) + ["", "a", "ab", "ba"]
    arr = pa.array(texts)
    whole = hash_strings(arr)
    assert len(np.unique(whole)) == len(texts)                     # distinct strings differ
    chunked = hash_strings(pa.chunked_array([arr.slice(0, 7), arr.slice(7, 500),
                                             arr.slice(507)]))
    one_by_one = np.concatenate([hash_strings(pa.array([t])) for t in texts[:50]])
    assert np.array_equal(whole, chunked) and np.array_equal(whole[:50], one_by_one)
    assert np.array_equal(hash_strings(arr.cast(pa.large_string())), whole)
    from symile_data.features import keyhash
    monkeypatch.setattr(keyhash, "PIECE_BYTES", 50)      # hashed in pieces of ~50 bytes
    assert np.array_equal(hash_strings(arr), whole)
    assert np.array_equal(hash_strings(arr.slice(3)), whole[3:])
    assert hash_strings(pa.array([None, ""]))[0] == hash_strings(pa.array([""]))[0]
    order = np.argsort(whole)
    assert np.array_equal(lookup(whole[order], whole[order][::-1]),
                          np.arange(len(texts))[::-1])
    assert (lookup(whole[order], np.array([whole.max() + np.uint64(1)], np.uint64)) == -1).all()
    # the fenced search (blocks of 5 found from every 5th hash) agrees, absent keys included
    q = np.concatenate([whole, hash_strings(pa.array(["not there", "nor this"]))])
    rng.shuffle(q)
    srt = whole[order]
    assert np.array_equal(lookup_fenced(srt, srt[::5], 5, q), lookup(srt, q))


def test_text_tokens_in_parts_equal_one_whole_call(tmp_path, tiny_models, monkeypatch):
    tok = TextTokenizer(tiny_models["text"], None, 8)      # short: some texts are cut
    rng = np.random.default_rng(1)
    rows = _texts(rng, 1500)
    batches = [pa.array(rows[i:i + 37]) for i in range(0, len(rows), 37)]
    rep = encode_texts(tok, iter(batches), len(rows), tmp_path / "t", part_texts=40)
    uniq = sorted(set(rows))
    manifest = read_json(tmp_path / "t" / "manifest.json")
    assert len(manifest["parts"]) >= 8                    # many parts, each < the whole set
    parts = [pq.read_table(tmp_path / "t" / p) for p in manifest["parts"]]
    assert max(p.num_rows for p in parts) < len(uniq)
    table = pa.concat_tables(parts)
    assert rep["unique_items"] == table.num_rows == len(uniq)
    assert sorted(table["text"].to_pylist()) == uniq
    h = hash_strings(table["text"])
    assert (np.diff(h.astype(np.float64)) >= 0).all() and len(np.unique(h)) == len(h)
    ids, trunc = tok.tokenize(table["text"].to_pylist())      # one call over the whole set
    assert table["input_ids"].to_pylist() == ids
    assert table["truncated"].to_pylist() == trunc.tolist() and rep["truncated"] > 0
    assert table.schema.equals(S.text_tokens_schema(), check_metadata=False)
    # the on-disk index gives the same padded rows as padding the whole column
    index = TokenIndex(tmp_path / "t")
    want_ids, want_mask = pad_tokens(table["input_ids"], 6, index.pad_id)
    got_ids, got_mask = index.gather(np.arange(table.num_rows), 6)
    assert np.array_equal(got_ids, want_ids) and np.array_equal(got_mask, want_mask)
    on_disk = np.fromfile(tmp_path / "t" / "index" / "hash.bin", np.uint64)
    assert np.array_equal(lookup(on_disk, h), np.arange(len(h)))
    assert np.array_equal(index.find(h)[0], np.arange(len(h)))
    monkeypatch.setattr(TokenIndex, "PIECE", 7)           # pieces of 7 rows, blocks of 4
    monkeypatch.setattr(TokenIndex, "FENCE", 4)
    small = TokenIndex(tmp_path / "t")
    perm = np.random.default_rng(2).permutation(len(h))
    absent = hash_strings(pa.array(["not a text", "nor this"]))
    found, n_tok = small.find(np.concatenate([h[perm], absent]))
    assert np.array_equal(found, np.r_[perm, -1, -1])
    assert np.array_equal(n_tok, np.r_[table["n_tokens"].to_numpy()[perm], 0, 0])
    got_ids, got_mask = small.gather(perm, 6)
    assert np.array_equal(got_ids, want_ids[perm]) and np.array_equal(got_mask, want_mask[perm])
    # resume: nothing is tokenised again; a part without its marker is redone alone
    again = encode_texts(tok, iter(batches), len(rows), tmp_path / "t", part_texts=40)
    assert again["encoded_this_run"] == 0 and again["skipped_resumed"] == len(uniq)
    (tmp_path / "t" / "part-00002.done.json").unlink()
    redo = encode_texts(tok, iter(batches), len(rows), tmp_path / "t", part_texts=40)
    assert redo["encoded_this_run"] == parts[2].num_rows


def _samples(root, n_train, extra=None, seed=0):
    rng = np.random.default_rng(seed)
    splits = {}
    for split, m in (("train", n_train), ("val", 40), ("test", 30)):
        splits[split] = pa.table({
            "key": [f"{split}-{i:09d}" for i in range(m)], "split": [split] * m,
            "cls_id": pa.array(rng.integers(0, 1000, m), pa.int16()), "synset": ["n0"] * m,
            "lang_id": pa.array(rng.integers(0, 2, m), pa.int8()), "lang": ["en"] * m,
            "target_word": ["dog"] * m, "text": _texts(rng, m),
            "image_key": [f"img{j:03d}" for j in rng.integers(0, 5, m)],
            "audio_key": [f"aud{j:03d}" for j in rng.integers(0, 3, m)],
            "image_missing": rng.random(m) < 0.3, "text_missing": rng.random(m) < 0.3,
            "audio_missing": rng.random(m) < 0.3})
    d = root / "samples" / "symile-m3-2-xs"
    write_parquet_dataset(d, splits, S.m3_samples_schema(), name=d.name, params_hash="t" * 16,
                          spec=ShardSpec(max_rows_per_shard=700, row_group_rows=256),
                          extra=extra)
    return d


def _whole_table_join(root, split, L):
    """The join computed the pre-streaming way: whole tables, index_in, pad_tokens."""
    index = read_json(root / "features" / "index.json")
    tok_dir = root / "features" / index["text"]
    tokens = pa.concat_tables([pq.read_table(tok_dir / p)
                               for p in read_json(tok_dir / "manifest.json")["parts"]])
    t = pa.concat_tables([pq.read_table(f) for f in
                          split_files(root / "samples" / "symile-m3-2-xs", split)])
    cols = {}
    for name, m, key in (("image_feat", "image", "image_key"), ("audio_feat", "audio",
                                                                 "audio_key")):
        ft = read_feature_table(root / "features" / index[m])[0]
        cols[name] = ft["feat"].take(pc.index_in(t[key], value_set=ft["key"]))
    ids, mask = pad_tokens(tokens["input_ids"], L, 1)
    ti = pc.index_in(t["text"], value_set=tokens["text"]).to_numpy()
    cols["text_input_ids"] = pa.FixedSizeListArray.from_arrays(pa.array(ids[ti].ravel()), L)
    cols["text_attention_mask"] = pa.FixedSizeListArray.from_arrays(
        pa.array(mask[ti].ravel()), L)
    for k, v in cols.items():
        t = t.append_column(k, v)
    return t


def _read(d, split):
    return pa.concat_tables([pq.read_table(f) for f in split_files(d, split)])


def test_join_streams_chunks_and_equals_whole_table_join(tmp_path, tiny_models, kit,
                                                         monkeypatch):
    kit.make_media(tmp_path / "media", n_images=6, n_clips=4)
    _samples(tmp_path, 3000, extra={"missing_p": 0.3, "w": 2, "size": "xs", "seed": 0})
    encode_m3(kit.features_cfg(tiny_models), tmp_path / "media" / "m3_images.parquet",
              tmp_path / "media" / "m3_clips.parquet", tmp_path / "samples",
              tmp_path / "features")
    # whole-table sizes: one shard per split, one scan chunk
    big = J.join_m3(tmp_path / "samples", tmp_path / "features", tmp_path / "big",
                    JoinConfig())["datasets"][0]
    # streamed: scan chunks of 97 rows, shards of 250 rows; record every read's size
    reads, takes = [], []
    read, take = J.SplitReader.read, J.FeatureIndex.take
    monkeypatch.setattr(J, "SCAN_ROWS", 97)
    monkeypatch.setattr(J.TokenIndex, "PIECE", 33)           # read pieces of 33 rows
    monkeypatch.setattr(np, "memmap", None)    # never a memory map (resident pages grow)
    monkeypatch.setattr(J.SplitReader, "read",
                        lambda self, a, b: reads.append(b - a) or read(self, a, b))
    monkeypatch.setattr(J.FeatureIndex, "take",
                        lambda self, rows: takes.append(len(rows)) or take(self, rows))
    small = J.join_m3(tmp_path / "samples", tmp_path / "features", tmp_path / "small",
                      JoinConfig(max_rows_per_shard=250, row_group_rows=64))["datasets"][0]
    # never a whole split (2048 = the writer's size probe)
    assert max(reads) <= 2048 < 3000 and max(takes) <= 2048 and sorted(takes)[-3] <= 250
    assert big["text_len"] == small["text_len"] and big["rows"] == small["rows"]
    L = big["text_len"]
    for split in ("train", "val", "test"):
        a = _read(tmp_path / "big" / "symile-m3-2-xs", split)
        b = _read(tmp_path / "small" / "symile-m3-2-xs", split)
        want = _whole_table_join(tmp_path, split, L).cast(a.schema)
        assert a.equals(want) and b.equals(want), split
    assert len(split_files(tmp_path / "small" / "symile-m3-2-xs", "train")) == 12
    assert not list((tmp_path / "small").glob(".join-features.*"))   # the feature cache is removed
    # the training manifest keeps what export needs from the samples manifest
    extra = read_manifest(tmp_path / "small" / "symile-m3-2-xs")["extra"]
    assert extra["missing_p"] == 0.3 and extra["w"] == 2 and extra["size"] == "xs"
    assert extra["samples"]["name"] == "symile-m3-2-xs"
