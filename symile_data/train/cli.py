"""``symile-data train | evaluate | xor-train | xor-eval | xor-plot``.

Settings come from params.yaml sections (``{model}_train``, ``{model}_eval`` by default).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from symile_data.config import load_section
from symile_data.io.atomic import atomic_write_json, atomic_write_npy
from symile_data.stage import Command, add_command

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")


def cmd_train(args) -> int:
    from symile_data.train.config import TRAIN_CONFIGS
    from symile_data.train.loop import train
    cfg = load_section(TRAIN_CONFIGS[args.model], args.section or f"{args.model}_train",
                       args.params)
    done = train(args.dataset_dir, args.out, args.model, args.loss, cfg, device=args.device)
    print(json.dumps({k: done[k] for k in ("best_epoch", "best_val_loss", "steps")}))
    return 0


def cmd_evaluate(args) -> int:
    from symile_data.train import dist
    if dist.env_world_size() > 1 and dist.env_rank() != 0:
        log.info("evaluate under torchrun: rank 0 evaluates, this rank exits")
        return 0
    from symile_data.train.config import EvalConfig
    from symile_data.train.evaluate import evaluate_run
    from symile_data.train.plots import plot_accuracy
    cfg = load_section(EvalConfig, args.section or f"{args.model}_eval", args.params)
    metrics, correct = evaluate_run(args.run_dir, args.dataset_dir, cfg,
                                    retrieval_dir=args.retrieval, device=args.device)
    out = Path(args.out)
    atomic_write_npy(out / "per_query.npy", correct.astype(np.int8))
    atomic_write_json(out / "metrics.json", metrics)
    plot_accuracy(metrics, out / "accuracy.png")
    print(json.dumps({k: metrics[k] for k in ("accuracy", "bootstrap_mean", "bootstrap_std")}))
    return 0


def cmd_xor_train(args) -> int:
    from symile_data.train.config import XorTrainConfig
    from symile_data.train.xor_experiment import train_xor
    cfg = load_section(XorTrainConfig, "xor_train", args.params)
    train_xor(args.data, args.models, cfg, ps=args.p, methods=args.method, device=args.device)
    return 0


def cmd_xor_eval(args) -> int:
    from symile_data.train.config import EvalConfig, XorTrainConfig
    from symile_data.train.xor_experiment import evaluate_xor, table_markdown
    report = evaluate_xor(args.data, args.models,
                          load_section(XorTrainConfig, "xor_train", args.params),
                          load_section(EvalConfig, "xor_eval", args.params), args.out,
                          device=args.device)
    print(table_markdown(report))
    return 0


def cmd_xor_plot(args) -> int:
    from symile_data.train.plots import plot_xor
    plot_xor(args.metrics, args.out)
    return 0


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset-dir", required=True, help="dataset dir with manifest.json")
    p.add_argument("--model", required=True, choices=["xor", "m3", "mimic"])
    p.add_argument("--loss", required=True, choices=["symile", "clip"])
    p.add_argument("--out", required=True, help="run dir (checkpoints, metrics.jsonl)")
    p.add_argument("--section", default=None, help="params section (default {model}_train)")
    _common(p)


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", required=True)
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--model", required=True, choices=["xor", "m3", "mimic"],
                   help="selects the params section {model}_eval")
    p.add_argument("--retrieval", default=None, help="MIMIC retrieval-set dataset dir")
    p.add_argument("--out", required=True, help="dir for metrics.json, per_query.npy, png")
    p.add_argument("--section", default=None, help="params section (default {model}_eval)")
    _common(p)


def register(sub) -> None:
    add_command(sub, "train", TRAIN)
    add_command(sub, "evaluate", EVALUATE)
    add_command(sub, "xor-train", XOR_TRAIN)
    add_command(sub, "xor-eval", XOR_EVAL)
    add_command(sub, "xor-plot", XOR_PLOT)


def _xor_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="data/xor", help="root of the per-p dataset dirs")
    p.add_argument("--models", default="models/xor", help="root of the run dirs")
    p.add_argument("--p", type=float, action="append", help="only this p (repeatable)")
    p.add_argument("--method", action="append", choices=["symile", "clip"])
    _common(p)


def _xor_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="data/xor")
    p.add_argument("--models", default="models/xor")
    p.add_argument("--out", default="reports/xor/metrics.json")
    _common(p)


def _xor_plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", default="reports/xor/metrics.json")
    p.add_argument("--out", default="plots/xor.png")


# One writer per run / report folder (a second run on the same --out stops at once, naming
# the lock). Under torchrun only rank 0 locks (io.lock).
TRAIN = Command("train", "train a Symile / CLIP model on Parquet shards", _train_args,
                cmd_train, locks=("out",))
EVALUATE = Command("evaluate", "zero-shot evaluation of a trained run + bootstrap",
                   _evaluate_args, cmd_evaluate, locks=("out",))
# the DVC stages pipelines/xor_{train,eval,plot}.py run these same commands; xor_train is a
# matrix stage sharing the models root: each run dir is locked by train_xor instead.
# xor_plot writes one file atomically (nothing to lock).
XOR_TRAIN = Command("xor_train", "synthetic XOR: train Symile / CLIP for each p",
                    _xor_train_args, cmd_xor_train)
XOR_EVAL = Command("xor_eval", "synthetic XOR: evaluate every run -> metrics.json",
                   _xor_eval_args, cmd_xor_eval, file_locks=("out",))
XOR_PLOT = Command("xor_plot", "synthetic XOR: accuracy against p -> PNG", _xor_plot_args,
                   cmd_xor_plot)
