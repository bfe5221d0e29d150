"""Validate every shard output of the pipeline (`symile-data validate` over several roots).

Writes one JSON report and raises ``ValidationFailed`` naming each bad folder and its first
problems, so the DVC stage fails. ``datasets``: every folder with a manifest contract and every
folder with a problem; ``folders``: the rest (loose tables that passed, skipped folders with
their reason).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from symile_data.errors import InputError
from symile_data.io.atomic import atomic_write_json
from symile_data.io.validate import MANIFEST_CONTRACTS, validate_tree


class ValidationFailed(InputError):
    """Some output folder broke its contract (an input error of the stage: one line)."""


def validate_outputs(roots: Sequence[str | Path], out_json: str | Path) -> dict[str, Any]:
    """Validate every dataset dir under each root; report to ``out_json``; raise on a problem."""
    entries: list[dict[str, Any]] = []
    for root in roots:
        try:
            entries += validate_tree(root)
        except (FileNotFoundError, NotADirectoryError) as e:
            entries.append({"dataset": str(root), "contract": "none", "ok": False,
                            "problems": [str(e)], "splits": {}, "reason": None})
    datasets = [e for e in entries if e["contract"] in MANIFEST_CONTRACTS or not e["ok"]]
    bad = [d for d in datasets if not d["ok"]]
    report = {"roots": [str(r) for r in roots], "datasets": datasets,
              "folders": [e for e in entries if e not in datasets],
              "n_datasets": len(datasets), "n_bad": len(bad)}
    atomic_write_json(out_json, report)
    if bad:
        lines = [f"{d['dataset']}: " + "; ".join(d["problems"][:3]) for d in bad]
        raise ValidationFailed(f"{len(bad)} of {len(datasets)} dataset(s) failed validation "
                               f"(full report {out_json}):\n  " + "\n  ".join(lines))
    return report
