"""Shared part of the two M3 release imports: media store, sample rows, resumable parts.

Output root of an import (the same tables the builder writes, so features / shards / training
run unchanged)::

    {out}/translations/translations.json      the release's table (reference layout)
    {out}/images/images.parquet + files/      m3_images: one row per unique image (content key)
    {out}/clips/clips.parquet + files/        m3_clips: one row per unique clip
    {out}/samples/{config}/                   m3_samples dataset (+ manifest.json)
    {out}/.parts/{config}/{split}/{i:05d}.*   per-batch parts + done markers (resume)
    {out}/.parts/{config}/.fingerprint.json   what made the parts (io.fingerprint)
    {out}/report.json                         written last

A part is one streamed batch of source rows: its samples, image rows and clip rows are written
as three Parquet files, then ``{i:05d}.done``. A re-run skips a part with a marker when the
parts' fingerprint (release files, batch_rows, ...) is the same and every media file its rows
stored is still on disk (DVC removes ``images/`` and ``clips/`` before it re-runs the stage);
another fingerprint empties ``.parts/{config}`` first. The media tables are the union of the
parts of every config imported into ``out``, never of an earlier table (which may hold the
rows of another release).
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from symile_data.hashing import sha256_bytes, short_key
from symile_data.io.atomic import atomic_path, atomic_write_bytes, atomic_write_json
from symile_data.io.openfile import parquet_file, read_parquet
from symile_data.m3.translations import langs_for_w
from symile_data.schema import get, m3_samples_schema

SPLITS = ("train", "val", "test")
CONFIG_RE = re.compile(r"^symile-m3-(\d+)-[A-Za-z0-9_.-]+$")


def config_w(config: str) -> int:
    """'symile-m3-10-xs' -> 10 (checked against the SPEC's language lists)."""
    m = CONFIG_RE.match(config)
    if not m:
        raise ValueError(f"config {config!r}: expected symile-m3-{{w}}-{{size}}")
    w = int(m.group(1))
    langs_for_w(w)
    return w


def image_key(data: bytes, synset: str) -> str:
    return short_key(sha256_bytes(data), synset, n=32)      # = the builder's m3_images key


def clip_key(data: bytes, lang: str) -> str:
    return short_key(sha256_bytes(data), lang, "common_voice", n=32)  # = the builder's CV key


def image_row(key: str, data: bytes | None, synset: str, cls_id: int, source: str,
              out_dir: Path | None, error: str | None = None) -> dict[str, Any]:
    """Check the image decodes; store it once under files/{key[:2]}/{key}.jpg (out_dir) or
    reference it in place (None); never raises."""
    from PIL import Image
    row = {"image_key": key, "synset": synset, "cls_id": cls_id, "source_path": source,
           "path": None, "width": None, "height": None, "status": "failed", "error": error}
    if error is not None:
        return row
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            size = img.size
    except Exception as e:  # PIL raises many types for bad bytes
        row["error"] = f"{source}: cannot decode image: {type(e).__name__}: {e}"
        return row
    rel = source
    if out_dir is not None:
        rel = f"files/{key[:2]}/{key}.jpg"
        if not (out_dir / rel).exists():
            atomic_write_bytes(out_dir / rel, data)
    row.update(path=rel, width=size[0], height=size[1], status="ok")
    return row


def clip_row(key: str, data: bytes | None, lang: str, source: str, out_dir: Path | None,
             error: str | None = None) -> dict[str, Any]:
    """Check the clip decodes; store it once (out_dir) or reference it in place (None)."""
    import soundfile as sf
    row = {"audio_key": key, "lang": lang, "text": "", "engine": "common_voice", "voice": "",
           "source_path": source, "path": None, "sample_rate": None, "duration_s": None,
           "status": "failed", "error": error}
    if error is not None:
        return row
    try:
        info = sf.info(io.BytesIO(data))
        sr, dur = int(info.samplerate), float(info.frames) / max(int(info.samplerate), 1)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        row["error"] = f"{source}: cannot decode audio: {type(e).__name__}: {e}"
        return row
    if dur <= 0:
        row.update(status="dropped", error=f"{source}: zero duration")
        return row
    path = source
    if out_dir is not None:
        ext = Path(source).suffix.lstrip(".").lower() or "wav"
        path = f"files/{key[:2]}/{key}.{ext}"
        if not (out_dir / path).exists():
            atomic_write_bytes(out_dir / path, data)
    row.update(path=path, sample_rate=sr, duration_s=dur, status="ok")
    return row


def sample_table(split: str, start: int, w: int, synsets: Sequence[str], cols: dict[str, Any],
                 image_keys: list[str], audio_keys: list[str], where: str) -> pa.Table:
    """Released rows [start, start+n) of ``split`` -> m3_samples rows (key '{split}-{i:09d}')."""
    langs = langs_for_w(w)
    lang = pa.array(cols["lang"], pa.string())
    lang_id = pc.index_in(lang, value_set=pa.array(langs))
    if lang_id.null_count:
        bad = lang.filter(pc.is_null(lang_id))[0].as_py()
        raise ValueError(f"{where}: language {bad!r} is not one of {list(langs)} (w={w})")
    cls_id = np.asarray(cols["cls_id"], dtype=np.int64)
    if len(cls_id) and (cls_id.min() < 0 or cls_id.max() >= len(synsets)):
        raise ValueError(f"{where}: cls_id out of range 0..{len(synsets) - 1}")
    n = len(cls_id)
    false = np.zeros(n, dtype=bool)
    return pa.table({
        "key": [f"{split}-{i:09d}" for i in range(start, start + n)],
        "split": pa.array([split] * n), "cls_id": cls_id.astype(np.int16),
        "synset": pa.array(synsets).take(pa.array(cls_id)), "lang_id": lang_id.cast(pa.int8()),
        "lang": lang, "target_word": pa.array(cols["target_text"], pa.string()),
        "text": pa.array(cols["text"], pa.string()),
        "image_key": pa.array(image_keys, pa.string()),
        "audio_key": pa.array(audio_keys, pa.string()),
        "image_missing": false, "text_missing": false, "audio_missing": false,
    }, schema=m3_samples_schema())


PARTS_DIR = ".parts"
MEDIA = ("images", "clips")


class Parts:
    """Per-batch parts of one (config, split): written atomically, marker last."""

    def __init__(self, out: Path, config: str, split: str):
        self.dir = out / PARTS_DIR / config / split
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, i: int, img_dir: Path | None = None, clip_dir: Path | None = None) -> bool:
        """Part i is complete and the files its ok media rows stored exist under img_dir /
        clip_dir (None: media referenced in place, not checked)."""
        files = [self.dir / f"{i:05d}.{n}.parquet" for n in ("samples", *MEDIA)]
        if not ((self.dir / f"{i:05d}.done").exists() and all(f.is_file() for f in files)):
            return False
        for f, root in zip(files[1:], (img_dir, clip_dir)):
            if root is None:
                continue
            t = pq.read_table(f, columns=["path", "status"])
            ok = t.filter(pc.equal(t["status"], "ok"))["path"].to_pylist()
            if not all((root / p).is_file() for p in ok if p):
                return False
        return True

    def write(self, i: int, samples: pa.Table, images: list[dict], clips: list[dict]) -> None:
        for name, table in (("samples", samples),
                            ("images", pa.Table.from_pylist(images, get("m3_images"))),
                            ("clips", pa.Table.from_pylist(clips, get("m3_clips")))):
            with atomic_path(self.dir / f"{i:05d}.{name}.parquet") as tmp:
                pq.write_table(table, tmp, compression="zstd")
        atomic_write_json(self.dir / f"{i:05d}.done", {"rows": samples.num_rows})

    def files(self, name: str) -> list[Path]:
        return sorted(self.dir.glob(f"*.{name}.parquet"))


class PartsSource:
    """RowSource over the samples parts of one split, in part order (lazy take_range)."""

    def __init__(self, files: list[Path]):
        self.files = files
        self.rows = np.array([parquet_file(f).metadata.num_rows for f in files], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.rows)])
        self.num_rows = int(self.starts[-1])

    def take_range(self, start: int, stop: int) -> pa.Table:
        first = int(np.searchsorted(self.starts, start, side="right") - 1)
        last = int(np.searchsorted(self.starts, stop, side="left"))
        t = pa.concat_tables([read_parquet(f) for f in self.files[first:last]])
        return t.slice(start - int(self.starts[first]), stop - start)


def finish_media(out: Path, name: str, key_col: str, table_file: Path,
                 stored: bool) -> dict:
    """Union of the media rows of every part of every config imported into ``out`` -> one
    row per key, sorted. ``stored``: files under ``files/`` that no row lists (a replaced
    release's) are deleted."""
    configs = sorted(p.name for p in (out / PARTS_DIR).iterdir() if p.is_dir())
    files = [f for c in configs for s in SPLITS for f in Parts(out, c, s).files(name)]
    tables = [read_parquet(f) for f in files]
    schema = get("m3_images" if name == "images" else "m3_clips")
    t = pa.concat_tables([x.cast(schema) for x in tables]) if tables else schema.empty_table()
    t = t.sort_by([(key_col, "ascending"), ("status", "descending")])  # "ok" before "failed"
    keys = t[key_col].to_numpy(zero_copy_only=False)
    first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if len(keys) \
        else np.zeros(0, np.int64)
    t = t.take(pa.array(first, pa.int64()))
    with atomic_path(table_file) as tmp:
        pq.write_table(t, tmp, compression="zstd")
    if stored:
        listed = {table_file.parent / p for p in t["path"].to_pylist() if p}
        for f in sorted((table_file.parent / "files").rglob("*")):
            if f.is_file() and f not in listed:
                f.unlink()
    status = t["status"].to_numpy(zero_copy_only=False)
    errors = t.filter(pc.invert(pc.equal(t["status"], "ok")))["error"][:5].to_pylist()
    return {"unique": t.num_rows, "ok": int((status == "ok").sum()),
            "failed": int((status != "ok").sum()), "examples": errors}


def write_translations(src: Path, out: Path) -> Path:
    """Copy the release's translations.json (reference layout) after a shape check."""
    try:
        table = json.loads(Path(src).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{src}: cannot read translations.json ({e})") from e
    bad = [k for k, v in table.items() if not isinstance(v, dict)
           or not {"synset_id", "cls_id"} <= set(v)] if isinstance(table, dict) else ["<root>"]
    if bad:
        raise ValueError(f"{src}: entries {bad[:3]} lack synset_id / cls_id (reference layout: "
                         f"{{english name: {{synset_id, cls_id, <lang>: word}}}})")
    dest = out / "translations" / "translations.json"
    atomic_write_json(dest, table)
    return dest
