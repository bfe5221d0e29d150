"""Run facts (wall-clock seconds, rates, devices, resume counts) live outside every DVC out.

DVC hashes every out, ``cache: false`` metrics included (their md5 is in dvc.lock), so a value
that changes from run to run inside an out makes a reproduction unverifiable by hash. Such values
go to a log tree that no stage declares (``logs/``, gitignored), mirrored by out path::

    out models/m3/symile           ->  logs/models/m3/symile/timing.json
    out reports/results.md         ->  logs/reports/results.md/train_times.md

The tree sits under the current directory (the repo root under ``dvc repro``), or under
``$SYMILE_DATA_LOG_DIR`` when set. An out outside the current directory (an absolute path
elsewhere, as in tests) logs under ``{tempdir}/symile-data-logs/{absolute path}``: never next to
the out, whose parent may itself be an out or a stage's dependency. Readers find a log from the
same out path; a missing log is simply "not known" (e.g. outputs fetched by ``dvc pull``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from symile_data.io.atomic import atomic_write_json, atomic_write_text, read_json

LOG_ROOT = "logs"
LOG_ROOT_ENV = "SYMILE_DATA_LOG_DIR"
TIMING = "timing.json"
# keys of a stage report that vary from run to run on the same inputs
RUN_FACTS = frozenset({"seconds", "items_per_s", "wall_s", "train_wall_s", "device",
                       "encoded_this_run", "skipped_resumed"})


def log_dir(out: str | Path) -> Path:
    """The log folder of an out (file or folder), outside every out."""
    out = Path(os.path.abspath(out))
    cwd = Path.cwd()
    try:
        rel = out.relative_to(cwd)
    except ValueError:
        rel = out.relative_to(out.anchor)
        root = os.environ.get(LOG_ROOT_ENV) or Path(tempfile.gettempdir()) / "symile-data-logs"
        return Path(root) / "abs" / rel
    return Path(os.environ.get(LOG_ROOT_ENV) or cwd / LOG_ROOT) / rel


def write_run_log(out: str | Path, record: dict[str, Any], name: str = TIMING) -> Path:
    path = log_dir(out) / name
    atomic_write_json(path, record)
    return path


def write_run_text(out: str | Path, text: str, name: str) -> Path:
    path = log_dir(out) / name
    atomic_write_text(path, text)
    return path


def read_run_log(out: str | Path, name: str = TIMING) -> dict[str, Any] | None:
    path = log_dir(out) / name
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def split_run_facts(obj: Any) -> tuple[Any, Any]:
    """(``obj`` without RUN_FACTS keys at any depth, the RUN_FACTS alone with their paths);
    the second is None where there are none."""
    if not isinstance(obj, dict):
        if isinstance(obj, list):
            pairs = [split_run_facts(v) for v in obj]
            facts = [f for _, f in pairs]
            return [k for k, _ in pairs], (facts if any(f is not None for f in facts) else None)
        return obj, None
    keep, facts = {}, {}
    for k, v in obj.items():
        if k in RUN_FACTS:
            facts[k] = v
            continue
        keep[k], sub = split_run_facts(v)
        if sub is not None:
            facts[k] = sub
    return keep, (facts or None)


def write_report_and_facts(out: str | Path, report: dict[str, Any],
                           name: str = "report.json") -> dict[str, Any]:
    """Write ``report`` without its run facts to ``out/name`` (hashed by DVC) and the facts to
    the out's run log (``timing.json``); returns the full report unchanged."""
    stable, facts = split_run_facts(report)
    atomic_write_json(Path(out) / name, stable)
    write_run_log(out, facts or {})
    return report
