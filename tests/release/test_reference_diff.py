"""bench/mimic_reference_diff.py measures each deliberate difference from the reference cohort:
on a hand-made tree with one case of each, every counter finds exactly its case."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from symile_data.mimic.config import LAB_ITEMIDS

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_each_difference_is_measured(tmp_path):
    fx = _load("mimic_fixtures", REPO / "tests/mimic/conftest.py")
    bench = _load("mimic_reference_diff", REPO / "bench/mimic_reference_diff.py")
    t = fx.Tree(tmp_path / "raw")
    lab = LAB_ITEMIDS[0]
    for s in (1, 2, 3):
        t.admission(s, s * 10, 0.0)
        t.lab(s, lab, 1.0, 5.0)
    # 1: two ECGs at the same time; the file lists study 102 first, ours takes study 101
    t.ecg_record(1, 102, 1.0)
    t.ecg_record(1, 101, 1.0)
    t.cxr(1, 501, "d1", 30.0)
    # 2: its only CXR is 24 h + 0.4 s after admission: in ours, out once truncated to seconds
    t.ecg_record(2, 201, 1.0)
    t.cxr(2, 502, "d2", 24.0 + 0.4 / 3600)
    # 3: plain
    t.ecg_record(3, 301, 2.0)
    t.cxr(3, 503, "d3", 40.0)
    roots = t.write()
    out = bench.measure(roots["mimic_iv"], roots["ecg"], roots["cxr"], tmp_path / "w", 3)
    assert out["our_cohort"] == 3
    assert out["ecg"] == {"admissions_with_tie_at_earliest": 1, "pick_differs_by_tie_rule": 1}
    assert out["cxr"]["admissions_in_window_only_with_fraction"] == 1
    assert out["cxr"]["admissions_in_window_only_truncated"] == 0
    assert out["cxr"]["pick_differs_by_tie_rule"] == 0
    # the split rule on readmissions: rows of a subject split across train and val/test drop
    cohort = pd.DataFrame({"subject_id": np.repeat(np.arange(50), 2)})
    drop = bench.split_drop(cohort, seeds=5)
    assert 0.0 < drop["dropped_share_mean"] < 0.5
