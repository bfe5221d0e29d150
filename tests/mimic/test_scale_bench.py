"""bench/scale_mimic.py end to end at toy size: stages in their own processes, JSON out."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale_mimic.py"


def _bench():
    spec = importlib.util.spec_from_file_location("scale_mimic", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fit_and_extrapolation():
    b = _bench()
    flat = b.fit([10, 100], [500, 500])
    assert flat["loglog_slope"] == 0 and flat["growth_pct"] == 0
    lin = b.fit([10, 100], [10, 100])
    assert lin["loglog_slope"] == 1 and lin["per_100k_admissions"] == 1e5
    assert b.extrapolate([10, 20], [100, 110], 40) == 130


def test_bench_runs_stages_and_skips_export(tmp_path, capsys):
    b = _bench()
    out = b.run(b.parse_args(["--admissions", "400", "200", "--work", str(tmp_path),
                              "--stages", "labevents", "cohort", "shards", "export",
                              "--p-cxr", "0.8", "--export-max-rows", "30",
                              "--extrapolate-to", "1000"]))
    assert [r["admissions"] for r in out["sizes"]] == [200, 400]
    small, big = out["sizes"]
    assert big["stages"]["labevents"]["rows"] == 400 * 275
    assert big["stages"]["cohort"]["rows"] > 0 and big["stages"]["shards"]["rows"] > 0
    assert all(r["stages"]["cohort"]["peak_rss_mb"] > 50 for r in out["sizes"])
    assert "skipped" in big["stages"]["export"]             # cohort above --export-max-rows
    assert out["extrapolation"]["cohort"]["extrapolated"] is True
    assert json.loads(capsys.readouterr().out)["bench"] == "scale_mimic"
    assert not any(tmp_path.iterdir())                       # deleted without --keep


def test_reuse_keeps_outputs_of_stages_not_run(tmp_path):
    """--reuse --stages cohort runs the cohort on the kept tree and the kept labevents Parquet."""
    b = _bench()
    args = ["--admissions", "150", "--work", str(tmp_path), "--p-cxr", "0.8", "--keep"]
    b.run(b.parse_args(args + ["--stages", "labevents", "cohort", "shards"]))
    lab = tmp_path / "a150" / "cohort" / "labevents.parquet"
    shards = tmp_path / "a150" / "shards"
    before = lab.stat().st_mtime_ns, shards.stat().st_mtime_ns
    out = b.run(b.parse_args(args + ["--reuse", "--stages", "cohort"]))
    assert out["sizes"][0]["stages"]["cohort"]["rows"] > 0
    assert (lab.stat().st_mtime_ns, shards.stat().st_mtime_ns) == before
