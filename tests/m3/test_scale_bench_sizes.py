"""bench/scale.py sizes: xs|s|m|l, N train rows, or TRAIN:VAL:TEST (evaluation at l's 500k
test queries without its 10M train rows); extrapolation uses the rows a stage reads."""
from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def _bench() -> SimpleNamespace:
    return SimpleNamespace(**runpy.run_path(str(BENCH), run_name="scale_m3"))


def test_size_specs():
    b = _bench()
    assert b.split_rows("l") == (10_000_000, 500_000, 500_000)
    assert b.split_rows("100000") == (100_000, 5_000, 5_000)
    assert b.split_rows("1000:1000:500000") == (1_000, 1_000, 500_000)
    assert b.stage_rows("eval", "1000:1000:500000") == 500_000
    assert b.stage_rows("shards", "1000:1000:500000") == 1_000
    assert b.stage_rows("join", "1000:1000:500000") == 502_000
    for bad in ("1000:1000", "a:b:c", "0:0:0", "-5:0:10", "xl", "0"):
        with pytest.raises(ValueError, match="TRAIN:VAL:TEST"):
            b.split_rows(bad)


def test_eval_extrapolated_from_test_rows():
    b = _bench()
    res = {"1000:1000:5000": {"eval": {"rows": 5_000, "wall_s": 10.0, "peak_rss_mb": 900}},
           "1000:1000:25000": {"eval": {"rows": 25_000, "wall_s": 50.0, "peak_rss_mb": 940}}}
    sizes = [*res, "1000:1000:500000"]
    fits = b.summarise(res, sizes)
    far = res["1000:1000:500000"]["eval"]
    assert far["extrapolated"] and far["rows"] == 500_000
    assert far["wall_s"] == pytest.approx(1000.0) and far["peak_rss_mb"] == 940 + 950
    assert fits["eval"]["measured_sizes"] == 2
