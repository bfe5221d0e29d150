"""Tiny datasets with the contract column names (ARCHITECTURE.md "Column contracts")."""
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.schema import xor_schema

os.environ.setdefault("SYMILE_DATA_PROGRESS", "off")
torch.set_num_threads(1)

SPEC = ShardSpec(max_rows_per_shard=7, row_group_rows=3)   # several shards and row groups


def fsl(values: np.ndarray, dtype: pa.DataType) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), type=dtype),
                                             values.shape[1])


def xor_table(n: int, split: str, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, (2, n, 5)).astype(np.int8)
    i = rng.integers(0, 2, n).astype(np.int8)
    c = np.where(i[:, None] == 1, a ^ b, a).astype(np.int8)
    return pa.table({"key": [f"xor-{split}-{k}" for k in range(n)], "split": [split] * n,
                     "a": fsl(a, pa.int8()), "b": fsl(b, pa.int8()), "c": fsl(c, pa.int8()),
                     "i": pa.array(i)})


@pytest.fixture
def xor_root(tmp_path):
    root = tmp_path / "xor"
    for j, p in enumerate(["p0.2", "p1.0"]):
        write_parquet_dataset(root / p, {"train": xor_table(20, "train", j),
                                         "test": xor_table(8, "test", 10 + j)},
                              xor_schema(), name=f"xor-{p}", params_hash=f"h{j}", spec=SPEC,
                              extra={"params": {"p": float(p[1:]), "seed": 0}})
    return root


# ------------------------------------------------------------------ M3 training shards
M3_DIMS = {"img": 8, "aud": 6, "L": 7}


def m3_schema(d=M3_DIMS) -> pa.Schema:
    return pa.schema([
        ("key", pa.string()), ("split", pa.string()), ("cls_id", pa.int16()),
        ("synset", pa.string()), ("lang_id", pa.int8()), ("lang", pa.string()),
        ("target_word", pa.string()), ("text", pa.string()), ("image_key", pa.string()),
        ("audio_key", pa.string()), ("image_missing", pa.bool_()),
        ("text_missing", pa.bool_()), ("audio_missing", pa.bool_()),
        ("image_feat", pa.list_(pa.float16(), d["img"])),
        ("audio_feat", pa.list_(pa.float16(), d["aud"])),
        ("text_input_ids", pa.list_(pa.int32(), d["L"])),
        ("text_attention_mask", pa.list_(pa.int8(), d["L"]))])


def m3_table(n: int, split: str, seed: int, p_missing: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    d = M3_DIMS
    langs = np.array(["en", "el"])
    lang_id = rng.integers(0, 2, n)
    cls_id = rng.integers(0, 1000, n)
    miss = (rng.random((3, n)) < p_missing) if split != "test" else np.zeros((3, n), bool)
    return pa.table({
        "key": [f"m3-{split}-{k:04d}" for k in range(n)], "split": [split] * n,
        "cls_id": pa.array(cls_id.astype(np.int16)),
        "synset": [f"n{c:08d}" for c in cls_id], "lang_id": pa.array(lang_id.astype(np.int8)),
        "lang": list(langs[lang_id]), "target_word": [f"w{c}" for c in cls_id],
        "text": [f"w{c}_μ{k} x" for k, c in enumerate(cls_id)],
        "image_key": [f"i{k}" for k in range(n)], "audio_key": [f"a{k}" for k in range(n)],
        "image_missing": pa.array(miss[0]), "text_missing": pa.array(miss[1]),
        "audio_missing": pa.array(miss[2]),
        "image_feat": fsl(rng.standard_normal((n, d["img"])).astype(np.float16), pa.float16()),
        "audio_feat": fsl(rng.standard_normal((n, d["aud"])).astype(np.float16), pa.float16()),
        "text_input_ids": fsl(rng.integers(0, 250_002, (n, d["L"])).astype(np.int32),
                              pa.int32()),
        "text_attention_mask": fsl(rng.integers(0, 2, (n, d["L"])).astype(np.int8), pa.int8()),
    })


def m3_features_extra(root: Path, text_hidden: int = 12) -> dict:
    """``extra.features`` as the join records it (encoder identities); the text model is a
    local directory holding only a config (what export-reference reads its hidden size from)."""
    from transformers import XLMRobertaConfig
    text = root / "text-model"
    if not (text / "config.json").exists():
        XLMRobertaConfig(hidden_size=text_hidden, num_attention_heads=2).save_pretrained(text)
    ident = lambda m, model: {"modality": m, "model": model, "revision": "r",  # noqa: E731
                              "preprocessing": {}, "dtype": "float16"}
    return {"image": ident("image", "openai/clip-vit-large-patch14"),
            "audio": ident("audio", "openai/whisper-large-v3"), "text": ident("text", str(text))}


@pytest.fixture
def m3_dir(tmp_path):
    def make(p_missing=0.0, extra=None, name="m3"):
        d = tmp_path / name
        extra = {"seed": 0, **(extra or {}), "features": m3_features_extra(tmp_path)}
        write_parquet_dataset(d, {"train": m3_table(17, "train", 0, p_missing),
                                  "val": m3_table(9, "val", 1, p_missing),
                                  "test": m3_table(8, "test", 2)},
                              m3_schema(), name="symile-m3-2-tiny", params_hash="m3h", spec=SPEC,
                              extra=extra)
        return d
    return make


# ------------------------------------------------------------------ MIMIC samples + retrieval
def mimic_schema(side: int, t: int, labs: int) -> pa.Schema:
    return pa.schema([
        ("key", pa.string()), ("subject_id", pa.int64()), ("hadm_id", pa.int64()),
        ("split", pa.string()), ("ecg", pa.list_(pa.float32(), t * 12)),
        ("cxr", pa.list_(pa.uint8(), side * side)),
        ("labs_percentiles", pa.list_(pa.float32(), labs)),
        ("labs_observed", pa.list_(pa.int8(), labs))])


RETRIEVAL_SCHEMA = pa.schema([("split", pa.string()), ("query_hadm_id", pa.int64()),
                              ("candidate_hadm_ids", pa.list_(pa.int64(), 10)),
                              ("label", pa.int8())])


def mimic_samples(n: int, split: str, start: int, rng, side: int, t: int, labs: int) -> pa.Table:
    hadm = np.arange(start, start + n, dtype=np.int64) * 7 + 20_000_000
    return pa.table({
        "key": [str(h) for h in hadm], "subject_id": pa.array(hadm // 7),
        "hadm_id": pa.array(hadm), "split": [split] * n,
        "ecg": fsl(rng.uniform(-1, 1, (n, t * 12)).astype(np.float32), pa.float32()),
        "cxr": fsl(rng.integers(0, 256, (n, side * side)).astype(np.uint8), pa.uint8()),
        "labs_percentiles": fsl(rng.random((n, labs)).astype(np.float32), pa.float32()),
        "labs_observed": fsl(rng.integers(0, 2, (n, labs)).astype(np.int8), pa.int8())})


def retrieval_table(samples: pa.Table, split: str, rng) -> pa.Table:
    ids = samples.column("hadm_id").to_numpy()
    q = len(ids)
    cands, labels = [], []
    for i in range(q):   # tiny fixture: per-row Python is fine here
        neg = rng.choice(np.delete(ids, i), 9, replace=False)
        lab = int(rng.integers(0, 10))
        cands.append(np.insert(neg, lab, ids[i]))
        labels.append(lab)
    return pa.table({"split": [split] * q, "query_hadm_id": pa.array(ids),
                     "candidate_hadm_ids": fsl(np.array(cands, np.int64), pa.int64()),
                     "label": pa.array(np.array(labels, np.int8))})


@pytest.fixture
def mimic_root(tmp_path):
    def make(side=4, t=3, labs=5, sizes=(9, 11, 12), name="mimic"):
        rng = np.random.default_rng(0)
        root = tmp_path / name
        splits, start = {}, 0
        for split, n in zip(("train", "val", "test"), sizes):
            splits[split] = mimic_samples(n, split, start, rng, side, t, labs)
            start += n
        flags = {"mimic_derived": True}
        write_parquet_dataset(root / "samples", splits, mimic_schema(side, t, labs),
                              name="symile-mimic-tiny", params_hash="mh", spec=SPEC, flags=flags)
        write_parquet_dataset(root / "retrieval",
                              {s: retrieval_table(splits[s], s, rng) for s in ("val", "test")},
                              RETRIEVAL_SCHEMA, name="symile-mimic-tiny-retrieval",
                              params_hash="mh", spec=SPEC, flags=flags)
        return root, splits
    return make
