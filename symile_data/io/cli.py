"""Foundation subcommands: ``schemas`` and ``validate``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from symile_data import schema
from symile_data.config import add_params_args, load_section
from symile_data.io.atomic import atomic_write_json
from symile_data.io.lock import folder_lock
from symile_data.io.validate import validate_tree
from symile_data.stage import Command, add_command
from symile_data.xor import XorDataConfig, build_xor_datasets

SCHEMAS_DIR = Path("schemas")


def _schemas(args: argparse.Namespace) -> int:
    if args.write:
        with folder_lock(args.dir):          # one writer of the schemas folder
            for p in schema.write_schemas(args.dir):
                print(p)
        return 0
    if not Path(args.dir).is_dir():
        raise FileNotFoundError(f"{args.dir}: no schemas directory (write it with "
                                f"`symile-data schemas --write --dir {args.dir}`)")
    problems = schema.diff_schemas(args.dir)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{args.dir}: {len(schema.names())} schemas match symile_data/schema.py")
    return 1 if problems else 0


def _validate(args: argparse.Namespace) -> int:
    reports = validate_tree(args.dir)
    bad = [r for r in reports if not r["ok"]]
    for r in reports:
        if r["contract"] == "skipped":
            print(f"{r['dataset']}: skipped, {r['reason']}")
            continue
        status = "ok" if r["ok"] else f"{len(r['problems'])} problem(s)"
        print(f"{r['dataset']}: {r['contract']} {status} {json.dumps(r['splits'])}")
        for p in r["problems"]:
            print(f"  - {p}")
    if args.report:
        atomic_write_json(args.report, reports)
    return 1 if bad else 0


def _xor_data(args: argparse.Namespace) -> int:
    cfg = load_section(XorDataConfig, "xor_data", args.params)
    build_xor_datasets(args.out, cfg)
    return 0


def _xor_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("data/xor"))
    add_params_args(p)


def _schemas_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--write", action="store_true", help="regenerate the JSON files")
    p.add_argument("--dir", type=Path, default=SCHEMAS_DIR)


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="a dataset dir or a root holding several")
    p.add_argument("--report", type=Path, help="also write the report as JSON here")


XOR_DATA = Command("xor_data", "synthetic XOR datasets, one per p (stage xor_data)",
                   _xor_data_args, _xor_data, locks=("out",))
SCHEMAS = Command("schemas", "write or check schemas/*.json against symile_data/schema.py",
                  _schemas_args, _schemas)
VALIDATE = Command("validate", "check every output folder under DIR against its contract",
                   _validate_args, _validate)


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "xor-data", XOR_DATA)
    add_command(sub, "schemas", SCHEMAS)
    add_command(sub, "validate", VALIDATE)
