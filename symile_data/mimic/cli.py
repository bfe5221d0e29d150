"""``symile-data mimic {synth,labevents,cohort,shards}``."""
from __future__ import annotations

import argparse
import json

from symile_data.config import DEFAULT_PARAMS, from_dict, load_section, to_dict
from symile_data.mimic.config import CohortConfig, ShardsConfig, SynthConfig


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


def register(subparsers) -> None:
    p = subparsers.add_parser("mimic", help="Symile-MIMIC: generator, cohort, shards")
    sub = p.add_subparsers(dest="mimic_command", metavar="STEP", required=True)
    s = sub.add_parser("synth", help="write a MIMIC-layout tree (hosp, ECG, CXR-JPG)")
    s.add_argument("--out", required=True)
    s.add_argument("--admissions", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--params", default=str(DEFAULT_PARAMS),
                   help="params file (section mimic_synth)")
    s.set_defaults(func=_synth)
    s = sub.add_parser("labevents", help="stream labevents.csv.gz into Parquet")
    s.add_argument("--csv", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=_labevents)
    s = sub.add_parser("cohort", help="time-window cohort + patient-disjoint splits")
    s.add_argument("--mimic-iv", required=True, help="directory holding hosp/")
    s.add_argument("--ecg", required=True, help="MIMIC-IV-ECG root (record_list.csv)")
    s.add_argument("--cxr", required=True, help="MIMIC-CXR-JPG root (metadata csv.gz)")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int)
    s.add_argument("--params", default=str(DEFAULT_PARAMS),
                   help="params file (section mimic_cohort)")
    s.add_argument("--from-release", metavar="DIR", help="pin cohort + splits to the released "
                   "CSVs in DIR (symile_mimic_data.csv, train/val/test.csv)")
    s.set_defaults(func=_cohort)
    from symile_data.mimic.release_cli import register_import
    register_import(sub)
    s = sub.add_parser("shards", help="preprocess the cohort, retrieval sets, shards")
    s.add_argument("--cohort", required=True, help="directory holding cohort.parquet")
    s.add_argument("--ecg", required=True)
    s.add_argument("--cxr", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int)
    s.add_argument("--formats", help="comma list of parquet,wds")
    s.add_argument("--params", default=str(DEFAULT_PARAMS),
                   help="params file (section mimic_shards)")
    s.set_defaults(func=_shards)
