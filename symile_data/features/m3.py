"""Feature stage for Symile-M3: encode every unique image, clip and text once.

Inputs: the M3 builder's unique-media tables ``m3_images`` (image_key, path relative to the
table's directory, status) and ``m3_clips`` (audio_key, path, status), and the sample datasets
(``m3_samples``) under a root, one dir per config (``symile-m3-{w}-{size}/``).
Output root::

    {out}/image/{encoder_id}/   {out}/audio/{encoder_id}/   {out}/text/{encoder_id}/
    {out}/index.json   which table each modality uses (read by the join)
    {out}/report.json  counts, failures, dedup factor (sample rows / unique items); seconds,
                       items/s and resume counts go to the run log (symile_data.runlog)
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from symile_data.features.config import FeaturesConfig
from symile_data.features.encoders import build_encoder
from symile_data.features.tables import encode_items
from symile_data.features.text import TextTokenizer, encode_texts, unique_texts
from symile_data.io.atomic import atomic_write_json
from symile_data.io.manifest import read_manifest
from symile_data.io.reader import split_files
from symile_data.runlog import write_report_and_facts

log = logging.getLogger(__name__)


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{path}: no parquet file (expected a media table or a dir)")
    return files


def load_media(path: str | Path, key_col: str, path_col: str = "path"
               ) -> tuple[list[str], list, list[str]]:
    """Unique-media table -> (sorted unique keys, absolute file path per key, upstream error).

    upstream error is "" for status "ok", else "upstream {status}: {error}". ``path_col``:
    ``path`` (the stored copy, relative to the table's directory) or ``source_path`` (the
    original file, relative to the working directory the images stage ran in).
    """
    path = Path(path)
    parts = []
    for f in _parquet_files(path):
        t = pq.read_table(f)
        missing = {key_col, path_col, "status"} - set(t.column_names)
        if missing:
            raise ValueError(f"{f}: media table lacks column(s) {sorted(missing)}")
        if path_col != "path":
            t = t.drop_columns(["path"]).rename_columns(
                ["path" if c == path_col else c for c in t.drop_columns(["path"]).column_names])
        base = (str(f.parent) if path_col == "path" else str(Path.cwd())) + "/"
        err = t["error"] if "error" in t.column_names else pa.nulls(t.num_rows, pa.string())
        parts.append(pa.table({
            "key": t[key_col].cast(pa.string()),
            # relative paths are relative to the table's directory
            "path": pc.if_else(pc.starts_with(pc.fill_null(t["path"], ""), "/"),
                               t["path"], pc.binary_join_element_wise(base, t["path"], "")),
            "status": t["status"].cast(pa.string()),
            "error": pc.fill_null(err.cast(pa.string()), ""),
        }))
    t = pa.concat_tables(parts).sort_by("key")
    # one row per key (first after sort; a key is a content hash so duplicates are equal)
    keys = t["key"].to_numpy(zero_copy_only=False)
    first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if len(keys) \
        else np.zeros(0, np.int64)
    t = t.take(pa.array(first))
    ok = pc.equal(t["status"], "ok")
    no_path = pc.is_null(t["path"])
    upstream = pc.if_else(ok, pc.if_else(no_path, "upstream ok but path is null", ""),
                          pc.binary_join_element_wise("upstream ", t["status"], ": ",
                                                      t["error"], ""))
    return (t["key"].to_pylist(), t["path"].to_pylist(), upstream.to_pylist())


def sample_datasets(root: str | Path) -> list[Path]:
    """m3_samples Parquet dataset dirs at ``root`` or one level below, sorted by name."""
    root = Path(root)
    if (root / "manifest.json").exists():
        return [root]
    dirs = sorted(d for d in root.iterdir() if (d / "manifest.json").exists()
                  and read_manifest(d).get("format") == "parquet"  # skip e.g. a wds/ export
                  and read_manifest(d).get("schema") == "m3_samples") if root.is_dir() else []
    if not dirs:
        raise FileNotFoundError(f"{root}: no sample dataset (dir with manifest.json) found")
    return dirs


def read_split(dataset_dir: Path, split: str, columns: list[str] | None = None) -> pa.Table:
    files = split_files(dataset_dir, split)
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def read_samples(dataset_dir: Path, columns: list[str] | None = None) -> dict[str, pa.Table]:
    splits = read_manifest(dataset_dir)["splits"]
    return {s: read_split(dataset_dir, s, columns) for s in splits}


def _dedup(col_tables: list[pa.Table], col: str) -> dict:
    rows = sum(t.num_rows for t in col_tables)
    if not rows:
        return {"rows": 0, "unique": 0, "dedup_factor": None}
    uniq = len(pc.unique(pa.chunked_array([c for t in col_tables for c in t[col].chunks])))
    return {"rows": rows, "unique": uniq, "dedup_factor": round(rows / uniq, 3)}


def encode_m3(cfg: FeaturesConfig, images: str | Path, clips: str | Path,
              samples: str | Path, out: str | Path) -> dict:
    """Encode unique images, clips and texts of every sample dataset under ``samples``."""
    out = Path(out)
    datasets = sample_datasets(samples)
    tables = [t for d in datasets
              for t in read_samples(d, ["image_key", "audio_key", "text"]).values()]
    common = dict(device=cfg.device, amp=cfg.amp, dtype=cfg.dtype)
    reports, index = {}, {}
    for modality, path, key_col, model, rev, bs in (
            ("image", images, "image_key", cfg.image_model, cfg.image_revision,
             cfg.batch_size_image),
            ("audio", clips, "audio_key", cfg.audio_model, cfg.audio_revision,
             cfg.batch_size_audio)):
        src = "source_path" if modality == "image" and cfg.image_source == "source" else "path"
        keys, payloads, upstream = load_media(path, key_col, src)
        enc = build_encoder(modality, model, rev, pooling=cfg.audio_pooling,
                            image_source=cfg.image_source, image_processor=cfg.image_processor,
                            **common)
        eid = enc.identity.encoder_id()
        rep = encode_items(enc, keys, payloads, upstream, out / modality / eid,
                           batch_size=bs, num_workers=cfg.num_workers,
                           items_per_part=cfg.items_per_part)
        referenced = pa.chunked_array([c for t in tables for c in t[key_col].chunks])
        rep["referenced_not_in_media_table"] = int(pc.sum(pc.invert(
            pc.is_in(pc.unique(referenced), value_set=pa.array(keys, pa.string())))).as_py() or 0)
        rep.update(_dedup(tables, key_col))
        reports[modality], index[modality] = rep, f"{modality}/{eid}"
        del enc
    tok = TextTokenizer(cfg.text_model, cfg.text_revision, cfg.text_max_length)
    eid = tok.identity.encoder_id()
    rep = encode_texts(tok, unique_texts(tables), out / "text" / eid)
    rep.update(_dedup(tables, "text"))
    reports["text"], index["text"] = rep, f"text/{eid}"
    write_report_and_facts(out, {"datasets": [d.name for d in datasets],  # rates -> logs/
                                 "modalities": reports})
    atomic_write_json(out / "index.json", index)  # written last: the stage's done marker
    for m, r in reports.items():
        log.info("%s: %s unique (%s failed), dedup x%s, %s items/s", m, r["unique_items"],
                 r["failed"], r["dedup_factor"], r["items_per_s"])
    return {"datasets": [d.name for d in datasets], "modalities": reports}
