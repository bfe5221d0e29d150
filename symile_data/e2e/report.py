"""Results report: ``reports/results.md`` and PNG plots from the evaluation metrics.

Inputs (JSON written by the evaluation stages): XOR ``{"chance", "d_v", "runs": [{method, p,
accuracy, bootstrap_mean, bootstrap_std, ci95, ...}]}``, M3 and MIMIC (symile_data.e2e.evaluation)
and the validation report. Plots: accuracy per method and dataset with bootstrap 95% intervals,
M3 accuracy against missingness p; the XOR figure is the ``xor_plot`` stage's PNG (linked).
Deterministic: no timestamps, fixed ordering, PNGs saved without metadata. Training wall-clock
times vary per run, so they stay out of the report (an out DVC hashes): the same stage writes
them, read from the runs' logs, to ``train_times.md`` in the report's log folder
(symile_data.runlog), linked from the report.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from symile_data.e2e.config import ReportConfig
from symile_data.io.atomic import atomic_write_text, read_json
from symile_data.runlog import log_dir, read_run_log, write_run_text
from symile_data.train.plots import pyplot, save_png
from symile_data.train.xor_experiment import table_markdown

log = logging.getLogger(__name__)
METHODS = ("symile", "clip")
LABEL = {"symile": "Symile", "clip": "CLIP"}
COLOR = {"symile": "tab:blue", "clip": "tab:orange"}


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "–"
    lo, hi = r["ci95"]
    return f"{r['accuracy']:.3f} ({r['bootstrap_mean']:.3f} ± {r['bootstrap_std']:.3f}; " \
           f"95% [{lo:.3f}, {hi:.3f}])"


def _yerr(runs: list[dict[str, Any]]) -> list[list[float]]:
    """Error bars from the accuracy to the bootstrap 95% interval (clipped at 0: the point
    estimate can lie outside the resampled interval)."""
    return [[max(0.0, r["accuracy"] - r["ci95"][0]) for r in runs],
            [max(0.0, r["ci95"][1] - r["accuracy"]) for r in runs]]


def headline(xor: dict, m3: dict, mimic: dict) -> list[dict[str, Any]]:
    """One row per dataset: {"dataset", "chance", "symile": run, "clip": run}."""
    def pick(runs, **match):
        return {m: next((r for r in runs if r["method"] == m
                         and all(r.get(k) == v for k, v in match.items())), None)
                for m in METHODS}
    rows = []
    if xor["runs"]:
        p = max(r["p"] for r in xor["runs"])
        rows.append({"dataset": f"synthetic XOR (p = {p:g})", "chance": xor.get("chance"),
                     **pick(xor["runs"], p=p)})
    m3_main = pick(m3["runs"], p=0.0)
    name = next((r["dataset"] for r in m3_main.values() if r), "M3")
    rows.append({"dataset": name, "chance": m3.get("chance"), **m3_main})
    name = next((r["dataset"] for r in mimic["runs"]), "MIMIC")
    rows.append({"dataset": name, "chance": mimic.get("chance"), **pick(mimic["runs"])})
    return rows


def plot_accuracy(rows: list[dict[str, Any]], out_png: Path) -> None:
    """Grouped bars: datasets x methods, bootstrap 95% intervals, chance as a tick per group."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    width = 0.38
    for j, m in enumerate(METHODS):
        at = [(i, row[m]) for i, row in enumerate(rows) if row[m] is not None]
        ax.bar([i + (j - 0.5) * width for i, _ in at], [r["accuracy"] for _, r in at], width,
               yerr=_yerr([r for _, r in at]), capsize=3, color=COLOR[m], label=LABEL[m])
    for i, row in enumerate(rows):
        if row["chance"]:
            ax.hlines(row["chance"], i - width, i + width, colors="grey", linestyles="--",
                      label="chance" if i == 0 else None)
    ax.set_xticks(range(len(rows)), [r["dataset"] for r in rows], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("zero-shot test accuracy")
    ax.set_title("Accuracy per method and dataset (bootstrap 95% intervals)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out_png)


def plot_missing(m3: dict, out_png: Path) -> None:
    """M3 accuracy against the missingness probability p, one line per method."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for m in METHODS:
        runs = sorted((r for r in m3["runs"] if r["method"] == m), key=lambda r: r["p"])
        if runs:
            ax.errorbar([r["p"] for r in runs], [r["accuracy"] for r in runs],
                        yerr=_yerr(runs),
                        marker="o", capsize=3, color=COLOR[m], label=LABEL[m])
    if m3.get("chance"):
        ax.axhline(m3["chance"], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlabel("missingness p (train / val; test complete)")
    ax.set_ylabel("test accuracy (image from audio + text)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    ax.set_title("Symile-M3: accuracy against missingness", fontsize=10)
    fig.tight_layout()
    save_png(fig, out_png)


def _m3_table(m3: dict) -> list[str]:
    lines = ["| p | method | accuracy (bootstrap mean ± std; 95% interval) | in-text accuracy "
             "| in-text / w | best epoch |", "|---|---|---|---|---|---|"]
    for r in sorted(m3["runs"], key=lambda r: (r["p"], METHODS.index(r["method"]))):
        lines.append(f"| {r['p']:g} | {LABEL[r['method']]} | {_cell(r)} | "
                     f"{r['in_text_accuracy']:.3f} | {r['clip_bound']:.3f} | "
                     f"{r['best_epoch']} |")
    return lines


def train_times(*metrics: dict) -> str:
    """Markdown table of each run's training wall clock and device, from the runs' logs (a run
    without a log, e.g. one fetched by ``dvc pull``, shows "–")."""
    lines = ["| run | train s | device |", "|---|---|---|"]
    for m in metrics:
        for r in m["runs"]:
            log = read_run_log(r["run_dir"]) if r.get("run_dir") else None
            wall = f"{log['wall_s']:.1f}" if log and log.get("wall_s") is not None else "–"
            lines.append(f"| {r['run']} | {wall} | {(log or {}).get('device', '–')} |")
    return "\n".join(lines) + "\n"


def render(cfg: ReportConfig, xor: dict, m3: dict, mimic: dict, validation: dict,
           plots: dict[str, str]) -> str:
    rows = headline(xor, m3, mimic)
    out = [f"# {cfg.title}", "",
           "Zero-shot test accuracy; in brackets the bootstrap mean ± std over the evaluation's "
           "resamples of the test queries and the 95% interval.", "",
           "## Accuracy per method and dataset", "",
           "| dataset | Symile | CLIP | chance |", "|---|---|---|---|"]
    for row in rows:
        chance = f"{row['chance']:.3f}" if row["chance"] else "–"
        out.append(f"| {row['dataset']} | {_cell(row['symile'])} | {_cell(row['clip'])} | "
                   f"{chance} |")
    out += ["", f"![accuracy]({plots['accuracy']})", "",
            "## Symile-M3: the w-language bound and missingness", "",
            "In-text accuracy: share of queries whose retrieved image shows one of the w classes "
            "named in the text. Pairwise CLIP can find these w candidates but not which one the "
            "audio's language selects, so its accuracy stays near in-text / w; Symile can go "
            "beyond it.", ""] + _m3_table(m3)
    out += ["", f"![M3 accuracy against missingness]({plots['missing']})", "",
            "## Symile-MIMIC (CXR from ECG + labs among the stored candidates)", "",
            "| method | accuracy | best epoch |", "|---|---|---|"]
    for r in mimic["runs"]:
        out.append(f"| {LABEL[r['method']]} | {_cell(r)} | {r['best_epoch']} |")
    out += ["", "## Synthetic XOR (predict b from a and c; paper figure 3)", "",
            table_markdown(xor).rstrip(), "", f"![XOR accuracy against p]({plots['xor']})", "",
            "## Validation of every shard output", "",
            f"{validation['n_datasets'] - validation['n_bad']} of {validation['n_datasets']} "
            "datasets valid (manifest, shard sizes, sha256, done-markers, schema, row counts).",
            ""]
    out += [f"- `{d['dataset']}`: " + ("ok" if d["ok"] else "; ".join(d["problems"][:3]))
            + " " + ", ".join(f"{k} {v}" for k, v in d["splits"].items())
            for d in validation["datasets"]]
    out += ["", "## Training times", "",
            "Wall-clock training times vary from run to run, so they are kept out of this file "
            f"(which DVC hashes): see [train_times.md]({plots['train_times']}), written by the "
            "same stage from the runs' logs.", ""]
    return "\n".join(out) + "\n"


def write_report(cfg: ReportConfig, xor_json: str | Path, m3_json: str | Path,
                 mimic_json: str | Path, validation_json: str | Path, xor_png: str | Path,
                 out_md: str | Path, accuracy_png: str | Path, missing_png: str | Path
                 ) -> Path:
    """Render ``out_md`` and the two plots; plot links are relative to the report."""
    out_md = Path(out_md)
    xor, m3, mimic = read_json(xor_json), read_json(m3_json), read_json(mimic_json)
    validation = read_json(validation_json)
    plot_accuracy(headline(xor, m3, mimic), Path(accuracy_png))
    plot_missing(m3, Path(missing_png))
    times = log_dir(out_md) / "train_times.md"
    rel = {k: Path(_relpath(Path(v), out_md.parent)).as_posix()
           for k, v in (("accuracy", accuracy_png), ("missing", missing_png), ("xor", xor_png),
                        ("train_times", times))}
    atomic_write_text(out_md, render(cfg, xor, m3, mimic, validation, rel))
    table = train_times(m3, mimic)
    write_run_text(out_md, table, times.name)
    log.info("training times (run facts, kept out of %s): %s\n%s", out_md, times, table)
    return out_md


def _relpath(target: Path, start: Path) -> str:
    import os
    return os.path.relpath(target.resolve(), start.resolve())
