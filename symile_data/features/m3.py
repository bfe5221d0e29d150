"""Feature stage for Symile-M3: encode every unique image, clip and text once.

Inputs: the M3 builder's unique-media tables ``m3_images`` (image_key, path relative to the
table's directory, status) and ``m3_clips`` (audio_key, path, status), and the sample datasets
(``m3_samples``) under a root, one dir per config (``symile-m3-{w}-{size}/``).
Output root::

    {out}/image/{encoder_id}/   {out}/audio/{encoder_id}/   {out}/text/{encoder_id}/
    {out}/index.json   which table each modality uses (read by the join)
    {out}/report.json  counts, failures, dedup factor (sample rows / unique items); seconds,
                       items/s and resume counts go to the run log (symile_data.runlog)

Only items that some sample uses are encoded (a media table may hold more). Sample columns are
streamed batch by batch; memory holds the distinct image/clip keys, never all rows.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from symile_data.features.config import FeaturesConfig
from symile_data.features.encoders import build_encoder
from symile_data.features.tables import encode_items
from symile_data.features.text import TextTokenizer, encode_texts
from symile_data.io.atomic import atomic_write_json
from symile_data.io.manifest import read_manifest
from symile_data.io.openfile import parquet_file, read_parquet
from symile_data.io.reader import split_files
from symile_data.runlog import write_report_and_facts

log = logging.getLogger(__name__)
SCAN_ROWS = 65_536  # sample rows per streamed batch


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
        t = read_parquet(f)
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


def iter_sample_columns(datasets: list[Path], columns: list[str]
                        ) -> Iterator[pa.RecordBatch]:
    """Record batches (``SCAN_ROWS`` rows) of ``columns`` over every split file of every
    dataset (streamed)."""
    for d in datasets:
        for split in read_manifest(d)["splits"]:
            for f in split_files(d, split):
                yield from parquet_file(f).iter_batches(batch_size=SCAN_ROWS,
                                                          columns=columns)


def used_keys(datasets: list[Path], col: str) -> tuple[pa.Array, int]:
    """(distinct values of ``col`` over all sample rows, number of rows), streamed: memory is
    one batch plus the distinct values (bounded by the media pool, not by rows)."""
    uniq: list[pa.Array] = []
    rows = 0
    for b in iter_sample_columns(datasets, [col]):
        rows += b.num_rows
        uniq.append(pc.unique(b.column(0)))
        if len(uniq) >= 64:
            uniq = [pc.unique(pa.chunked_array(uniq))]
    if not uniq:
        return pa.array([], pa.string()), 0
    return pc.unique(pa.chunked_array(uniq)), rows


def _dedup(rows: int, unique: int) -> dict:
    return {"rows": rows, "unique": unique,
            "dedup_factor": round(rows / unique, 3) if unique else None}


def tokenize_samples(tok: TextTokenizer, datasets: list[Path], out: Path) -> tuple[dict, str]:
    """Tokenise the distinct texts of the sample datasets (streamed) into
    ``{out}/text/{encoder_id}/``; returns (report, table dir relative to out)."""
    eid = tok.identity.encoder_id()
    n_rows = sum(int(info["rows"]) for d in datasets
                 for info in read_manifest(d)["splits"].values())
    rep = encode_texts(tok, (b.column(0) for b in iter_sample_columns(datasets, ["text"])),
                       n_rows, out / "text" / eid)
    rep.update(_dedup(n_rows, rep["unique_items"]))
    return rep, f"text/{eid}"


def media_specs(cfg: FeaturesConfig, images, clips) -> tuple:
    """(modality, media table, key column, model, revision, batch size) per media modality."""
    return (("image", images, "image_key", cfg.image_model, cfg.image_revision,
             cfg.batch_size_image),
            ("audio", clips, "audio_key", cfg.audio_model, cfg.audio_revision,
             cfg.batch_size_audio))


def media_items(cfg: FeaturesConfig, modality: str, path, key_col: str,
                datasets: list[Path] | None):
    """(keys, payload paths, upstream errors, used keys, sample rows, indices of the used keys)
    of one media table: only items some sample uses are encoded (``datasets=None``: every
    item, for benchmarks); images from the original file (``image_source: source``) or the
    stored copy."""
    src = "source_path" if modality == "image" and cfg.image_source == "source" else "path"
    keys, payloads, upstream = load_media(path, key_col, src)
    if datasets is None:
        return keys, payloads, upstream, pa.array(keys, pa.string()), 0, np.arange(len(keys))
    used, rows = used_keys(datasets, key_col)
    sel = np.flatnonzero(pc.is_in(pa.array(keys, pa.string()), value_set=used)
                         .to_numpy(zero_copy_only=False))
    return keys, payloads, upstream, used, rows, sel


def media_encoder(cfg: FeaturesConfig, modality: str, model: str, rev: str | None):
    return build_encoder(modality, model, rev, pooling=cfg.audio_pooling,
                         image_source=cfg.image_source, image_processor=cfg.image_processor,
                         device=cfg.device, amp=cfg.amp, dtype=cfg.dtype)


def encode_m3(cfg: FeaturesConfig, images: str | Path, clips: str | Path,
              samples: str | Path, out: str | Path) -> dict:
    """Encode the images, clips and texts that some sample of a dataset under ``samples``
    uses, each once (items of the media tables that no sample uses are not encoded)."""
    out = Path(out)
    datasets = sample_datasets(samples)
    reports, index = {}, {}
    for modality, path, key_col, model, rev, bs in media_specs(cfg, images, clips):
        keys, payloads, upstream, used, rows, sel = media_items(cfg, modality, path, key_col,
                                                                datasets)
        enc = media_encoder(cfg, modality, model, rev)
        eid = enc.identity.encoder_id()
        rep = encode_items(enc, [keys[i] for i in sel], [payloads[i] for i in sel],
                           [upstream[i] for i in sel], out / modality / eid,
                           batch_size=bs, num_workers=cfg.num_workers,
                           items_per_part=cfg.items_per_part)
        rep["referenced_not_in_media_table"] = len(used) - len(sel)
        rep["media_table_items"] = len(keys)
        rep.update(_dedup(rows, len(used)))
        reports[modality], index[modality] = rep, f"{modality}/{eid}"
        del enc
    tok = TextTokenizer(cfg.text_model, cfg.text_revision, cfg.text_max_length)
    reports["text"], index["text"] = tokenize_samples(tok, datasets, out)
    write_report_and_facts(out, {"datasets": [d.name for d in datasets],  # rates -> logs/
                                 "modalities": reports})
    atomic_write_json(out / "index.json", index)  # written last: the stage's done marker
    for m, r in reports.items():
        log.info("%s: %s unique (%s failed), dedup x%s, %s items/s", m, r["unique_items"],
                 r["failed"], r["dedup_factor"], r["items_per_s"])
    return {"datasets": [d.name for d in datasets], "modalities": reports}
