"""``symile-data m3 import``: the released Symile-M3 (Hub / local Parquet / split CSVs).

Settings come from the ``m3_release`` params section; the flags below override single keys.
The DVC stage ``pipelines/m3_release.py`` calls ``run`` with the same arguments.
"""
from __future__ import annotations

import argparse
import json

from symile_data.config import from_dict, load_section, to_dict

FLAGS = ("source", "config", "hub_repo", "hub_revision", "cache_dir", "local_dir", "csv_dir",
         "imagenet_root", "common_voice_root", "translations")


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (section m3_release)")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="m3_release", description=__doc__)
    add_args(p)
    return run(p.parse_args(argv))


def register(m3_sub) -> None:
    p = m3_sub.add_parser("import", help="import the released Symile-M3 (Hub, Parquet or CSVs)")
    add_args(p)
    p.set_defaults(func=run)
