"""M3 stages up to the media tables: translations, images, clips (one call each from pipelines).

Outputs (each complete or absent; report.json written last):
  {translations}/translations.json   resolved table (reference layout, checked, cls_id order)
  {images}/images.parquet + files/   m3_images and the resized JPEGs
  {clips}/clips.parquet + files/     m3_clips and the cached audio
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from symile_data import schema
from symile_data.config import params_hash, to_dict
from symile_data.io.atomic import atomic_path, atomic_write_json, read_json
from symile_data.m3 import clips as clipmod
from symile_data.m3 import imagenet, speech, translation_sources as tsrc
from symile_data.m3.classes import load_classes
from symile_data.m3.config import M3ClipsConfig, M3ImagesConfig, M3TranslationsConfig
from symile_data.m3.parallel import map_batches
from symile_data.m3.translations import (apply_overrides, check_clashes, normalise,
                                         to_reference_layout)

log = logging.getLogger(__name__)
TRANSLATIONS_FILE, IMAGES_TABLE, CLIPS_TABLE, REPORT = (
    "translations.json", "images.parquet", "clips.parquet", "report.json")


def build_translations(out_dir: str | Path, cfg: M3TranslationsConfig,
                       translator: tsrc.GoogleTranslator | None = None) -> dict[str, Any]:
    out_dir = Path(out_dir)
    (out_dir / REPORT).unlink(missing_ok=True)
    classes = load_classes()
    if cfg.backend == "file":
        where, table = cfg.path, tsrc.read_translations(cfg.path)
    elif cfg.backend == "hub":
        where = f"hub:{cfg.hub_repo}/translations.json"
        table = tsrc.hub_translations(cfg.hub_repo, cfg.hub_revision, cfg.cache_dir)
    else:
        where = "google translate"
        translator = translator or tsrc.GoogleTranslator(
            tsrc.api_key_from_env(cfg.google_api_key_env), cfg.cache_dir,
            cfg.google_min_interval_s, cfg.retries)
        table = tsrc.google_translations(classes, cfg.classes, cfg.languages, translator)
    n_over = 0
    if cfg.overrides:
        table, n_over = apply_overrides(table, cfg.overrides)
    rows = normalise(table, cfg.languages, where, classes, cfg.classes)
    check_clashes(rows, cfg.languages, where, cfg.overrides)
    resolved = to_reference_layout(rows, cfg.languages)
    atomic_write_json(out_dir / TRANSLATIONS_FILE, resolved)
    report = {"params_hash": params_hash(cfg), "source": where, "classes": len(rows),
              "languages": list(cfg.languages), "overrides_applied": n_over}
    atomic_write_json(out_dir / REPORT, report)
    return report


def load_resolved(translations_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of a built translations stage, in cls_id order."""
    path = Path(translations_dir) / TRANSLATIONS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: run the m3_translations stage first")
    table = read_json(path)
    return sorted(({"en": k, **v} for k, v in table.items()), key=lambda r: r["cls_id"])


def _write_table(rows: list[dict[str, Any]], sch: pa.Schema, path: Path, sort: list[str]) -> None:
    table = pa.Table.from_pylist(rows, schema=sch).sort_by([(c, "ascending") for c in sort])
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def build_images(out_dir: str | Path, cfg: M3ImagesConfig, translations_dir: str | Path
                 ) -> dict[str, Any]:
    out_dir = Path(out_dir)
    (out_dir / REPORT).unlink(missing_ok=True)
    classes = load_classes()
    synsets = [r["synset_id"] for r in load_resolved(translations_dir)]
    root = cfg.root
    if cfg.source == "hub":
        root = imagenet.stage_hub_images(cfg.hub_dataset, cfg.hub_split, synsets, classes,
                                         cfg.max_images_per_class, out_dir)
    items = imagenet.list_images(root, synsets, classes, cfg.max_images_per_class)
    rows = map_batches(imagenet.ImageBatch(str(out_dir), cfg.resize, cfg.jpeg_quality), items,
                       scheduler=cfg.scheduler, n_workers=cfg.n_workers,
                       batch_size=cfg.batch_size, desc="images")
    rows = list({r["image_key"]: r for r in rows}.values())  # identical files: one row
    _write_table(rows, schema.get("m3_images"), out_dir / IMAGES_TABLE,
                 ["cls_id", "source_path", "image_key"])
    report = {"params_hash": params_hash(cfg), "root": str(root),
              **imagenet.images_summary(rows, synsets)}
    atomic_write_json(out_dir / REPORT, report)
    if report["failed"]:
        log.warning("%d of %d images failed (see %s)", report["failed"], report["images"],
                    out_dir / REPORT)
    return report


def build_clips(out_dir: str | Path, cfg: M3ClipsConfig, translations_dir: str | Path,
                gtts_cls=None) -> dict[str, Any]:
    out_dir = Path(out_dir)
    (out_dir / REPORT).unlink(missing_ok=True)
    langs = list(cfg.languages)
    if cfg.engine == "common_voice":
        items = clipmod.common_voice_items(cfg.common_voice_root, langs,
                                           cfg.max_clips_per_lang, cfg.seed)
        rows = map_batches(clipmod.common_voice_batch, items, scheduler=cfg.scheduler,
                           n_workers=cfg.n_workers, batch_size=cfg.batch_size, desc="clips")
    else:
        pool = clipmod.load_sentences(cfg.sentences, langs, load_resolved(translations_dir))
        if cfg.max_clips_per_lang:
            pool = {k: v[:cfg.max_clips_per_lang] for k, v in pool.items()}
        items = clipmod.tts_items(pool, cfg.engine, dict(cfg.voices))
        if cfg.engine == "gtts":  # rate-limited web service: one throttled process
            throttle = speech.Throttle(cfg.throttle_s)
            rows = [clipmod.make_clip(it, str(out_dir), retries=cfg.retries, tld=cfg.gtts_tld,
                                      throttle=throttle, gtts_cls=gtts_cls) for it in items]
        else:
            rows = map_batches(clipmod.EspeakBatch(str(out_dir)), items,
                               scheduler=cfg.scheduler, n_workers=cfg.n_workers,
                               batch_size=cfg.batch_size, desc="clips")
    rows = list({r["audio_key"]: r for r in rows}.values())
    _write_table(rows, schema.get("m3_clips"), out_dir / CLIPS_TABLE,
                 ["lang", "audio_key"])
    report = {"params_hash": params_hash(cfg), "engine": cfg.engine,
              "params": to_dict(cfg), **clipmod.clips_summary(rows, langs)}
    atomic_write_json(out_dir / REPORT, report)
    return report
