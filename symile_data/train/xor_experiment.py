"""The paper's synthetic experiment (figure 3): Symile and CLIP for each p, evaluated on the
test split, accuracy against p with bootstrap spread, and the plot.

Layout: data ``{data_root}/p{p:.1f}``, runs ``{models_root}/{method}-p{p:.1f}``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from symile_data.io.atomic import atomic_write_json, atomic_write_npy, read_json
from symile_data.io.lock import folder_lock
from symile_data.train.config import EvalConfig, XorTrainConfig
from symile_data.train.evaluate import evaluate_run
from symile_data.train.loop import train
from symile_data.xor import p_dirname

log = logging.getLogger(__name__)


def run_name(method: str, p: float) -> str:
    return f"{method}-{p_dirname(p)}"


def train_xor(data_root: str | Path, models_root: str | Path, cfg: XorTrainConfig,
              ps: list[float] | None = None, methods: list[str] | None = None,
              device: str | None = None) -> dict[str, Any]:
    """Train every (method, p) asked for (default: all of cfg); finished runs are skipped."""
    out = {}
    for p in (cfg.ps if ps is None else ps):
        for method in (cfg.methods if methods is None else methods):
            name = run_name(method, p)
            with folder_lock(Path(models_root) / name):   # one writer per run dir
                out[name] = train(Path(data_root) / p_dirname(p), Path(models_root) / name,
                                  "xor", method, cfg, device=device)
    return out


def evaluate_xor(data_root: str | Path, models_root: str | Path, train_cfg: XorTrainConfig,
                 cfg: EvalConfig, out_json: str | Path, device: str | None = None
                 ) -> dict[str, Any]:
    """Evaluate all runs; writes ``out_json`` and per-query results next to it."""
    out_json = Path(out_json)
    runs = []
    for method in train_cfg.methods:
        for p in train_cfg.ps:
            name = run_name(method, p)
            metrics, correct = evaluate_run(Path(models_root) / name,
                                            Path(data_root) / p_dirname(p), cfg, device=device)
            atomic_write_npy(out_json.parent / "per_query" / f"{name}.npy",
                             correct.astype(np.int8))
            runs.append({"method": method, "p": p, **{k: v for k, v in metrics.items()
                                                      if k not in ("run_dir", "model")}})
            log.info("%s: accuracy %.4f", name, metrics["accuracy"])
    d_v = read_json(Path(data_root) / p_dirname(train_cfg.ps[0]) / "manifest.json"
                    ).get("extra", {}).get("d_v")
    report = {"chance": (1.0 / 2 ** d_v) if d_v else None, "d_v": d_v, "runs": runs}
    atomic_write_json(out_json, report)
    return report


def table_markdown(report: dict[str, Any]) -> str:
    """Markdown table: p rows, one column per method (mean accuracy +- bootstrap std)."""
    methods = sorted({r["method"] for r in report["runs"]}, key=["symile", "clip"].index)
    ps = sorted({r["p"] for r in report["runs"]})
    cell = {(r["method"], r["p"]): r for r in report["runs"]}
    lines = ["| p | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for p in ps:
        vals = [f"{cell[m, p]['bootstrap_mean']:.3f} ± {cell[m, p]['bootstrap_std']:.3f}"
                for m in methods]
        lines.append(f"| {p:.1f} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
