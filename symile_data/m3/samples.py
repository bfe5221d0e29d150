"""The m3_samples stage: one Parquet dataset per (w, size) config, plus optional exports.

Layout: ``{out}/symile-m3-{w}-{size}/{split}-{i:05d}-of-{n:05d}.parquet`` + manifest.json, and
``{out}/README.md`` (dataset card, one config per dataset) so ``datasets.load_dataset(out,
"symile-m3-2-demo")`` reads it. ``embed_media`` adds HF Image/Audio columns with the raw bytes;
``wds_export`` writes ``{wds_out}/symile-m3-{w}-{size}/`` tars (jpg, wav|mp3, txt, json).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from symile_data.config import params_hash, to_dict
from symile_data.hashing import sha256_file
from symile_data.io.card import write_card
from symile_data.io.openfile import read_parquet
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.wds import write_wds_dataset
from symile_data.io.card import write_root_card
from symile_data.m3.build import CLIPS_TABLE, IMAGES_TABLE, TRANSLATIONS_FILE, load_resolved
from symile_data.m3.config import M3SamplesConfig
from symile_data.m3.sampling import SPLITS, SamplingInputs, SplitSource
from symile_data.m3.translations import langs_for_w
from symile_data.runlog import write_report_and_facts
from symile_data.schema import m3_samples_schema

log = logging.getLogger(__name__)


def _ok(table: pa.Table) -> pa.Table:
    return table.filter(pc.equal(table["status"], "ok"))


def load_inputs(w: int, translations_dir: str | Path, images_dir: str | Path,
                clips_dir: str | Path) -> SamplingInputs:
    """Flat sampling inputs for w from the three built media stages."""
    langs = langs_for_w(w)
    rows = load_resolved(translations_dir)
    missing = [lang for lang in langs if lang not in rows[0]]
    if missing:
        raise ValueError(f"{Path(translations_dir) / TRANSLATIONS_FILE}: no {missing} "
                         f"translations, needed for w={w}")
    cls_ids = np.array([r["cls_id"] for r in rows], dtype=np.int16)
    images = _ok(read_parquet(Path(images_dir) / IMAGES_TABLE))
    images = images.filter(pc.is_in(images["cls_id"], pa.array(cls_ids)))
    images = images.sort_by([("cls_id", "ascending"), ("image_key", "ascending")])
    counts = np.bincount(np.searchsorted(cls_ids, images["cls_id"].to_numpy()),
                         minlength=len(cls_ids))
    clips = _ok(read_parquet(Path(clips_dir) / CLIPS_TABLE))
    lang_of = {lang: i for i, lang in enumerate(langs)}
    clips = clips.filter(pc.is_in(clips["lang"], pa.array(langs)))
    clip_lang = np.array([lang_of[x] for x in clips["lang"].to_pylist()], dtype=np.int64)
    order = np.lexsort((np.array(clips["audio_key"].to_pylist(), dtype=object), clip_lang))
    clips = clips.take(pa.array(order))
    clip_counts = np.bincount(clip_lang, minlength=len(langs))
    return SamplingInputs(
        langs=langs, cls_ids=cls_ids, synsets=pa.array([r["synset_id"] for r in rows]),
        words=pa.array([r[lang] for r in rows for lang in langs]),
        img_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        image_keys=images["image_key"].combine_chunks(),
        clip_offsets=np.concatenate([[0], np.cumsum(clip_counts)]).astype(np.int64),
        audio_keys=clips["audio_key"].combine_chunks())


class MediaLookup:
    """key -> raw file bytes, read once per unique key in a chunk (not per row)."""

    def __init__(self, table: pa.Table, key_col: str, base: Path):
        t = _ok(table)
        self.keys = t[key_col].combine_chunks()
        self.paths = [str(base / p) for p in t["path"].to_pylist()]

    def take(self, keys: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(bytes, path) arrays aligned with ``keys``."""
        uniq = pc.unique(keys)
        where = pc.index_in(uniq, value_set=self.keys).to_numpy(zero_copy_only=False)
        data = pa.array([Path(self.paths[i]).read_bytes() for i in where], pa.binary())
        paths = pa.array([Path(self.paths[i]).name for i in where], pa.string())
        idx = pc.index_in(keys, value_set=uniq)
        return data.take(idx), paths.take(idx)


class EmbeddedSource:
    """Wraps a SplitSource, adding HF-style image/audio struct<bytes, path> columns."""

    def __init__(self, src: SplitSource, images: MediaLookup, clips: MediaLookup):
        self.src, self.images, self.clips, self.num_rows = src, images, clips, src.num_rows

    def take_range(self, start: int, stop: int) -> pa.Table:
        t = self.src.take_range(start, stop)
        for col, lookup, key in (("image", self.images, "image_key"),
                                 ("audio", self.clips, "audio_key")):
            data, path = lookup.take(t[key].combine_chunks())
            t = t.append_column(col, pa.StructArray.from_arrays([data, path], ["bytes", "path"]))
        return t


class WdsSource:
    """Samples as WebDataset members: jpg, wav|mp3, txt (the text) and json (the row)."""

    def __init__(self, src: SplitSource, images: MediaLookup, clips: MediaLookup):
        self.src, self.images, self.clips = src, images, clips
        self.num_samples = src.num_rows

    def take_range(self, start: int, stop: int) -> list[dict[str, Any]]:
        t = self.src.take_range(start, stop)
        img, _ = self.images.take(t["image_key"].combine_chunks())
        aud, apath = self.clips.take(t["audio_key"].combine_chunks())
        rows = t.to_pylist()  # per sample: the tar writer is per-sample anyway
        return [{"__key__": r["key"], "jpg": img[i].as_py(),
                 apath[i].as_py().rsplit(".", 1)[-1]: aud[i].as_py(), "txt": r["text"],
                 "json": json.dumps(r, ensure_ascii=False, sort_keys=True).encode()}
                for i, r in enumerate(rows)]


def hf_schema(schema: pa.Schema) -> pa.Schema:
    """Add the ``huggingface`` features metadata so datasets decodes Image/Audio columns."""
    from datasets import Features
    feats = Features.from_arrow_schema(m3_samples_schema(embed_media=False)).to_dict()
    feats.update(image={"_type": "Image"}, audio={"_type": "Audio"})
    meta = dict(schema.metadata or {})
    meta[b"huggingface"] = json.dumps({"info": {"features": feats}}).encode()
    return schema.with_metadata(meta)


def build_samples(out_dir: str | Path, cfg: M3SamplesConfig, translations_dir: str | Path,
                  images_dir: str | Path, clips_dir: str | Path,
                  wds_dir: str | Path | None = None) -> dict[str, Any]:
    out_dir = Path(out_dir)
    (out_dir / "report.json").unlink(missing_ok=True)
    inputs_hash = [sha256_file(Path(d) / f) for d, f in ((translations_dir, TRANSLATIONS_FILE),
                                                        (images_dir, IMAGES_TABLE),
                                                        (clips_dir, CLIPS_TABLE))]
    spec = ShardSpec.from_config(cfg)
    images = clips = None
    if cfg.embed_media or cfg.wds_export:
        images = MediaLookup(read_parquet(Path(images_dir) / IMAGES_TABLE), "image_key",
                             Path(images_dir))
        clips = MediaLookup(read_parquet(Path(clips_dir) / CLIPS_TABLE), "audio_key",
                            Path(clips_dir))
    schema = m3_samples_schema(cfg.embed_media)
    if cfg.embed_media:
        schema = hf_schema(schema)
    report: dict[str, Any] = {"datasets": {}}
    for w in cfg.ws:
        inp = load_inputs(w, translations_dir, images_dir, clips_dir)
        for size in cfg.sizes:
            name = cfg.dataset_name(w, size)
            h = params_hash(cfg, {"w": w, "size": size, "inputs": inputs_hash})
            sources = {split: SplitSource(inp, split, n, cfg.seed, cfg.missing_p,
                                          m3_samples_schema(), cfg.block_rows)
                       for split, n in zip(SPLITS, cfg.split_rows(size))}
            t0 = time.perf_counter()
            splits = ({k: EmbeddedSource(s, images, clips) for k, s in sources.items()}
                      if cfg.embed_media else sources)
            extra = {"params": to_dict(cfg), "w": w, "size": size, "languages": list(inp.langs),
                     "classes": len(inp.cls_ids), "seed": cfg.seed, "missing_p": cfg.missing_p}
            manifest = write_parquet_dataset(out_dir / name, splits, schema, name=name,
                                             params_hash=h, spec=spec,
                                             flags={"mimic_derived": False}, extra=extra)
            entry = {"rows": {s: v["rows"] for s, v in manifest["splits"].items()},
                     "seconds": round(time.perf_counter() - t0, 3)}
            if cfg.wds_export:
                if wds_dir is None:
                    raise ValueError("wds_export is on but no WebDataset output dir was given")
                write_wds_dataset(Path(wds_dir) / name,
                                  {k: WdsSource(s, images, clips) for k, s in sources.items()},
                                  name=name, params_hash=h,
                                  samples_per_shard=cfg.wds_samples_per_shard,
                                  flags={"mimic_derived": False}, extra=extra)
                entry["wds"] = str(Path(wds_dir) / name)
            report["datasets"][name] = entry
    if cfg.wds_export:
        write_root_card(wds_dir, "Symile-M3 samples (WebDataset)")
    write_card(out_dir, title="Symile-M3 (regenerated)", license="other",
               description="Symile-M3 samples (image, text, audio) regenerated by symile-data: "
                           "see docs/m3.md. Images and clips are referenced by image_key / "
                           "audio_key into the m3_images / m3_clips tables.")
    write_report_and_facts(out_dir, report)   # seconds -> logs/ (run facts, not hashed)
    return report
