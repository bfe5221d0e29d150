"""Fake Symile-M3 releases in the released layouts, generated in the tests.

* Parquet: ``{root}/{config}/{split}-NNNNN-of-NNNNN.parquet`` with lang, audio (Audio:
  struct<bytes, path>), image (Image: struct<bytes, path>), text, cls, cls_id, target_text,
  plus ``{root}/translations.json``; embedded JPEG and WAV bytes.
* CSV: ``{root}/.csv_files/{config}/{split}.csv`` (lang, audio_path, audio_filename, cls,
  image_path, cls_id, target_text, text) pointing into a generated ILSVRC tree
  (``ILSVRC/Data/CLS-LOC/train/{synset}/``) and Common Voice tree (``cv/{lang}/clips/``).
Rows follow the reference's disjoint sampling (w words, one per language, the target's class
name in the row's language).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image

from symile_data.m3.translations import langs_for_w

REPO = Path(__file__).resolve().parents[2]
DEMO_TRANSLATIONS = REPO / "symile_data/resources/m3/demo_translations.json"


def translations(n_classes: int) -> dict:
    table = json.loads(DEMO_TRANSLATIONS.read_text(encoding="utf-8"))
    return dict(sorted(table.items(), key=lambda kv: kv[1]["cls_id"])[:n_classes])


def jpeg(rng: np.random.Generator, hue: int) -> bytes:
    img = np.zeros((24, 32, 3), np.uint8)
    img[..., hue % 3] = 200
    img += rng.integers(0, 40, img.shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def wav(rng: np.random.Generator, lang_i: int, fmt: str = "WAV") -> bytes:
    t = np.arange(8000) / 16000
    x = 0.3 * np.sin(2 * np.pi * (200 + 80 * lang_i) * t) + 0.01 * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), 16000, format=fmt)
    return buf.getvalue()


def sample_rows(table: dict, w: int, n: int, seed: int) -> pd.DataFrame:
    """Reference-style disjoint rows (lang, cls, cls_id, target_text, text) + media indices."""
    rng = np.random.default_rng(seed)
    langs, names = langs_for_w(w), list(table)
    rows = []
    for _ in range(n):
        li, ci = int(rng.integers(w)), int(rng.integers(len(names)))
        others = rng.choice([c for c in range(len(names)) if c != ci], w - 1, replace=False)
        other_langs = [lg for j, lg in enumerate(langs) if j != li]
        words = [table[names[ci]][langs[li]]] + [table[names[c]][lg] for c, lg in
                                                 zip(others, other_langs)]
        rng.shuffle(words)
        rows.append({"lang": langs[li], "cls": names[ci], "cls_id": table[names[ci]]["cls_id"],
                     "target_text": table[names[ci]][langs[li]], "text": "_".join(words),
                     "img_i": int(rng.integers(3)), "clip_i": int(rng.integers(3))})
    return pd.DataFrame(rows)


def hf_schema() -> pa.Schema:
    media = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    schema = pa.schema([("lang", pa.string()), ("audio", media), ("image", media),
                        ("text", pa.string()), ("cls", pa.string()), ("cls_id", pa.int64()),
                        ("target_text", pa.string())])
    feats = {"lang": {"dtype": "string", "_type": "Value"}, "audio": {"_type": "Audio"},
             "image": {"_type": "Image"}, "text": {"dtype": "string", "_type": "Value"},
             "cls": {"dtype": "string", "_type": "Value"},
             "cls_id": {"dtype": "int64", "_type": "Value"},
             "target_text": {"dtype": "string", "_type": "Value"}}
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": feats}})})


def make_parquet_release(root: Path, config: str = "symile-m3-2-xs", sizes=(200, 50, 50),
                         n_classes: int = 4, shards: int = 2, row_group: int = 40,
                         corrupt_rows: int = 0) -> dict[str, pd.DataFrame]:
    """Write the fake release; returns the source rows per split (with the media bytes).
    ``corrupt_rows``: that many train rows get truncated image bytes (a recorded failure)."""
    w = int(config.split("-")[2])
    table = translations(n_classes)
    (root / config).mkdir(parents=True, exist_ok=True)
    (root / "translations.json").write_text(json.dumps(table, ensure_ascii=False))
    rng = np.random.default_rng(7)
    images = {(c, k): jpeg(rng, c) for c in range(n_classes) for k in range(3)}
    clips = {(lg, k): wav(rng, i) for i, lg in enumerate(langs_for_w(w)) for k in range(3)}
    out = {}
    for s, (split, n) in enumerate(zip(("train", "val", "test"), sizes)):
        df = sample_rows(table, w, n, seed=s)
        pos = {v["cls_id"]: i for i, v in enumerate(table.values())}
        df["image_bytes"] = [images[pos[c], k] for c, k in zip(df.cls_id, df.img_i)]
        if split == "train" and corrupt_rows:
            df.loc[:corrupt_rows - 1, "image_bytes"] = [b[:40] + bytes(40) for b in
                                                       df.image_bytes[:corrupt_rows]]
        df["audio_bytes"] = [clips[lg, k] for lg, k in zip(df.lang, df.clip_i)]
        t = pa.table({
            "lang": df.lang, "text": df.text, "cls": df.cls, "cls_id": df.cls_id,
            "target_text": df.target_text,
            "audio": [{"bytes": b, "path": f"common_voice_{lg}_{k}.wav"} for b, lg, k in
                      zip(df.audio_bytes, df.lang, df.clip_i)],
            "image": [{"bytes": b, "path": None} for b in df.image_bytes]})
        t = t.select(hf_schema().names).cast(hf_schema())
        bounds = np.linspace(0, n, shards + 1).astype(int)
        for i in range(shards):
            pq.write_table(t.slice(bounds[i], bounds[i + 1] - bounds[i]),
                           root / config / f"{split}-{i:05d}-of-{shards:05d}.parquet",
                           row_group_size=row_group)
        out[split] = df
    return out


def make_csv_release(root: Path, config: str = "symile-m3-2-xs", sizes=(120, 30, 30),
                     n_classes: int = 4, missing_image: bool = True
                     ) -> tuple[dict[str, pd.DataFrame], Path, Path]:
    """Split CSVs + generated ILSVRC and Common Voice trees; returns (rows, imagenet, cv)."""
    w = int(config.split("-")[2])
    table = translations(n_classes)
    imagenet, cv, csvs = root / "imagenet", root / "commonvoice", root / ".csv_files" / config
    csvs.mkdir(parents=True, exist_ok=True)
    (root / "translations.json").write_text(json.dumps(table, ensure_ascii=False))
    rng = np.random.default_rng(3)
    for c, v in enumerate(table.values()):
        d = imagenet / "ILSVRC/Data/CLS-LOC/train" / v["synset_id"]
        d.mkdir(parents=True, exist_ok=True)
        for k in range(3):
            (d / f"{v['synset_id']}_{k}.JPEG").write_bytes(jpeg(rng, c))
    for i, lg in enumerate(langs_for_w(w)):
        d = cv / "cv" / lg / "clips"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(3):
            (d / f"common_voice_{lg}_{k}.mp3").write_bytes(wav(rng, i, "MP3"))
    out = {}
    for s, (split, n) in enumerate(zip(("train", "val", "test"), sizes)):
        df = sample_rows(table, w, n, seed=10 + s)
        syn = {v["cls_id"]: v["synset_id"] for v in table.values()}
        df["image_path"] = [f"ILSVRC/Data/CLS-LOC/train/{syn[c]}/{syn[c]}_{k}.JPEG"
                            for c, k in zip(df.cls_id, df.img_i)]
        df["audio_path"] = [f"cv/{lg}/clips/common_voice_{lg}_{k}.mp3"
                            for lg, k in zip(df.lang, df.clip_i)]
        if split == "train" and missing_image:
            df.loc[0, "image_path"] = "ILSVRC/Data/CLS-LOC/train/n00000000/gone.JPEG"
        df["audio_filename"] = [Path(p).stem for p in df.audio_path]
        df[["lang", "audio_path", "audio_filename", "cls", "image_path", "cls_id",
            "target_text", "text"]].to_csv(csvs / f"{split}.csv", index=False)
        out[split] = df
    return out, imagenet, cv
