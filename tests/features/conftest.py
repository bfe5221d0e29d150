"""Fixtures: tiny models (written once per session), tiny M3 media tables and sample datasets."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from PIL import Image

from symile_data import schema as S
from symile_data.features.config import FeaturesConfig
from symile_data.features.tiny_models import write_tiny_models
from symile_data.io.parquet import write_parquet_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    return write_tiny_models(tmp_path_factory.mktemp("models"), seed=0)


def make_media(root: Path, n_images: int = 6, n_clips: int = 4, corrupt: bool = True):
    """Write images/clips + m3_images / m3_clips tables; returns (images table, clips table)."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "wav").mkdir(parents=True)
    irows = []
    for i in range(n_images):
        arr = rng.integers(0, 255, (40 + 3 * i, 50, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG")
        data = buf.getvalue()
        if corrupt and i == n_images - 1:
            data = data[: len(data) // 3]  # truncated JPEG
        (root / "img" / f"{i}.jpg").write_bytes(data)
        irows.append({"image_key": f"img{i:03d}", "synset": "n0", "cls_id": i,
                      "source_path": str(root / "img" / f"{i}.jpg"), "path": f"img/{i}.jpg",
                      "width": 50,
                      "height": 40, "status": "ok", "error": None})
    crows = []
    for i in range(n_clips):
        sr = 16000 if i % 2 == 0 else 22050
        t = np.arange(int(sr * (0.5 + 0.3 * i))) / sr
        wav = (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, wav, sr, format="WAV")
        data = buf.getvalue()
        if corrupt and i == n_clips - 1:
            data = b"RIFF not really a wav file"
        (root / "wav" / f"{i}.wav").write_bytes(data)
        crows.append({"audio_key": f"aud{i:03d}", "lang": "en", "text": "s", "engine": "x",
                      "voice": "v", "source_path": None, "path": f"wav/{i}.wav",
                      "sample_rate": sr, "duration_s": float(len(t) / sr), "status": "ok",
                      "error": None})
    images = pa.Table.from_pylist(irows, schema=S.m3_images_schema())
    clips = pa.Table.from_pylist(crows, schema=S.m3_clips_schema())
    pq.write_table(images, root / "m3_images.parquet")
    pq.write_table(clips, root / "m3_clips.parquet")
    return images, clips


def make_samples(out: Path, name: str, n_images: int, n_clips: int, seed: int = 0,
                 n: dict | None = None) -> Path:
    """A tiny m3_samples dataset drawing items with replacement (so keys repeat)."""
    rng = np.random.default_rng(seed)
    words = ["dog", "σκύλος", "犬", "crane_bird", "γερανός_crane", "a_long_text_" * 3]
    splits = {}
    for split, rows in (n or {"train": 30, "val": 8, "test": 8}).items():
        m = rows
        splits[split] = pa.table({
            "key": [f"{split}-{i:09d}" for i in range(m)],
            "split": [split] * m,
            "cls_id": pa.array(rng.integers(0, 1000, m), pa.int16()),
            "synset": ["n0"] * m,
            "lang_id": pa.array(rng.integers(0, 2, m), pa.int8()),
            "lang": ["en"] * m,
            "target_word": ["dog"] * m,
            "text": [words[j] for j in rng.integers(0, len(words), m)],
            "image_key": [f"img{j:03d}" for j in rng.integers(0, n_images, m)],
            "audio_key": [f"aud{j:03d}" for j in rng.integers(0, n_clips, m)],
            "image_missing": rng.random(m) < 0.3,
            "text_missing": rng.random(m) < 0.3,
            "audio_missing": rng.random(m) < 0.3,
        })
    d = out / name
    write_parquet_dataset(d, splits, S.m3_samples_schema(), name=name, params_hash="t" * 16)
    return d


def features_cfg(models: dict[str, str], **kw) -> FeaturesConfig:
    base = dict(image_model=models["image"], image_revision=None, audio_model=models["audio"],
                audio_revision=None, text_model=models["text"], text_revision=None,
                batch_size_image=4, batch_size_audio=2, items_per_part=3, device="cpu")
    base.update(kw)
    return FeaturesConfig(**base)


@pytest.fixture(scope="session")
def kit():
    """The fixture builders above, for test modules (conftest is not importable by name)."""
    import types
    return types.SimpleNamespace(make_media=make_media, make_samples=make_samples,
                                 features_cfg=features_cfg)
