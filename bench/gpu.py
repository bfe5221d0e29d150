"""GPU check: feature-extraction, training and loss throughput of the project's real
architectures (random weights, nothing downloaded); ONE JSON object on stdout, progress on
stderr. Sizes and model builders: bench/gpu_parts.py. How to run and read it: docs/gpu.md.

    python bench/gpu.py > gpu.json     # one GPU; the defaults fit 8 minutes on one H100
    python bench/gpu.py --tiny         # every size shrunk, on CPU, ~10 s (tests/test_bench_gpu.py)

Figures (each measurement: --warmup untimed iterations, then timed ones until --iters or
--seconds, whichever comes first, at least one; CUDA synchronised after every iteration;
peak = torch.cuda.max_memory_allocated over the measurement, weights included):
  features.image  images/s  CLIP ViT-L/14 vision tower, (3, 224, 224) pixels  } fp16 and bf16
  features.audio  clips/s   Whisper-large-v3 encoder, (128, 3000) log-mels    } autocast, batch
  features.text   texts/s   XLM-R large, 48 tokens, mean-pooled               } 32..256
  train.m3, train.mimic  samples/s  one optimiser step of train/loop.py (bf16 autocast, Symile
                 loss, backward, fused AdamW) at params-real.yaml's m3_train / mimic_train
  loss.n, loss.n_squared  tuples/s  Symile forward + backward, M = 3, d = 8192, N = 256..4096;
                 O(N^2) past max_logits (2^28 scores: N >= 1024) is refused as the loss does

Time estimate for the defaults on one H100 (bf16 dense peak ~990 TFLOP/s; assumed achieved:
~400 TFLOP/s for the transformers, ~150 for the ResNets):
  image  ~162 GFLOP/image (24 layers x 257 tokens): 2 amp x (32+64+128+256) images x <= 12
         iterations = 1.9 PFLOP: ~5 s
  audio  ~2.3 TFLOP/clip (32 layers x 1500 frames): batch 256 = 0.6 PFLOP = ~1.5 s per
         iteration, so --seconds caps each size: ~15 s per amp, ~30 s
  text   ~29 GFLOP/text (24 layers x 48 tokens): ~3 s
  train  M3: ~10 GFLOP of loss + a 1-layer text tower per step, bound by AdamW over the 257M
         -entry embedding (~15 ms); MIMIC: ~67 GFLOP/sample (ResNet-50 at 320^2, ResNet-18 on
         5000 x 12, O(N^2) loss) x 280 = 19 TFLOP per step, ~0.13 s: ~15 s both
  loss   O(N): 18 N^2 d FLOP, 2.5 TFLOP at N = 4096 (~10 ms); O(N^2): 6 N^3 d, 6.6 TFLOP at
         N = 512 (~30 ms): ~10 s
  plus CUDA / cuDNN start-up and building the models on the GPU: ~30-60 s. Expected total
  ~2-3 min. Hard caps: per-section budgets (--budget, default 330 s in all) and --max-s
  (450 s); a section past its budget skips its remaining measurements and lists them under
  "skipped" with the reason (also out-of-memory and refused sizes).
A benchmark, not a stage: it does not pin_kernels() (the CPU kernels libraries pick are timed).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]   # bench/ siblings, package

import gpu_parts as P  # noqa: E402
import torch  # noqa: E402
from gpu_clock import Clock, attempt, environment, measure  # noqa: E402

log = logging.getLogger("bench.gpu")
BUDGETS = {"features.image": 60, "features.audio": 90, "features.text": 30, "train.m3": 30,
           "train.mimic": 60, "loss.n": 30, "loss.n_squared": 30}           # seconds
UNITS = {"image": "images", "audio": "clips", "text": "texts"}


def features(args, scale: P.Scale, dev: torch.device, clock: Clock) -> dict:
    return {name: clock.run(f"features.{name}", _feature, name, args, scale, dev, clock)
            for name in UNITS}


def _feature(name: str, args, scale: P.Scale, dev: torch.device, clock: Clock) -> dict:
    """One encoder: fp16 / bf16 autocast x batch sizes; ``best`` = the highest rate."""
    unit, gen = UNITS[name], torch.Generator().manual_seed(0)
    with P.tempdir() as tmp:
        if name == "text":
            enc = P.TextEncoder(scale, dev)
            model, shape, key, cfg = enc.model, (scale.text_len,), "input_ids", scale.xlmr
        else:
            build = P.image_encoder if name == "image" else P.audio_encoder
            enc, model, shape, key = build(scale, dev, tmp)
            cfg = scale.clip if name == "image" else scale.whisper
    entry = {"config": cfg, "params": P.n_params(model), "input_shape": list(shape),
             "attn_implementation": model.config._attn_implementation, "results": []}
    for amp in args.amp:
        enc.amp, prev = amp, None
        for bs in args.batches or scale.batches:
            if name == "text":
                batch = P.text_batch(scale, bs, dev, gen)
            else:
                batch = {key: torch.randn((bs, *shape), generator=gen).to(dev)}
            est = prev[0] * bs / prev[1] if prev else 0.0          # time ~ batch size
            res = attempt(clock, f"{amp} batch {bs}", est, measure,
                          partial(enc.encode, batch), bs, unit, dev, args)
            if res is not None:
                entry["results"].append({"amp": amp, "batch_size": bs, **res})
                prev = (res["wall_s"], bs)
    rates = entry["results"]
    entry["best"] = max(rates, key=lambda r: r[f"{unit}_per_s"]) if rates else None
    return entry


def train(args, scale: P.Scale, dev: torch.device, clock: Clock) -> dict:
    return {kind: clock.run(f"train.{kind}", _train, kind, args, scale, dev, clock)
            for kind in ("m3", "mimic")}


def _train(kind: str, args, scale: P.Scale, dev: torch.device, clock: Clock) -> dict:
    cfg = P.train_config(args.params, kind, scale)
    model, spec = P.build_train_model(kind, cfg, scale, dev)
    batch = P.train_batch(kind, cfg, scale, torch.Generator().manual_seed(0))
    step = P.train_step_fn(model, cfg, batch, dev)
    res = attempt(clock, f"{kind} batch {cfg.batch_size}", 0.0, measure, step,
                  cfg.batch_size, "samples", dev, args)
    return {"spec": spec, "params": P.n_params(model), "batch_size": cfg.batch_size,
            "negatives": cfg.negatives, "lr": cfg.lr, "amp": _amp(dev),
            **(res or {"samples_per_s": None})}


def _amp(dev: torch.device) -> str:
    return "bf16" if dev.type == "cuda" else "none (fp32 on CPU)"       # loop.autocast


def loss(args, scale: P.Scale, dev: torch.device, clock: Clock) -> dict:
    d = args.loss_d or scale.loss_d
    max_logits = scale.max_logits or P.train_config(args.params, "mimic", scale).max_logits
    out = {"M": 3, "d": d, "max_logits": max_logits, "amp": _amp(dev)}
    for negatives, power in (("n", 2), ("n_squared", 3)):     # FLOP ~ N^power
        out[negatives] = clock.run(f"loss.{negatives}", _loss, negatives, power, d,
                                   max_logits, args, scale, dev, clock)
    return out


def _loss(negatives: str, power: int, d: int, max_logits: int, args, scale: P.Scale,
          dev: torch.device, clock: Clock) -> list:
    rows, prev = [], None
    for n in args.loss_n or scale.loss_ns:
        what = f"{negatives} N={n} d={d}"
        if (why := P.refusal(n, negatives, max_logits)) is not None:
            clock.skip(what, f"refused by the loss: {why}")
            continue
        est = prev[0] * (n / prev[1]) ** power if prev else 0.0
        res = attempt(clock, what, est, measure, P.loss_step_fn(n, d, negatives, max_logits,
                                                                  dev), n, "tuples", dev, args)
        if res is not None:
            rows.append({"N": n, **res})
            prev = (res["wall_s"], n)
    return rows


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="= --scale tiny --device cpu")
    ap.add_argument("--scale", choices=("real", "tiny"), default="real")
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--sections", default="features,train,loss")
    ap.add_argument("--amp", default="fp16,bf16",
                    help="feature-extraction autocast dtypes (fp16, bf16, none)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU intra-op threads (default: torch's; tiny: 1)")
    ap.add_argument("--batches", type=_ints, default=None, help="e.g. 32,64,128,256")
    ap.add_argument("--loss-n", type=_ints, default=None, help="e.g. 256,512,1024,2048,4096")
    ap.add_argument("--loss-d", type=int, default=None, help="default 8192")
    ap.add_argument("--warmup", type=int, default=None, help="default 2 (tiny: 1)")
    ap.add_argument("--iters", type=int, default=None, help="default 10 (tiny: 2)")
    ap.add_argument("--seconds", type=float, default=None, help="default 2 (tiny: 0.5)")
    ap.add_argument("--budget", action="append", default=[], metavar="SECTION=S",
                    help=f"per-section seconds; defaults {BUDGETS}")
    ap.add_argument("--max-s", type=float, default=450.0, help="overall cap on measuring")
    ap.add_argument("--params", default=str(ROOT / "params-real.yaml"),
                    help="the *_train sections of the models (reference settings)")
    args = ap.parse_args(argv)
    tiny = args.tiny or args.scale == "tiny"
    args.scale = "tiny" if tiny else "real"
    args.device = args.device or ("cpu" if args.tiny or not torch.cuda.is_available()
                                  else "cuda")
    for k, real, small in (("warmup", 2, 1), ("iters", 10, 2), ("seconds", 2.0, 0.5)):
        if getattr(args, k) is None:
            setattr(args, k, small if tiny else real)
    args.amp = args.amp.split(",")
    if not set(args.amp) <= {"fp16", "bf16", "none"}:
        ap.error(f"--amp {','.join(args.amp)}: expected fp16, bf16 or none")
    if args.threads is None and tiny:
        args.threads = 1          # 2 shared cores: OpenMP spinning made tiny steps 100x slower
    args.budgets = dict(BUDGETS)
    for item in args.budget:
        key, _, val = item.partition("=")
        if key not in BUDGETS:
            ap.error(f"--budget {item}: unknown section (one of {', '.join(BUDGETS)})")
        args.budgets[key] = float(val)
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    args = parse(argv)
    scale = P.TINY if args.scale == "tiny" else P.REAL
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clock = Clock(args.budgets, args.max_s)
    result = {"bench": "gpu", "scale": scale.name, "env": environment(dev),
              "settings": {k: getattr(args, k) for k in ("warmup", "iters", "seconds",
                                                         "budgets", "max_s", "amp", "params")}}
    for name, fn in (("features", features), ("train", train), ("loss", loss)):
        if name in args.sections.split(","):
            result[name] = fn(args, scale, dev, clock)
    result["skipped"], result["errors"] = clock.skipped, clock.errors
    result["wall_s"] = round(time.monotonic() - clock.t0, 1)
    print(json.dumps(result, indent=1))
    return 1 if clock.errors else 0


if __name__ == "__main__":
    sys.exit(main())
