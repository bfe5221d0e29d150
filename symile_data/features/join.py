"""Join M3 samples with feature tables into M3 training shards (schema ``m3_train``).

Exact join by key, streamed per shard chunk: nothing of the size of a split or of a feature
table is held in memory.
- image / audio features: each table's parts are copied once into a flat file (``{out}/.join-features.<pid>.tmp/``,
  removed at the end); keys are looked up by their 64-bit hash in a sorted array
  (``searchsorted``; 8 B per unique item) and checked against the key itself.
- text tokens: the text table's on-disk index (``features/text.py``: hash-sorted texts, flat
  ids + offsets); ids are padded per chunk.
- samples: read per chunk from the sample shards' row groups.
Each split is scanned once (missing features, longest text), then written shard by shard with
``write_parquet_dataset`` (``take_range`` builds one shard's rows). Feature rows and tokens are
read with positional reads (``io/pread.py``) per piece of 8k rows (``TokenIndex.PIECE``), never
memory-mapped: the join holds a piece's rows, not pages of the files (a memory map held up to
64 KB per random lookup, growing with the index: measured in ``bench/token_index.py``).

Missing modalities (image_missing etc.) keep the REAL feature here; the training side
replaces it with its missing input. A sample whose image or clip failed to encode (or whose
key has no feature row) is an error naming the dataset, split and keys, or with
``on_missing_feature: drop`` is dropped and listed in the report.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from symile_data import schema as S
from symile_data.config import params_hash
from symile_data.features.config import JoinConfig
from symile_data.features.keyhash import check_unique, hash_strings, lookup
from symile_data.features.m3 import sample_datasets
from symile_data.features.text import TokenIndex
from symile_data.io import fingerprint
from symile_data.io.atomic import atomic_write_json, read_json, scratch_dir
from symile_data.io.lock import remove_stale_tmp
from symile_data.io.card import write_root_card
from symile_data.io.manifest import read_manifest
from symile_data.io.openfile import parquet_file, read_parquet
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.pread import check_rows, read_rows
from symile_data.io.reader import split_files

log = logging.getLogger(__name__)
SCAN_ROWS = 65_536   # rows per chunk of the scan pass (the write pass uses shard ranges)
# samples-manifest keys copied into the training manifest (export, cards, missingness)
SAMPLE_EXTRA = ("missing_p", "w", "size", "languages", "classes", "seed")


class FeatureIndex:
    """One image/audio feature table: key -> row by sorted hash, row -> feature by pread."""

    def __init__(self, table_dir: Path, cache: Path):
        self.manifest = read_json(table_dir / "manifest.json")
        self.dim = int(self.manifest["dim"])
        self.dtype = np.float16 if self.manifest["identity"]["dtype"] == "float16" \
            else np.float32
        self.path = cache / f"{table_dir.parent.name}-{table_dir.name}.bin"
        keys, ok = [], []
        with open(self.path, "wb") as f:
            for part in self.manifest["parts"]:
                t = read_parquet(table_dir / part, columns=["key", "status", "feat"])
                keys.append(t["key"].combine_chunks().cast(pa.string()))
                ok.append(pc.equal(t["status"], "ok").to_numpy(zero_copy_only=False))
                for c in t["feat"].chunks:   # raw values buffer (null rows: ignored bytes)
                    vals = np.frombuffer(c.values.buffers()[1], self.dtype)
                    lo = (c.values.offset + c.offset * self.dim)
                    f.write(vals[lo:lo + len(c) * self.dim].tobytes())
        self.keys = pa.concat_arrays(keys) if keys else pa.array([], pa.string())
        self.ok = np.concatenate(ok) if ok else np.zeros(0, bool)
        h = hash_strings(self.keys)
        self.order = np.argsort(h, kind="stable")
        self.hash = h[self.order]
        check_unique(self.hash, self.keys.take(pa.array(self.order)), str(table_dir))

    def rows(self, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Table row of each key, -1 when absent or not ok."""
        pos = lookup(self.hash, hash_strings(keys))
        row = np.where(pos >= 0, self.order[np.maximum(pos, 0)], -1)
        if len(self.keys):
            same = pc.equal(self.keys.take(pa.array(np.maximum(row, 0))), keys)
            row[~same.to_numpy(zero_copy_only=False)] = -1
            row[~self.ok[np.maximum(row, 0)]] = -1
        return row

    def take(self, rows: np.ndarray) -> pa.FixedSizeListArray:
        """(n, D) features of table rows as a fixed_size_list column (positional reads per
        piece of rows: holds the piece's rows only, never pages of the table)."""
        rows = check_rows(rows, len(self.keys), self.path, "feature row")
        vals = np.empty((len(rows), self.dim), self.dtype)
        k = TokenIndex.PIECE
        for lo in range(0, len(rows), k):
            vals[lo:lo + k] = read_rows(self.path, rows[lo:lo + k], self.dtype, self.dim)
        return pa.FixedSizeListArray.from_arrays(pa.array(vals.reshape(-1)), self.dim)


class Features:
    """The three tables of one feature run (``index.json`` under the features root)."""

    def __init__(self, root: str | Path, cache: Path):
        root = Path(root)
        if not (root / "index.json").exists():
            raise FileNotFoundError(f"{root}: no index.json (run `symile-data features encode`)")
        index = read_json(root / "index.json")
        self.image = FeatureIndex(root / index["image"], cache)
        self.audio = FeatureIndex(root / index["audio"], cache)
        self.image_manifest, self.audio_manifest = self.image.manifest, self.audio.manifest
        tdir = root / index["text"]
        self.text_manifest = read_json(tdir / "manifest.json")
        if "index" not in self.text_manifest:
            raise FileNotFoundError(f"{tdir}: text table without a lookup index (written by an "
                                    "older version; rerun `symile-data features encode`)")
        self.tokens = TokenIndex(tdir)
        self.dtype = self.image_manifest["identity"]["dtype"]
        self.encoder_ids = {m: index[m].split("/")[-1] for m in ("image", "audio", "text")}
        # content identity of the three tables (their parts' sizes + hashes), for the shards'
        # fingerprint: the encoder ids alone do not change when the items do
        self.identity = {m: fingerprint.files_identity(root / index[m], mf["parts"])
                         for m, mf in (("image", self.image_manifest),
                                       ("audio", self.audio_manifest),
                                       ("text", self.text_manifest))}

    def lookup(self, t: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(image rows, audio rows, text rows, n_tokens) of sample rows ``t``; -1 = missing."""
        txt, n_tok = self.tokens.find(hash_strings(t["text"]))
        return self.image.rows(t["image_key"]), self.audio.rows(t["audio_key"]), txt, n_tok


class SplitReader:
    """Row ranges of one split of a sample dataset, read from the shards' row groups."""

    def __init__(self, dataset_dir: Path, split: str, columns: list[str]):
        self.columns = columns
        self.groups: list[tuple[Path, int, int]] = []      # (file, row group, first row)
        n = 0
        for f in split_files(dataset_dir, split):
            meta = parquet_file(f).metadata
            for g in range(meta.num_row_groups):
                self.groups.append((f, g, n))
                n += meta.row_group(g).num_rows
        self.num_rows = n
        self.starts = np.array([g[2] for g in self.groups] + [n], np.int64)

    def read(self, start: int, stop: int) -> pa.Table:
        lo = max(0, int(np.searchsorted(self.starts, start, "right")) - 1)
        hi = int(np.searchsorted(self.starts, stop, "left"))
        parts = [parquet_file(f).read_row_group(g, columns=self.columns)
                 for f, g, _ in self.groups[lo:max(hi, lo + 1)]]
        t = pa.concat_tables(parts) if parts else pa.table({})
        return t.slice(start - int(self.starts[lo]), stop - start)

    def chunks(self, rows: int) -> Iterator[tuple[int, pa.Table]]:
        for s in range(0, self.num_rows, rows):
            yield s, self.read(s, min(self.num_rows, s + rows))


class TrainRows:
    """RowSource of one split: samples + features per chunk; dropped rows skipped."""

    def __init__(self, reader: SplitReader, feats: Features, keep: np.ndarray | None,
                 length: int):
        self.reader, self.f, self.keep, self.L = reader, feats, keep, length
        self.num_rows = reader.num_rows if keep is None else len(keep)

    def take_range(self, start: int, stop: int) -> pa.Table:
        if self.keep is None:
            rows = self.reader.read(start, stop)
        else:
            src = self.keep[start:stop]
            lo = int(src[0]) if len(src) else 0
            rows = self.reader.read(lo, int(src[-1]) + 1 if len(src) else 0)
            rows = rows.take(pa.array(src - lo))
        img, aud, txt, _ = self.f.lookup(rows)
        ids, mask = self.f.tokens.gather(txt, self.L)
        cols = {
            "image_feat": self.f.image.take(img),
            "audio_feat": self.f.audio.take(aud),
            "text_input_ids": pa.FixedSizeListArray.from_arrays(pa.array(ids.reshape(-1)),
                                                                self.L),
            "text_attention_mask": pa.FixedSizeListArray.from_arrays(
                pa.array(mask.reshape(-1)), self.L),
        }
        for name, col in cols.items():
            rows = rows.append_column(name, col)
        return rows


def _scan_split(name: str, split: str, reader: SplitReader, feats: Features, cfg: JoinConfig,
                report: dict) -> tuple[np.ndarray | None, int]:
    """One pass over a split: (kept rows or None = all, longest kept text in tokens)."""
    bad_rows, reasons, first_keys, longest = [], {"image": 0, "audio": 0, "text": 0}, [], 0
    for s, t in reader.chunks(SCAN_ROWS):
        img, aud, txt, n_tok = feats.lookup(t)
        bad = (img < 0) | (aud < 0) | (txt < 0)
        longest = max(longest, int(n_tok[~bad].max()) if (~bad).any() else 0)
        if bad.any():
            for k, v in (("image", img), ("audio", aud), ("text", txt)):
                reasons[k] += int((v < 0).sum())
            bad_rows.append(s + np.flatnonzero(bad))
            if len(first_keys) < 10:
                first_keys += t["key"].filter(pa.array(bad)).to_pylist()[:10 - len(first_keys)]
    if not bad_rows:
        return None, longest or 3
    bad = np.concatenate(bad_rows)
    msg = (f"{name}/{split}: {len(bad)} sample(s) without an ok feature "
           f"({reasons}); first keys {first_keys}")
    if cfg.on_missing_feature == "error":
        raise ValueError(msg + " (see the feature tables' status/error columns, or set "
                         "m3_shards.on_missing_feature: drop)")
    log.warning("%s; dropped", msg)
    report.setdefault("dropped", {})[split] = {"rows": int(len(bad)), **reasons,
                                               "first_keys": first_keys}
    keep = np.setdiff1d(np.arange(reader.num_rows, dtype=np.int64), bad, assume_unique=True)
    return keep, longest or 3


def join_dataset(dataset_dir: Path, feats: Features, out_dir: Path, cfg: JoinConfig) -> dict:
    name = dataset_dir.name
    src_manifest = read_manifest(dataset_dir)
    columns = S.m3_samples_schema().names
    report: dict = {"dataset": name}
    readers = {s: SplitReader(dataset_dir, s, columns) for s in src_manifest["splits"]}
    scanned = {s: _scan_split(name, s, r, feats, cfg, report) for s, r in readers.items()}
    if cfg.text_length == "fixed":
        L = cfg.text_fixed_length
        per_split = {s: L for s in scanned}
    else:  # reference: each split padded to its longest text; one schema per dataset -> max
        per_split = {s: longest for s, (_, longest) in scanned.items()}
        L = max(per_split.values())
    d_img, d_aud = feats.image.dim, feats.audio.dim
    schema = S.m3_train_schema(d_img, d_aud, L, feats.dtype)
    sources = {s: TrainRows(readers[s], feats, keep, L) for s, (keep, _) in scanned.items()}
    h = params_hash(cfg, {"features": feats.encoder_ids,
                          "samples_params_hash": src_manifest.get("params_hash"), "L": L})
    spec = ShardSpec.from_config(cfg)
    src_extra = src_manifest.get("extra", {})
    extra = {"features": {"image": feats.image_manifest["identity"],
                          "audio": feats.audio_manifest["identity"],
                          "text": feats.text_manifest["identity"]},
             "text_length_mode": cfg.text_length, "text_max_len_per_split": per_split,
             "missing_modalities": "image/audio/text_missing rows carry the real feature; "
                                   "the training side replaces it",
             **{k: src_extra[k] for k in SAMPLE_EXTRA if k in src_extra},
             "samples": {"name": src_manifest.get("name"),
                         "params_hash": src_manifest.get("params_hash"),
                         "params": src_extra.get("params")}}
    fp = fingerprint.make("m3-train-shards", params={"params_hash": h}, inputs={
        "samples": fingerprint.dataset_identity(dataset_dir), "features": feats.identity})
    write_parquet_dataset(out_dir / name, sources, schema, name=name, params_hash=h, spec=spec,
                          flags=src_manifest.get("flags"), extra=extra, fingerprint=fp)
    report.update({"rows": {s: src.num_rows for s, src in sources.items()}, "text_len": L,
                   "text_max_len_per_split": per_split, "dims": [d_img, d_aud]})
    return report


def join_m3(samples: str | Path, features: str | Path, out: str | Path, cfg: JoinConfig) -> dict:
    """Write one training dataset per sample dataset under ``samples``; report to out/."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)        # a killed run's feature copies (its scratch folder)
    with scratch_dir(out, "join-features") as cache:
        feats = Features(features, cache)
        reports = [join_dataset(d, feats, out, cfg) for d in sample_datasets(samples)]
    atomic_write_json(out / "report.json", {"datasets": reports})
    write_root_card(out, "Symile-M3 training shards (samples + features)")
    return {"datasets": reports}
