"""``symile-data features {tiny-models, encode, join}`` subcommands."""
from __future__ import annotations

import argparse
import json

from symile_data.config import load_section


def _tiny(args: argparse.Namespace) -> int:
    from symile_data.features.tiny_models import write_tiny_models
    print(json.dumps(write_tiny_models(args.out, seed=args.seed), indent=2))
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


def register(subparsers) -> None:
    p = subparsers.add_parser("features", help="encoder features: tiny models, encode, join")
    sub = p.add_subparsers(dest="features_command", metavar="ACTION", required=True)

    t = sub.add_parser("tiny-models", help="write tiny random CLIP/Whisper/XLM-R models")
    t.add_argument("--out", required=True, help="directory to write the models into")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_tiny)

    e = sub.add_parser("encode", help="encode unique M3 images, clips and texts once")
    e.add_argument("--images", required=True, help="m3_images table (file or dir)")
    e.add_argument("--clips", required=True, help="m3_clips table (file or dir)")
    e.add_argument("--samples", required=True, help="m3_samples dataset dir or a dir of them")
    e.add_argument("--out", required=True, help="feature root (e.g. data/features/m3)")
    e.add_argument("--params", default="params.yaml", help="params file (section features_m3)")
    e.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="split the image/audio parts over a running dask cluster")
    e.add_argument("--dask-workers", type=int, default=2,
                   help="number of part groups (tasks) on the dask cluster")
    e.add_argument("--dask-gpu", action="store_true",
                   help="each task asks for resources GPU=1 (dask worker --resources GPU=1)")
    e.set_defaults(func=_encode)

    j = sub.add_parser("join", help="join samples with features into M3 training shards")
    j.add_argument("--samples", required=True, help="m3_samples dataset dir or a dir of them")
    j.add_argument("--features", required=True, help="feature root written by encode")
    j.add_argument("--out", required=True, help="output root (e.g. data/m3/shards)")
    j.add_argument("--params", default="params.yaml", help="params file (section m3_shards)")
    j.set_defaults(func=_join)
