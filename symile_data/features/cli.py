"""``symile-data features {tiny-models, encode, join}`` subcommands.

The DVC stages ``features_tiny_models``, ``features_m3`` and ``m3_shards`` run the same
``Command`` objects (``TINY_MODELS``, ``ENCODE``, ``JOIN``).
"""
from __future__ import annotations

import argparse
import json

from symile_data.config import add_params_args, load_section
from symile_data.stage import Command, add_command


def _tiny(args: argparse.Namespace) -> int:
    from symile_data.features.config import TinyModelsConfig
    from symile_data.features.tiny_models import write_tiny_models
    seed = args.seed if args.seed is not None else load_section(
        TinyModelsConfig, "features_tiny_models", args.params).seed
    print(json.dumps(write_tiny_models(args.out, seed=seed), indent=2))
    return 0


def _encode(args: argparse.Namespace) -> int:
    from symile_data.features.config import FeaturesConfig
    from symile_data.features.parts import encode_m3_on_dask, encode_m3_parallel
    cfg = load_section(FeaturesConfig, "features_m3", args.params)
    if args.dask_scheduler:
        report = encode_m3_on_dask(cfg, args.images, args.clips, args.samples, args.out,
                                   scheduler=args.dask_scheduler, workers=args.dask_workers,
                                   gpu=args.dask_gpu)
    else:   # one process, or the ranks of a torchrun job (rank 0 merges and reports)
        report = encode_m3_parallel(cfg, args.images, args.clips, args.samples, args.out)
        if report is None:
            return 0
    print(json.dumps({m: {k: r.get(k) for k in ("unique_items", "ok", "failed",
                                                 "dedup_factor", "items_per_s")}
                      for m, r in report["modalities"].items()}, indent=2))
    return 0


def _join(args: argparse.Namespace) -> int:
    from symile_data.features.config import JoinConfig
    from symile_data.features.join import join_m3
    cfg = load_section(JoinConfig, "m3_shards", args.params)
    report = join_m3(args.samples, args.features, args.out, cfg)
    print(json.dumps(report, indent=2))
    return 0


def _tiny_args(t: argparse.ArgumentParser) -> None:
    t.add_argument("--out", default="data/models/tiny", help="directory to write the models into")
    t.add_argument("--seed", type=int, default=None,
                   help="override features_tiny_models.seed of the params file")
    add_params_args(t)


def _encode_args(e: argparse.ArgumentParser) -> None:
    e.add_argument("--images", required=True, help="m3_images table (file or dir)")
    e.add_argument("--clips", required=True, help="m3_clips table (file or dir)")
    e.add_argument("--samples", required=True, help="m3_samples dataset dir or a dir of them")
    e.add_argument("--out", default="data/features/m3", help="feature root")
    e.add_argument("--params", default="params.yaml", help="params file (section features_m3)")
    e.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="split the image/audio parts over a running dask cluster")
    e.add_argument("--dask-workers", type=int, default=2,
                   help="number of part groups (tasks) on the dask cluster")
    e.add_argument("--dask-gpu", action="store_true",
                   help="each task asks for resources GPU=1 (dask worker --resources GPU=1)")


def _join_args(j: argparse.ArgumentParser) -> None:
    j.add_argument("--samples", default="data/m3/samples",
                   help="m3_samples dataset dir or a dir of them")
    j.add_argument("--features", default="data/features/m3",
                   help="feature root written by encode")
    j.add_argument("--out", default="data/m3/shards", help="output root")
    j.add_argument("--params", default="params.yaml", help="params file (section m3_shards)")


TINY_MODELS = Command("features_tiny_models", "write tiny random CLIP/Whisper/XLM-R models",
                      _tiny_args, _tiny, locks=("out",))
ENCODE = Command("features_m3", "encode unique M3 images, clips and texts once", _encode_args,
                 _encode, locks=("out",))
JOIN = Command("m3_shards", "join samples with features into M3 training shards", _join_args,
               _join, locks=("out",))


def register(subparsers) -> None:
    p = subparsers.add_parser("features", help="encoder features: tiny models, encode, join")
    sub = p.add_subparsers(dest="features_command", metavar="ACTION", required=True)
    add_command(sub, "tiny-models", TINY_MODELS)
    add_command(sub, "encode", ENCODE)
    add_command(sub, "join", JOIN)
