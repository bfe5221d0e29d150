"""Throughput with 1 and 2 CPU ranks (JSON on stdout): training samples/s and feature items/s.

Training: ``torchrun --standalone --nproc_per_node R -m symile_data.cli train`` (gloo, one
intra-op thread per rank) on synthetic M3 training shards (1024-d image and 1280-d audio
float16 features, 16 text tokens, a tiny random XLM-R text tower), Symile O(N), the SAME
global batch for R = 1 and 2 (R x batch_size rows), so the ratio is the strong-scaling
speed-up. samples/s = training rows of all epochs / wall seconds of the run (run log timing.json;
includes the val pass and checkpoints).
Features: the image and audio parts of tiny random CLIP / Whisper models over synthetic JPEGs
and WAVs, split over R spawned ranks (features.parts.encode_media_parts); items/s = items /
encoding seconds of the slowest rank (process start and model loading excluded; the wall time
with them is reported too).
The 1-minute load average is reported before and after (the box may be shared).
Usage: python bench/train_dist.py [--rows 4096] [--epochs 2] [--global-batch 128]
       [--images 96] [--clips 48] [--out /tmp/symile-bench-dist]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]


def m3_shards(out: Path, rows: int, val: int) -> Path:
    from symile_data.io.parquet import ShardSpec, write_parquet_dataset
    rng = np.random.default_rng(0)

    def table(n: int, split: str) -> pa.Table:
        def vec(x, t):
            return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), t), x.shape[1])
        ids = rng.integers(3, 250, (n, 16)).astype(np.int32)
        ids[:, 0], ids[:, -1] = 0, 2
        cls = rng.integers(0, 1000, n).astype(np.int16)
        return pa.table({
            "key": [f"{split}-{i}" for i in range(n)], "split": [split] * n,
            "cls_id": pa.array(cls), "image_key": [f"img-{c}" for c in cls],
            "image_missing": np.zeros(n, bool), "audio_missing": np.zeros(n, bool),
            "text_missing": np.zeros(n, bool),
            "image_feat": vec(rng.standard_normal((n, 1024), np.float32).astype(np.float16),
                              pa.float16()),
            "audio_feat": vec(rng.standard_normal((n, 1280), np.float32).astype(np.float16),
                              pa.float16()),
            "text_input_ids": vec(ids, pa.int32()),
            "text_attention_mask": vec(np.ones((n, 16), np.int8), pa.int8())})

    splits = {"train": table(rows, "train"), "val": table(val, "val"), "test": table(64, "test")}
    write_parquet_dataset(out, splits, splits["train"].schema, name="bench-m3",
                          params_hash="b" * 16, spec=ShardSpec(row_group_rows=1024))
    return out


def tiny_text_model(out: Path) -> Path:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(
        vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=40, bos_token_id=0, pad_token_id=1,
        eos_token_id=2)).save_pretrained(out)
    return out


def train_run(data: Path, text_model: Path, work: Path, ranks: int, args) -> dict:
    run = work / f"run-{ranks}"
    shutil.rmtree(run, ignore_errors=True)
    cfg = {"negatives": "n", "d": 256, "epochs": args.epochs,
           "batch_size": args.global_batch // ranks, "grad_accum": 1, "lr": 1e-4,
           "weight_decay": 0.0, "logit_scale_init": -1.0, "normalize": False, "seed": 0,
           "shuffle_buffer": 2048, "num_workers": 0, "max_logits": 1 << 28,
           "ckpt_every_steps": 0, "val_every_epochs": args.epochs, "log_every_steps": 10,
           "torch_threads": 1, "text_model": str(text_model), "d_indicator": 16}
    params = work / f"params-{ranks}.yaml"
    params.write_text(yaml.safe_dump({"m3_train": cfg}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SYMILE_DATA_PROGRESS": "off",
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           str(ranks), "-m", "symile_data.cli", "train", "--dataset-dir", str(data), "--model",
           "m3", "--loss", "symile", "--out", str(run), "--params", str(params)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=1800)
    from symile_data.runlog import read_run_log
    wall = read_run_log(run)["wall_s"]               # run facts live outside the run dir
    done = json.loads((run / "done.json").read_text())
    rows = done["steps"] * done["global_batch"]
    return {"ranks": ranks, "global_batch": done["global_batch"], "steps": done["steps"],
            "wall_s": round(wall, 2), "samples_s": round(rows / wall, 1)}


def media(root: Path, n_images: int, n_clips: int) -> tuple[Path, Path]:
    import soundfile as sf
    from PIL import Image
    from symile_data import schema as S
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    irows, crows = [], []
    for i in range(n_images):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
        (root / "img" / f"{i}.jpg").write_bytes(buf.getvalue())
        irows.append({"image_key": f"img{i:05d}", "synset": "n0", "cls_id": 0,
                      "source_path": str(root / "img" / f"{i}.jpg"), "path": f"img/{i}.jpg", "width": 256,
                      "height": 256, "status": "ok", "error": None})
    for i in range(n_clips):
        wav = (0.3 * np.sin(np.arange(48000) * (0.05 + 0.001 * i))).astype(np.float32)
        sf.write(root / "wav" / f"{i}.wav", wav, 16000)
        crows.append({"audio_key": f"aud{i:05d}", "lang": "en", "text": "s", "engine": "x",
                      "voice": "v", "source_path": None, "path": f"wav/{i}.wav",
                      "sample_rate": 16000, "duration_s": 3.0, "status": "ok", "error": None})
    images, clips = root / "m3_images.parquet", root / "m3_clips.parquet"
    pq.write_table(pa.Table.from_pylist(irows, schema=S.m3_images_schema()), images)
    pq.write_table(pa.Table.from_pylist(crows, schema=S.m3_clips_schema()), clips)
    return images, clips


def _feature_rank(rank: int, world: int, cfg, images: str, clips: str, out: str) -> None:
    from symile_data.features.parts import encode_media_parts
    reports = encode_media_parts(cfg, images, clips, None, out, (rank, world))
    seconds = sum(r["seconds"] for r in reports.values())     # encoding, models loaded
    Path(out, f"rank{rank}.json").write_text(json.dumps({"seconds": seconds}))


def features_run(cfg, images: Path, clips: Path, work: Path, ranks: int, items: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests" / "train"))
    from dist_workers import spawn
    out = work / f"features-{ranks}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    spawn(_feature_rank, ranks, cfg, str(images), str(clips), str(out))
    wall = time.perf_counter() - t0
    enc = max(json.loads((out / f"rank{r}.json").read_text())["seconds"] for r in range(ranks))
    return {"ranks": ranks, "items": items, "encode_s_slowest_rank": round(enc, 2),
            "items_s": round(items / enc, 1), "wall_s_with_process_start": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--global-batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--out", type=Path, default=Path("/tmp/symile-bench-dist"))
    args = ap.parse_args()
    from symile_data.features.config import FeaturesConfig
    from symile_data.features.tiny_models import write_tiny_models
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    res = {"load_avg_1min_before": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}
    data = m3_shards(args.out / "m3", args.rows, 256)
    text = tiny_text_model(args.out / "xlmr")
    res["train"] = [train_run(data, text, args.out, r, args) for r in (1, 2)]
    res["train_speedup_2_over_1"] = round(res["train"][1]["samples_s"]
                                          / res["train"][0]["samples_s"], 2)
    models = write_tiny_models(args.out / "models", seed=0)
    cfg = FeaturesConfig(image_model=models["image"], image_revision=None,
                         audio_model=models["audio"], audio_revision=None,
                         text_model=models["text"], text_revision=None, batch_size_image=16,
                         batch_size_audio=8, items_per_part=16, device="cpu")
    images, clips = media(args.out / "media", args.images, args.clips)
    n = args.images + args.clips
    res["features"] = [features_run(cfg, images, clips, args.out, r, n) for r in (1, 2)]
    res["features_speedup_2_over_1"] = round(res["features"][1]["items_s"]
                                             / res["features"][0]["items_s"], 2)
    res["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    res["gpu"] = "not measured (no GPU lent to this task)"
    print(json.dumps(res, indent=2))
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
