"""Join M3 samples with feature tables into M3 training shards (schema ``m3_train``).

Exact join by key, vectorised: for each split the row -> feature-row indices are computed
once (``pc.index_in`` on image_key / audio_key / text), and each shard's rows are built lazily
in ``take_range`` (arrow ``take`` on fixed_size_list columns, numpy for tokens), so only one
shard of joined rows is in memory.

Missing modalities (image_missing etc.) keep the REAL feature here; the training side
replaces it with its missing input. A sample whose image or clip failed to encode (or whose
key has no feature row) is an error naming the dataset, split and keys, or with
``on_missing_feature: drop`` is dropped and listed in the report.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from symile_data import schema as S
from symile_data.config import params_hash
from symile_data.features.config import JoinConfig
from symile_data.features.m3 import read_samples, sample_datasets
from symile_data.features.tables import read_feature_table
from symile_data.features.text import pad_tokens
from symile_data.io.atomic import atomic_write_json, read_json
from symile_data.io.card import write_root_card
from symile_data.io.manifest import read_manifest
from symile_data.io.parquet import ShardSpec, write_parquet_dataset

log = logging.getLogger(__name__)


class Features:
    """The three tables of one feature run (``index.json`` under the features root)."""

    def __init__(self, root: str | Path):
        root = Path(root)
        if not (root / "index.json").exists():
            raise FileNotFoundError(f"{root}: no index.json (run `symile-data features encode`)")
        index = read_json(root / "index.json")
        self.image, self.image_manifest = read_feature_table(root / index["image"])
        self.audio, self.audio_manifest = read_feature_table(root / index["audio"])
        tdir = root / index["text"]
        self.tokens = pq.read_table(tdir / "tokens.parquet")
        self.text_manifest = read_json(tdir / "manifest.json")
        self.dtype = self.image_manifest["identity"]["dtype"]
        self.encoder_ids = {m: index[m].split("/")[-1] for m in ("image", "audio", "text")}


def _lookup(values: pa.ChunkedArray, table: pa.Table, key: str) -> np.ndarray:
    """Row index of each value in ``table[key]``, -1 when absent or status != ok."""
    idx = pc.index_in(values, value_set=table[key]).to_numpy(zero_copy_only=False)
    idx = np.where(np.isnan(idx.astype(np.float64)), -1, idx).astype(np.int64)
    if "status" in table.column_names:
        ok = pc.equal(table["status"], "ok").to_numpy(zero_copy_only=False)
        idx = np.where((idx >= 0) & ok[np.maximum(idx, 0)], idx, -1)
    return idx


class TrainRows:
    """RowSource of one split: samples + features; rows with a missing feature removed."""

    def __init__(self, samples: pa.Table, feats: Features, ids: np.ndarray, mask: np.ndarray,
                 img_idx: np.ndarray, aud_idx: np.ndarray, txt_idx: np.ndarray):
        self.samples, self.f = samples, feats
        self.ids, self.mask = ids, mask               # (n_unique_texts, L)
        self.img_idx, self.aud_idx, self.txt_idx = img_idx, aud_idx, txt_idx
        self.num_rows = samples.num_rows

    def take_range(self, start: int, stop: int) -> pa.Table:
        rows = self.samples.slice(start, stop - start)
        ti = self.txt_idx[start:stop]
        L = self.ids.shape[1]
        cols = {
            "image_feat": self.f.image["feat"].take(pa.array(self.img_idx[start:stop])),
            "audio_feat": self.f.audio["feat"].take(pa.array(self.aud_idx[start:stop])),
            "text_input_ids": pa.FixedSizeListArray.from_arrays(
                pa.array(self.ids[ti].reshape(-1)), L),
            "text_attention_mask": pa.FixedSizeListArray.from_arrays(
                pa.array(self.mask[ti].reshape(-1)), L),
        }
        for name, col in cols.items():
            rows = rows.append_column(name, col)
        return rows


def _split_rows(name: str, split: str, t: pa.Table, feats: Features, cfg: JoinConfig,
                report: dict) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    img = _lookup(t["image_key"], feats.image, "key")
    aud = _lookup(t["audio_key"], feats.audio, "key")
    txt = _lookup(t["text"], feats.tokens, "text")
    bad = (img < 0) | (aud < 0) | (txt < 0)
    if bad.any():
        keys = t["key"].filter(pa.array(bad)).to_pylist()[:10]
        reasons = {"image": int((img < 0).sum()), "audio": int((aud < 0).sum()),
                   "text": int((txt < 0).sum())}
        msg = (f"{name}/{split}: {int(bad.sum())} sample(s) without an ok feature "
               f"({reasons}); first keys {keys}")
        if cfg.on_missing_feature == "error":
            raise ValueError(msg + " (see the feature tables' status/error columns, or set "
                             "m3_shards.on_missing_feature: drop)")
        log.warning("%s; dropped", msg)
        report.setdefault("dropped", {})[split] = {"rows": int(bad.sum()), **reasons,
                                                   "first_keys": keys}
        keep = pa.array(~bad)
        t, img, aud, txt = t.filter(keep), img[~bad], aud[~bad], txt[~bad]
    return t, img, aud, txt


def join_dataset(dataset_dir: Path, feats: Features, out_dir: Path, cfg: JoinConfig) -> dict:
    name = dataset_dir.name
    src_manifest = read_manifest(dataset_dir)
    splits = read_samples(dataset_dir, S.m3_samples_schema().names)
    report: dict = {"dataset": name}
    prepared = {s: _split_rows(name, s, t, feats, cfg, report) for s, t in splits.items()}
    n_tok = feats.tokens["n_tokens"].to_numpy()
    if cfg.text_length == "fixed":
        L = cfg.text_fixed_length
        per_split = {s: L for s in prepared}
    else:  # reference: each split padded to its longest text; one schema per dataset -> max
        per_split = {s: int(n_tok[p[3]].max()) if len(p[3]) else 3 for s, p in prepared.items()}
        L = max(per_split.values())
    ids, mask = pad_tokens(feats.tokens["input_ids"], L, int(feats.text_manifest["pad_id"]))
    d_img = feats.image_manifest["dim"]
    d_aud = feats.audio_manifest["dim"]
    schema = S.m3_train_schema(d_img, d_aud, L, feats.dtype)
    sources = {s: TrainRows(t, feats, ids, mask, img, aud, txt)
               for s, (t, img, aud, txt) in prepared.items()}
    h = params_hash(cfg, {"features": feats.encoder_ids,
                          "samples_params_hash": src_manifest.get("params_hash"), "L": L})
    spec = ShardSpec.from_config(cfg)
    extra = {"features": {"image": feats.image_manifest["identity"],
                          "audio": feats.audio_manifest["identity"],
                          "text": feats.text_manifest["identity"]},
             "text_length_mode": cfg.text_length, "text_max_len_per_split": per_split,
             "missing_modalities": "image/audio/text_missing rows carry the real feature; "
                                   "the training side replaces it",
             "samples": {"name": src_manifest.get("name"),
                         "params_hash": src_manifest.get("params_hash")}}
    write_parquet_dataset(out_dir / name, sources, schema, name=name, params_hash=h, spec=spec,
                          flags=src_manifest.get("flags"), extra=extra)
    report.update({"rows": {s: src.num_rows for s, src in sources.items()}, "text_len": L,
                   "text_max_len_per_split": per_split, "dims": [d_img, d_aud]})
    return report


def join_m3(samples: str | Path, features: str | Path, out: str | Path, cfg: JoinConfig) -> dict:
    """Write one training dataset per sample dataset under ``samples``; report to out/."""
    out = Path(out)
    feats = Features(features)
    reports = [join_dataset(d, feats, out, cfg) for d in sample_datasets(samples)]
    atomic_write_json(out / "report.json", {"datasets": reports})
    write_root_card(out, "Symile-M3 training shards (samples + features)")
    return {"datasets": reports}
