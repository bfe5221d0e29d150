"""symile_data.runlog: where run facts go (outside every out) and how reports are split."""
from __future__ import annotations

import json

from symile_data.e2e.report import train_times
from symile_data.runlog import (log_dir, read_run_log, split_run_facts, write_report_and_facts,
                                write_run_log)


def test_log_dir_mirrors_the_out_path_outside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMILE_DATA_LOG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert log_dir("models/m3/symile") == tmp_path / "logs/models/m3/symile"
    assert log_dir(tmp_path / "reports/results.md") == tmp_path / "logs/reports/results.md"
    elsewhere = log_dir("/somewhere/else/run")           # never beside the out itself
    assert elsewhere.parts[-4:] == ("abs", "somewhere", "else", "run")
    assert not str(elsewhere).startswith("/somewhere")
    monkeypatch.setenv("SYMILE_DATA_LOG_DIR", str(tmp_path / "L"))
    assert log_dir("models/x") == tmp_path / "L/models/x"


def test_reports_split_into_hashed_part_and_run_facts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = {"datasets": ["a"], "modalities": {"image": {"ok": 3, "seconds": 1.5,
                                                          "items_per_s": 2.0}},
              "runs": [{"rows": 1, "seconds": 0.1}, {"rows": 2}]}
    stable, facts = split_run_facts(report)
    assert stable == {"datasets": ["a"], "modalities": {"image": {"ok": 3}},
                      "runs": [{"rows": 1}, {"rows": 2}]}
    assert facts == {"modalities": {"image": {"seconds": 1.5, "items_per_s": 2.0}},
                     "runs": [{"seconds": 0.1}, None]}
    assert write_report_and_facts("out", report) is report
    assert json.loads((tmp_path / "out/report.json").read_text()) == stable
    assert read_run_log("out") == facts and (tmp_path / "logs/out/timing.json").exists()
    assert read_run_log("never/ran") is None


def test_train_times_table_from_the_runs_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_run_log("models/m3/symile", {"wall_s": 12.34, "device": "cpu"})
    m3 = {"runs": [{"run": "m3/symile", "run_dir": "models/m3/symile"},
                   {"run": "m3/clip", "run_dir": "models/m3/clip"}]}   # no log (dvc pull)
    table = train_times(m3, {"runs": []})
    assert "| m3/symile | 12.3 | cpu |" in table and "| m3/clip | – | – |" in table
