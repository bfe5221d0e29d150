"""``symile-data mimic {synth,labevents,cohort,shards}``.

The DVC stages ``pipelines/mimic_{synth,cohort,shards}.py`` run the same ``Command`` objects
(``SYNTH``, ``COHORT``, ``SHARDS``): one argument definition, one set of defaults (the demo
layout under data/mimic).
"""
from __future__ import annotations

import argparse
import json

from symile_data.config import DEFAULT_PARAMS, from_dict, load_section, to_dict
from symile_data.mimic.config import CohortConfig, ShardsConfig, SynthConfig
from symile_data.stage import Command, add_command

RAW = "data/mimic/raw"


def _cfg(cls, section: str, params: str, **flags):
    """The params section (strict, with the global --set overrides), then this command's own
    flags (--admissions, --seed, --formats) on top, checked as strictly."""
    cfg = load_section(cls, section, params)
    flags = {k: v for k, v in flags.items() if v is not None}
    return from_dict(cls, {**to_dict(cfg), **flags}, f"{params}:{section} + flags") if flags else cfg


def _synth(args) -> int:
    from symile_data.mimic.synth import synth_tree
    cfg = _cfg(SynthConfig, "mimic_synth", args.params, admissions=args.admissions,
               seed=args.seed)
    print(json.dumps(synth_tree(args.out, cfg), indent=2))
    return 0


def _labevents(args) -> int:
    from symile_data.mimic.labevents import convert_labevents
    print(convert_labevents(args.csv, args.out))
    return 0


def _cohort(args) -> int:
    from symile_data.mimic.cohort import build_cohort
    cfg = _cfg(CohortConfig, "mimic_cohort", args.params, seed=args.seed)
    if getattr(args, "from_release", None):
        from symile_data.mimic.release import cohort_from_release
        print(json.dumps(cohort_from_release(args.from_release, args.mimic_iv, args.ecg,
                                             args.cxr, args.out, cfg), indent=2))
        return 0
    print(json.dumps(build_cohort(args.mimic_iv, args.ecg, args.cxr, args.out, cfg), indent=2))
    return 0


def _shards(args) -> int:
    from symile_data.mimic.build import build_shards
    cfg = _cfg(ShardsConfig, "mimic_shards", args.params, seed=args.seed,
               formats=args.formats.split(",") if args.formats else None)
    print(json.dumps(build_shards(args.cohort, args.ecg, args.cxr, args.out, cfg), indent=2))
    return 0


def _params(p: argparse.ArgumentParser, section: str) -> None:
    p.add_argument("--params", default=str(DEFAULT_PARAMS),
                   help=f"params file (section {section})")


def _synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=RAW)
    p.add_argument("--admissions", type=int, help="override mimic_synth.admissions")
    p.add_argument("--seed", type=int, help="override mimic_synth.seed")
    _params(p, "mimic_synth")


def _labevents_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", required=True)
    p.add_argument("--out", required=True)


def _sources(p: argparse.ArgumentParser, mimic_iv: bool) -> None:
    if mimic_iv:
        p.add_argument("--mimic-iv", default=f"{RAW}/mimic-iv", help="directory holding hosp/")
    p.add_argument("--ecg", default=f"{RAW}/mimic-iv-ecg",
                   help="MIMIC-IV-ECG root (record_list.csv)")
    p.add_argument("--cxr", default=f"{RAW}/mimic-cxr-jpg",
                   help="MIMIC-CXR-JPG root (metadata csv.gz)")


def _cohort_args(p: argparse.ArgumentParser) -> None:
    _sources(p, mimic_iv=True)
    p.add_argument("--out", default="data/mimic/cohort")
    p.add_argument("--seed", type=int, help="override mimic_cohort.seed")
    p.add_argument("--from-release", metavar="DIR", help="pin cohort + splits to the released "
                   "CSVs in DIR (symile_mimic_data.csv, train/val/test.csv)")
    _params(p, "mimic_cohort")


def _shards_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cohort", default="data/mimic/cohort",
                   help="directory holding cohort.parquet")
    _sources(p, mimic_iv=False)
    p.add_argument("--out", default="data/mimic/shards")
    p.add_argument("--seed", type=int, help="override mimic_shards.seed")
    p.add_argument("--formats", help="comma list of parquet,wds (override mimic_shards.formats)")
    _params(p, "mimic_shards")


SYNTH = Command("mimic_synth", "write a MIMIC-layout tree (hosp, ECG, CXR-JPG)", _synth_args,
                _synth, locks=("out",))
LABEVENTS = Command("mimic_labevents", "stream labevents.csv.gz into Parquet", _labevents_args,
                    _labevents)
COHORT = Command("mimic_cohort", "time-window cohort + patient-disjoint splits", _cohort_args,
                 _cohort, locks=("out",))
SHARDS = Command("mimic_shards", "preprocess the cohort, retrieval sets, shards (mimic_derived)",
                 _shards_args, _shards, locks=("out",))


def register(subparsers) -> None:
    p = subparsers.add_parser("mimic", help="Symile-MIMIC: generator, cohort, shards")
    sub = p.add_subparsers(dest="mimic_command", metavar="STEP", required=True)
    for name, cmd in (("synth", SYNTH), ("labevents", LABEVENTS), ("cohort", COHORT),
                      ("shards", SHARDS)):
        add_command(sub, name, cmd)
    from symile_data.mimic.release_cli import register_import
    register_import(sub)
