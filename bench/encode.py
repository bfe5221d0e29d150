"""Encoder throughput (items/s per modality), printed as JSON. Run by hand, never in tests.

Default: the tiny models (written to a temp dir with ``write_tiny_models``) on CPU, through the
same code path as the stage (decode -> processor -> batched inference):
    python bench/encode.py --n-images 256 --n-clips 32
``--full-size``: the real architectures with RANDOM weights (CLIP ViT-L/14 vision tower,
Whisper-large-v3 encoder), model-only timing on pre-built inputs, for a GPU (bf16 autocast):
    python bench/encode.py --full-size --device cuda --batch-image 512 --batch-audio 64
Goals on one H100: >= 2,000 images/s (ViT-L/14), >= 200 clips/s (Whisper-large-v3 encoder).
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
import time

import numpy as np
import torch


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 2) if seconds > 0 else float("inf")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_tiny(args) -> dict:
    import soundfile as sf
    from PIL import Image

    from symile_data.features.encoders import AudioEncoder, ImageEncoder
    from symile_data.features.tables import _Collate, _Items
    from symile_data.features.tiny_models import write_tiny_models
    from torch.utils.data import DataLoader

    rng = np.random.default_rng(0)
    imgs, clips = [], []
    for _ in range(args.n_images):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (256, 320, 3), dtype=np.uint8)).save(buf, "JPEG")
        imgs.append(buf.getvalue())
    for i in range(args.n_clips):
        buf = io.BytesIO()
        sf.write(buf, (0.1 * rng.standard_normal(16000 * (2 + i % 4))).astype(np.float32),
                 16000, format="WAV")
        clips.append(buf.getvalue())
    out = {}
    with tempfile.TemporaryDirectory() as d:
        models = write_tiny_models(d, seed=0)
        for name, enc, items, bs in (
                ("image", ImageEncoder(models["image"], None, device=args.device), imgs,
                 args.batch_image),
                ("audio", AudioEncoder(models["audio"], None, device=args.device), clips,
                 args.batch_audio)):
            dl = DataLoader(_Items(items, enc.decode, [""] * len(items)), batch_size=bs,
                            num_workers=args.workers, collate_fn=_Collate(enc.preprocess))
            t0 = time.perf_counter()
            n = 0
            for _, _, inputs in dl:
                n += len(enc.encode(inputs))
            out[name] = {"items": n, "items_per_s": _rate(n, time.perf_counter() - t0),
                         "batch_size": bs, "includes": "decode+preprocess+encode"}
    return out


def bench_full(args) -> dict:
    from transformers import (CLIPVisionConfig, CLIPVisionModel, WhisperConfig)
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    device = torch.device(args.device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" \
        else torch.autocast("cpu", enabled=False)
    # openai/clip-vit-large-patch14 vision tower and openai/whisper-large-v3 encoder shapes
    vit = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=224, patch_size=14, projection_dim=768)).eval().to(device)
    whisper = WhisperEncoder(WhisperConfig(
        d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
        num_mel_bins=128, max_source_positions=1500)).eval().to(device)
    out = {}
    for name, model, shape, bs, kw in (
            ("image", vit, (3, 224, 224), args.batch_image, "pixel_values"),
            ("audio", whisper, (128, 3000), args.batch_audio, "input_features")):
        x = torch.randn((bs, *shape), device=device)
        with torch.inference_mode(), amp:
            for _ in range(args.warmup):
                model(**{kw: x})
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(args.iters):
                model(**{kw: x})
            _sync(device)
        out[name] = {"items_per_s": _rate(bs * args.iters, time.perf_counter() - t0),
                     "batch_size": bs, "includes": "model forward only (random weights)"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-size", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n-images", type=int, default=256)
    ap.add_argument("--n-clips", type=int, default=32)
    ap.add_argument("--batch-image", type=int, default=64)
    ap.add_argument("--batch-audio", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = bench_full(args) if args.full_size else bench_tiny(args)
    print(json.dumps({"mode": "full-size" if args.full_size else "tiny", "device": args.device,
                      "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                      "torch": torch.__version__, "cpu": platform.processor() or None,
                      "threads": args.threads, "results": result}, indent=2))


if __name__ == "__main__":
    main()
