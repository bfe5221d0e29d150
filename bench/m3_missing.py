"""Measure one M3 missingness setting: Symile vs pairwise CLIP at Bernoulli(p) missingness.

Builds (in ``--work``) the M3 samples for w and a custom train size with missingness p (val /
test sizes as given; the test split is complete and, for one w and test size, the same rows
for every train size), encodes their unique items with the demo's tiny encoders
(``features_m3`` params), joins the training shards, trains each method with the
``--section`` params (default ``m3_missing_train``) overridden by the flags, evaluates the
best checkpoints on the test split and prints JSON: per run accuracy, bootstrap 95% interval,
in-text accuracy, best epoch, and the training process's CPU seconds (user + sys from
``resource.getrusage``, so other jobs on the shared cores do not count). Needs the demo's M3
inputs (``dvc repro m3_shards``: translations, images, clips, tiny models).

Usage (minutes per setting):
  python bench/m3_missing.py --work /tmp/m3miss --w 2 --train-rows 16000 --p 0.5 \
      --epochs 30 --lr 3e-3 --val-every 1 [--methods symile clip] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import sys
import time
from pathlib import Path

from symile_data.config import load_section
from symile_data.e2e.evaluation import evaluate_m3_runs
from symile_data.features.config import FeaturesConfig, JoinConfig
from symile_data.features.join import join_m3
from symile_data.features.m3 import encode_m3
from symile_data.m3.config import M3SamplesConfig
from symile_data.m3.samples import build_samples
from symile_data.train.config import EvalConfig, M3TrainConfig
from symile_data.train.loop import train


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _value(text: str):
    import yaml
    return yaml.safe_load(text)


def build_data(args: argparse.Namespace, work: Path) -> Path:
    """Samples -> features -> shards for (w, train rows, p); returns the dataset dir."""
    size = f"t{args.train_rows}"
    scfg = dataclasses.replace(
        load_section(M3SamplesConfig, "m3_samples", args.params), ws=(args.w,), sizes=(size,),
        custom_sizes={size: [args.train_rows, args.val_rows, args.test_rows]},
        missing_p=args.p, embed_media=False, wds_export=False)
    scfg.validate()
    name = scfg.dataset_name(args.w, size)
    root = work / "data" / name
    shards = root / "shards" / name
    if (shards / "manifest.json").exists():
        return shards
    build_samples(root / "samples", scfg, args.translations, args.images, args.clips)
    encode_m3(load_section(FeaturesConfig, "features_m3", args.params), args.images,
              args.clips, root / "samples", root / "features")
    join_m3(root / "samples", root / "features", root / "shards",
            load_section(JoinConfig, "m3_shards", args.params))
    return shards


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="m3_missing_train")
    ap.add_argument("--w", type=int, default=2)
    ap.add_argument("--train-rows", type=int, default=4000)
    ap.add_argument("--val-rows", type=int, default=400)
    ap.add_argument("--test-rows", type=int, default=400)
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--val-every", type=int)
    ap.add_argument("--methods", nargs="+", default=["symile", "clip"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other key of the training section")
    ap.add_argument("--tag", default="", help="run-folder suffix (keeps settings apart)")
    ap.add_argument("--translations", default="data/m3/translations")
    ap.add_argument("--images", default="data/m3/images")
    ap.add_argument("--clips", default="data/m3/clips")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    work = args.work
    t0, c0 = time.perf_counter(), cpu_s()
    dataset = build_data(args, work)
    data_cpu = cpu_s() - c0
    over = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr),
                              ("weight_decay", args.weight_decay),
                              ("val_every_epochs", args.val_every)) if v is not None}
    over.update({k: _value(v) for k, v in (s.split("=", 1) for s in args.set)})
    cfg = dataclasses.replace(load_section(M3TrainConfig, args.section, args.params), **over)
    cfg.validate()
    runs, cpu = [], {}
    for method in args.methods:
        run = work / "runs" / f"{dataset.name}{args.tag}" / method
        c1 = cpu_s()
        train(dataset, run, "m3", method, cfg, device="cpu")
        cpu[method] = cpu_s() - c1
        runs.append(run)
    report = evaluate_m3_runs(runs, args.translations,
                              load_section(EvalConfig, "m3_eval", args.params),
                              work / "reports" / f"{dataset.name}{args.tag}.json", device="cpu")
    out = {"dataset": dataset.name, "w": args.w, "train_rows": args.train_rows, "p": args.p,
           "config": {k: getattr(cfg, k) for k in ("epochs", "lr", "weight_decay", "batch_size",
                                                   "d", "val_every_epochs",
                                                   "logit_scale_init")},
           "data_cpu_s": round(data_cpu, 1), "wall_s": round(time.perf_counter() - t0, 1),
           "runs": [{"method": r["method"], "accuracy": round(r["accuracy"], 4),
                     "ci95": [round(x, 4) for x in r["ci95"]],
                     "in_text": round(r["in_text_accuracy"], 4), "best_epoch": r["best_epoch"],
                     "train_cpu_s": round(cpu[r["method"]], 1)} for r in report["runs"]]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
