"""``symile-data m3 import``: the released Symile-M3 (Hub / local Parquet / split CSVs).

Settings come from the ``m3_release`` params section; the flags below override single keys.
The DVC stage ``pipelines/m3_release.py`` runs the same ``IMPORT`` command.
"""
from __future__ import annotations

import argparse
import json

from symile_data.config import from_dict, load_section, to_dict
from symile_data.stage import Command, add_command, run_stage

FLAGS = ("source", "config", "hub_repo", "hub_revision", "cache_dir", "local_dir", "csv_dir",
         "imagenet_root", "common_voice_root", "translations")


def add_args(p: argparse.ArgumentParser) -> None:
    # the profile's file: the main params.yaml has no m3_release section
    p.add_argument("--params", default="profiles/m3-release/params.yaml",
                   help="params file with an m3_release section (default %(default)s)")
    p.add_argument("--out", default="data/m3/release", help="import root (default %(default)s)")
    for name in FLAGS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                       help=f"override m3_release.{name}")


def run(args: argparse.Namespace) -> int:
    from symile_data.m3.release_config import M3ReleaseConfig
    from symile_data.m3.release_import import import_release
    cfg = load_section(M3ReleaseConfig, "m3_release", args.params)
    flags = {k: getattr(args, k) for k in FLAGS if getattr(args, k, None) is not None}
    if flags:
        cfg = from_dict(M3ReleaseConfig, {**to_dict(cfg), **flags},
                        f"{args.params}:m3_release + flags")
    report = import_release(cfg, args.out)
    print(json.dumps({k: v for k, v in report.items()}, indent=1, default=str))
    return 0


def eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default="models/m3-release", help="holds symile/ and clip/")
    p.add_argument("--translations", default="data/m3-release/translations")
    p.add_argument("--out", default="reports/m3-release/metrics.json")
    p.add_argument("--params", default="profiles/m3-release/params.yaml")
    p.add_argument("--device", default=None)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate the Symile and CLIP runs trained on the imported release (no missingness
    sweep, unlike m3_eval)."""
    from pathlib import Path

    from symile_data.e2e.evaluation import evaluate_m3_runs
    from symile_data.train.config import EvalConfig
    evaluate_m3_runs([Path(args.models) / m for m in ("symile", "clip")], args.translations,
                     load_section(EvalConfig, "m3_eval", args.params), args.out,
                     device=args.device)
    return 0


EVAL = Command("m3_release_eval", "evaluate the Symile and CLIP runs on the imported release",
               eval_args, run_eval, file_locks=("out",))   # metrics.json + per_query/
IMPORT = Command("m3_release", "import the released Symile-M3 (Hub, Parquet or CSVs)",
                 add_args, run, locks=("out",))


def main(argv: list[str] | None = None) -> int:
    return run_stage(IMPORT, argv)


def register(m3_sub) -> None:
    add_command(m3_sub, "import", IMPORT)
    add_command(m3_sub, "release-eval", EVAL)
