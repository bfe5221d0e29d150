"""``symile-data e2e missing | eval-m3 | eval-mimic | validate | report``: the end-to-end stages.

The DVC stages (``pipelines/m3_missing.py``, ``m3_eval.py``, ``mimic_eval.py``,
``validate_all.py``, ``report.py``) call ``run_stage`` with the same arguments. The training
stages ``m3_train`` / ``mimic_train`` are ``symile-data train`` (symile_data.train.cli).
"""
from __future__ import annotations

import argparse
import functools
import json
import sys

from symile_data import stage as stage_runner
from symile_data.config import load_section

HELP = {"missing": "M3 missingness variant for one p: samples + training shards",
        "eval-m3": "evaluate the M3 runs (main + missingness sweep) -> metrics JSON",
        "eval-mimic": "evaluate the MIMIC runs on the retrieval sets -> metrics JSON",
        "validate": "validate every shard output under the given roots -> JSON report",
        "report": "reports/results.md + PNG plots from the metrics"}
METHODS = ("symile", "clip")


def _args(p: argparse.ArgumentParser, stage: str) -> None:
    p.add_argument("--params", default="params.yaml")
    a = p.add_argument
    if stage == "missing":
        a("--p", type=float, required=True, help="one value of m3_missing.ps")
        a("--translations", default="data/m3/translations")
        a("--images", default="data/m3/images")
        a("--clips", default="data/m3/clips")
        a("--features", default="data/features/m3")
        a("--samples-out", default="data/m3/samples_miss")
        a("--out", default="data/m3/shards_miss")
    elif stage == "eval-m3":
        a("--models", default="models/m3", help="runs {method} of the complete dataset")
        a("--missing-models", default="models/m3_missing",
          help="runs {method}-p{p} of the missingness sweep")
        a("--translations", default="data/m3/translations")
        a("--out", default="reports/m3/metrics.json")
    elif stage == "eval-mimic":
        a("--models", default="models/mimic")
        a("--retrieval", default="data/mimic/shards/symile-mimic-retrieval")
        a("--out", default="reports/mimic/metrics.json")
    elif stage == "validate":
        a("roots", nargs="+", help="shard roots (dataset dirs found below each)")
        a("--out", default="reports/validate.json")
    else:
        a("--xor", default="reports/xor/metrics.json")
        a("--m3", default="reports/m3/metrics.json")
        a("--mimic", default="reports/mimic/metrics.json")
        a("--validation", default="reports/validate.json")
        a("--xor-png", default="plots/xor.png")
        a("--out", default="reports/results.md")
        a("--accuracy-png", default="plots/accuracy.png")
        a("--missing-png", default="plots/m3_missing.png")
    if stage in ("eval-m3", "eval-mimic"):
        a("--device", default=None, help="torch device (default: cuda if available)")


# One function per stage, each importing only what it runs: a stage's DVC code deps are the
# import closure of what it loads and runs (symile_data.dvc_deps).
def _missing(args: argparse.Namespace) -> int:
    from symile_data.e2e.config import M3MissingConfig
    from symile_data.e2e.missing import build_missing_variant
    from symile_data.features.config import JoinConfig
    from symile_data.m3.config import M3SamplesConfig
    return _print(build_missing_variant(
        args.p, load_section(M3MissingConfig, "m3_missing", args.params),
        load_section(M3SamplesConfig, "m3_samples", args.params),
        load_section(JoinConfig, "m3_shards", args.params), args.translations, args.images,
        args.clips, args.features, args.samples_out, args.out))


def _eval_m3(args: argparse.Namespace) -> int:
    from pathlib import Path

    from symile_data.e2e.config import M3MissingConfig
    from symile_data.e2e.evaluation import evaluate_m3_runs
    from symile_data.e2e.missing import p_dir
    from symile_data.train.config import EvalConfig
    sweep = load_section(M3MissingConfig, "m3_missing", args.params)
    runs = [Path(args.models) / m for m in METHODS] + [
        Path(args.missing_models) / f"{m}-{p_dir(p)}" for p in sweep.ps for m in METHODS]
    return _print(evaluate_m3_runs(runs, args.translations,
                                   load_section(EvalConfig, "m3_eval", args.params), args.out,
                                   device=args.device))


def _eval_mimic(args: argparse.Namespace) -> int:
    from pathlib import Path

    from symile_data.e2e.evaluation import evaluate_mimic_runs
    from symile_data.train.config import EvalConfig
    return _print(evaluate_mimic_runs([Path(args.models) / m for m in METHODS], args.retrieval,
                                      load_section(EvalConfig, "mimic_eval", args.params),
                                      args.out, device=args.device))


def _validate(args: argparse.Namespace) -> int:
    from symile_data.e2e.validate import validate_outputs
    out = validate_outputs(args.roots, args.out)
    return _print({"n_datasets": out["n_datasets"], "n_bad": out["n_bad"]})


def _report(args: argparse.Namespace) -> int:
    from symile_data.e2e.config import ReportConfig
    from symile_data.e2e.report import write_report
    return _print(str(write_report(load_section(ReportConfig, "report", args.params), args.xor,
                                   args.m3, args.mimic, args.validation, args.xor_png, args.out,
                                   args.accuracy_png, args.missing_png)))


def _print(out) -> int:
    if isinstance(out, dict) and "runs" in out:
        out = [{k: r[k] for k in ("run", "accuracy", "ci95", "in_text_accuracy") if k in r}
               for r in out["runs"]]
    print(json.dumps(out, indent=1, default=str))
    return 0


RUN = {"missing": _missing, "eval-m3": _eval_m3, "eval-mimic": _eval_mimic,
       "validate": _validate, "report": _report}


def _train_args(ap: argparse.ArgumentParser, kind: str) -> None:
    ap.add_argument("--dataset", required=True, help="training dataset dir (manifest.json)")
    ap.add_argument("--method", required=True, choices=list(METHODS))
    ap.add_argument("--out", required=True, help="run dir")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default=f"{kind}_train",
                    help=f"params section with the training settings (default {kind}_train)")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available)")


def _train(kind: str, args: argparse.Namespace) -> int:
    """Same as ``symile-data train --model KIND --loss METHOD``, settings from section
    ``{kind}_train`` (the ``m3_train`` / ``mimic_train`` DVC stages, matrix over method;
    ``--section`` picks another section of the same dataclass, e.g. ``m3_missing_train``)."""
    from symile_data.train.config import TRAIN_CONFIGS
    from symile_data.train.loop import train
    train(args.dataset, args.out, kind, args.method,
          load_section(TRAIN_CONFIGS[kind], args.section, args.params), device=args.device)
    return 0


STAGE_NAMES = {"missing": "m3_missing", "eval-m3": "m3_eval", "eval-mimic": "mimic_eval",
               "validate": "validate_all", "report": "report"}
# eval-m3 / eval-mimic write metrics.json with per_query/ beside it: that folder is locked.
# missing is a matrix stage sharing its roots: build_missing_variant locks its p folders.
# validate and report write single files atomically.
COMMANDS = {stage: stage_runner.Command(STAGE_NAMES[stage], HELP[stage],
                                        functools.partial(_args, stage=stage),
                                        RUN[stage],
                                        file_locks=("out",) if stage.startswith("eval") else ())
            for stage in HELP}
TRAIN = {kind: stage_runner.Command(f"{kind}_train", f"train Symile or CLIP on the {kind} "
                                    f"shards (settings from section {kind}_train)",
                                    functools.partial(_train_args, kind=kind),
                                    functools.partial(_train, kind),
                                    locks=("out",))
         for kind in ("m3", "mimic")}


def run_stage(stage: str, argv: list[str] | None = None) -> int:
    """Entry point of the end-to-end DVC stages in ``pipelines/``."""
    return stage_runner.run_stage(COMMANDS[stage], argv)


def train_stage(kind: str, argv: list[str] | None = None) -> int:
    """Entry point of the ``m3_train`` / ``mimic_train`` DVC stages."""
    return stage_runner.run_stage(TRAIN[kind], argv)


def register(sub: argparse._SubParsersAction) -> None:
    e2e = sub.add_parser("e2e", help="end-to-end stages: M3 missingness, evaluation, report")
    e2e_sub = e2e.add_subparsers(dest="e2e_command", metavar="STAGE", required=True)
    for stage, cmd in COMMANDS.items():
        stage_runner.add_command(e2e_sub, stage, cmd)
    for kind, cmd in TRAIN.items():
        stage_runner.add_command(e2e_sub, f"train-{kind}", cmd)


if __name__ == "__main__":
    sys.exit(run_stage(sys.argv[1], sys.argv[2:]))
