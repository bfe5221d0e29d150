"""The ``symile-data`` command line: one subcommand per job, each also a DVC stage.

Each domain package exposes ``register(subparsers)`` in its ``cli`` module; add the module
name to SUBCOMMAND_MODULES below. A registered subcommand sets ``func`` (``args -> int``).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from symile_data.config import ConfigError, check_override_sections, set_cli_overrides

SUBCOMMAND_MODULES = [
    "symile_data.io.cli",
    "symile_data.m3.cli",
    "symile_data.publish.cli",
    "symile_data.features.cli",
    "symile_data.mimic.cli",
    "symile_data.train.cli",
    "symile_data.e2e.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symile-data",
        description="Build, validate, publish and train on Symile-M3 / Symile-MIMIC shards.")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="override one params.yaml key for this run (repeatable), "
                             "e.g. --set m3_samples.seed=3")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        set_cli_overrides(args.overrides)
        if args.overrides:
            check_override_sections(getattr(args, "params", None) or "params.yaml")
        return int(args.func(args) or 0)
    except ConfigError as e:  # configuration problems: one clear line, no traceback
        print(f"configuration error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
