"""Validate every shard output of the pipeline (`symile-data validate` over several roots).

Writes one JSON report (every dataset dir found: ok, problems, rows per split) and raises
``ValidationFailed`` naming each bad dataset and its first problems, so the DVC stage fails.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from symile_data.io.atomic import atomic_write_json
from symile_data.io.validate import validate_tree


class ValidationFailed(RuntimeError):
    pass


def validate_outputs(roots: Sequence[str | Path], out_json: str | Path) -> dict[str, Any]:
    """Validate every dataset dir under each root; report to ``out_json``; raise on a problem."""
    datasets: list[dict[str, Any]] = []
    for root in roots:
        try:
            datasets += validate_tree(root)
        except FileNotFoundError as e:
            datasets.append({"dataset": str(root), "ok": False, "problems": [str(e)],
                             "splits": {}})
    bad = [d for d in datasets if not d["ok"]]
    report = {"roots": [str(r) for r in roots], "datasets": datasets,
              "n_datasets": len(datasets), "n_bad": len(bad)}
    atomic_write_json(out_json, report)
    if bad:
        lines = [f"{d['dataset']}: " + "; ".join(d["problems"][:3]) for d in bad]
        raise ValidationFailed(f"{len(bad)} of {len(datasets)} dataset(s) failed validation "
                               f"(full report {out_json}):\n  " + "\n  ".join(lines))
    return report
