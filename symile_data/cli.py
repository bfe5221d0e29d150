"""The ``symile-data`` command line: one subcommand per job, each also a DVC stage.

Each domain package exposes ``register(subparsers)`` in its ``cli`` module; add the module
name to SUBCOMMAND_MODULES below. A subcommand is a ``symile_data.stage.Command`` registered with
``add_command`` (sets ``func``); the DVC stage scripts run the same ``Command`` objects.
Input errors (``symile_data.errors``) print one line and exit 2, with the traceback only under
``--log-level DEBUG``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from symile_data.config import check_override_sections, check_overrides_read, set_cli_overrides
from symile_data.kernels import pin_kernels
from symile_data.stage import add_log_level, configure_logging, guarded

SUBCOMMAND_MODULES = [
    "symile_data.io.cli",
    "symile_data.m3.cli",
    "symile_data.publish.cli",
    "symile_data.features.cli",
    "symile_data.mimic.cli",
    "symile_data.train.cli",
    "symile_data.e2e.cli",
    "symile_data.dvc_deps",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symile-data",
        description="Build, validate, publish and train on Symile-M3 / Symile-MIMIC shards.")
    add_log_level(parser)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="override one params.yaml key for this run (repeatable), "
                             "e.g. --set m3_samples.seed=3")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    pin_kernels()  # before torch / numpy load (the subcommands import them lazily)
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return guarded(_with_overrides, args, args.log_level)


def _with_overrides(args: argparse.Namespace) -> int:
    set_cli_overrides(args.overrides)
    if not args.overrides:
        return int(args.func(args) or 0)
    cmd = f"symile-data {args.func.name}"
    if not hasattr(args, "params"):          # a command without --params reads no section
        check_overrides_read(cmd)
    check_override_sections(args.params)
    rc = int(args.func(args) or 0)
    check_overrides_read(cmd)                # a section the run never read: not applied
    return rc


if __name__ == "__main__":
    sys.exit(main())
