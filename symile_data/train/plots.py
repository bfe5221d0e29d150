"""PNG plots of evaluation metrics (matplotlib, Agg backend, no timestamps in the file)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from symile_data.io.atomic import atomic_path, read_json


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, out_png: str | Path) -> Path:
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    pyplot().close(fig)
    return out_png


def plot_accuracy(metrics: dict[str, Any], out_png: str | Path, chance: float | None = None
                  ) -> Path:
    """One bar: accuracy with the bootstrap 95% interval, chance as a dashed line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.2, 3.6), dpi=120)
    lo, hi = metrics["ci95"]
    mean = metrics["bootstrap_mean"]
    ax.bar([metrics["loss"]], [metrics["accuracy"]], color="tab:blue",
           yerr=[[max(0.0, mean - lo)], [max(0.0, hi - mean)]], capsize=4)
    if chance:
        ax.axhline(chance, ls="--", color="grey", lw=1, label="chance")
        ax.legend()
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{metrics['split']} accuracy")
    ax.set_title(f"{metrics['model']} ({metrics['n_queries']} queries)")
    fig.tight_layout()
    return save_png(fig, out_png)


def plot_xor(metrics_json: str | Path, out_png: str | Path) -> Path:
    """Accuracy against p for each method, bootstrap std as error bars, chance as a line."""
    plt = pyplot()
    report = read_json(metrics_json)
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for method, color in (("symile", "tab:blue"), ("clip", "tab:orange")):
        rows = sorted((r for r in report["runs"] if r["method"] == method), key=lambda r: r["p"])
        if rows:
            ax.errorbar([r["p"] for r in rows], [r["bootstrap_mean"] for r in rows],
                        yerr=[r["bootstrap_std"] for r in rows], marker="o", capsize=3,
                        color=color, label=method.upper() if method == "clip" else "Symile")
    if report.get("chance"):
        ax.axhline(report["chance"], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlabel("p (probability that c = a XOR b)")
    ax.set_ylabel("test accuracy (predict b)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left")
    ax.set_title("Synthetic XOR (SPEC section 4)")
    fig.tight_layout()
    return save_png(fig, out_png)
