"""``symile-data m3 {demo,translations,images,clips,samples}``: the M3 stages from the shell.

The DVC stages in ``pipelines/m3_*.py`` run the same ``COMMANDS`` (symile_data.stage).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path

from symile_data import stage as stage_runner
from symile_data.config import load_section

# stage -> (params section, default paths)
DEFAULTS = {
    "demo": {"out": "data/m3/demo"},
    "translations": {"out": "data/m3/translations"},
    "images": {"out": "data/m3/images", "translations": "data/m3/translations"},
    "clips": {"out": "data/m3/clips", "translations": "data/m3/translations"},
    "samples": {"out": "data/m3/samples", "translations": "data/m3/translations",
                "images": "data/m3/images", "clips": "data/m3/clips",
                "wds_out": None},     # None: {out}/wds (outputs only under --out)
}
HELP = {"demo": "generate the embedded demo ILSVRC folder (synthetic images)",
        "translations": "load, override and clash-check the class-name translations",
        "images": "decode/resize ImageNet images into the m3_images table",
        "clips": "synthesise / collect speech clips into the m3_clips table",
        "samples": "sample Symile-M3 datasets (one per w and size) as Parquet shards"}


def add_stage_args(p: argparse.ArgumentParser, stage: str) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (section m3_%s)" % stage)
    for name, default in DEFAULTS[stage].items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default,
                       help=f"default {default or '{out}/wds'}")
    if stage in ("images", "clips"):
        p.add_argument("--scheduler", default=None,
                       help="override: local | threads | synchronous | dask scheduler address")


def _config(stage: str, args: argparse.Namespace):
    from symile_data.m3 import config as c
    cls = {"demo": c.M3DemoConfig, "translations": c.M3TranslationsConfig,
           "images": c.M3ImagesConfig, "clips": c.M3ClipsConfig,
           "samples": c.M3SamplesConfig}[stage]
    cfg = load_section(cls, f"m3_{stage}", args.params)
    if getattr(args, "scheduler", None):
        cfg = dataclasses.replace(cfg, scheduler=args.scheduler)
    return cfg


def _summary(report: dict) -> int:
    summary = {k: v for k, v in report.items() if not isinstance(v, (list, dict)) or k in
               ("datasets", "by_language", "classes_without_images")}
    print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    return 0


# One function per stage, each importing only what it runs: a stage's DVC code deps are the
# import closure of what it loads and runs (symile_data.dvc_deps).
def _demo(args: argparse.Namespace) -> int:
    from symile_data.m3.demo import build_demo
    return _summary(build_demo(args.out, _config("demo", args)))


def _translations(args: argparse.Namespace) -> int:
    from symile_data.m3.build import build_translations
    return _summary(build_translations(args.out, _config("translations", args)))


def _images(args: argparse.Namespace) -> int:
    from symile_data.m3.build import build_images
    return _summary(build_images(args.out, _config("images", args), args.translations))


def _clips(args: argparse.Namespace) -> int:
    from symile_data.m3.build import build_clips
    return _summary(build_clips(args.out, _config("clips", args), args.translations))


def _samples(args: argparse.Namespace) -> int:
    from symile_data.m3.samples import build_samples
    wds_out = args.wds_out or Path(args.out) / "wds"   # outputs only under --out
    return _summary(build_samples(args.out, _config("samples", args), args.translations,
                                  args.images, args.clips, wds_out))


RUN = {"demo": _demo, "translations": _translations, "images": _images, "clips": _clips,
       "samples": _samples}


COMMANDS = {stage: stage_runner.Command(f"m3_{stage}", HELP[stage],
                                        functools.partial(add_stage_args, stage=stage),
                                        RUN[stage], locks=("out", "wds_out"))   # wds_out: when given
            for stage in DEFAULTS}


def run_stage(stage: str, argv: list[str] | None = None) -> int:
    """Entry point of ``pipelines/m3_{stage}.py``."""
    return stage_runner.run_stage(COMMANDS[stage], argv)


def register(sub: argparse._SubParsersAction) -> None:
    m3 = sub.add_parser("m3", help="Symile-M3 builder stages")
    m3_sub = m3.add_subparsers(dest="m3_command", metavar="STAGE", required=True)
    for stage, cmd in COMMANDS.items():
        stage_runner.add_command(m3_sub, stage, cmd)
    from symile_data.m3 import release_cli
    release_cli.register(m3_sub)


if __name__ == "__main__":
    sys.exit(run_stage(sys.argv[1], sys.argv[2:]))
