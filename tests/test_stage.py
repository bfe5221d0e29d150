"""One way in, one error boundary: every DVC stage script runs a ``symile_data.stage.Command``
that is also a ``symile-data`` subcommand; an input error is one line on stderr and exit 2;
``--log-level DEBUG`` adds the traceback; stage logs show at INFO."""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from symile_data.cli import build_parser, main
from symile_data.errors import InputError, one_line
from symile_data.stage import Command, build_stage_parser, run_stage

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "pipelines").glob("*.py"))
ENV = {**os.environ, "PYTHONPATH": str(REPO), "SYMILE_DATA_PROGRESS": "off"}


def _load(script: Path):
    spec = importlib.util.spec_from_file_location("stage_" + script.stem, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _subcommands(parser: argparse.ArgumentParser, path=()) -> dict:
    """{Command: (subcommand path, its parser)} for every subcommand of ``symile-data``."""
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                cmd = sub.get_default("command_obj")
                if cmd is not None:
                    out[cmd] = (path + (name,), sub)
                out.update(_subcommands(sub, path + (name,)))
    return out


def _options(parser: argparse.ArgumentParser) -> dict:
    return {a.dest: (tuple(a.option_strings), a.default, a.required, a.type, a.choices)
            for a in parser._actions if a.dest not in ("help", "log_level")}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_stage_script_is_a_symile_data_subcommand(script):
    cmd = _load(script).COMMAND
    assert isinstance(cmd, Command) and cmd.name == script.stem
    subs = _subcommands(build_parser())
    assert cmd in subs, f"{script.name}: no symile-data subcommand runs {cmd.name}"
    path, sub = subs[cmd]
    assert _options(build_stage_parser(cmd)) == _options(sub), path


def _stage(script: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "pipelines" / script), *argv],
                          capture_output=True, text=True, cwd=cwd, env=ENV, timeout=120)


def test_bad_input_is_one_line_and_debug_adds_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    missing = tmp_path / "no-such-cohort"
    r = _stage("mimic_shards.py", "--cohort", str(missing), "--out", str(tmp_path / "o"),
               cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0], r.stderr
    r = _stage("mimic_shards.py", "--cohort", str(missing), "--out", str(tmp_path / "o"),
               "--log-level", "DEBUG", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback (most recent call last)" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == lines[0]


def test_bad_params_key_is_one_line(tmp_path):
    params = (REPO / "params.yaml").read_text().replace("xor_data:\n",
                                                        "xor_data:\n  n_trian: 3\n", 1)
    (tmp_path / "params.yaml").write_text(params)
    r = _stage("xor_data.py", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("configuration error: ") and "n_trian" in r.stderr


def test_symile_data_input_error_one_line(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "absent") in err[0]
    assert main(["--log-level", "DEBUG", "validate", str(tmp_path / "absent")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_runner_logs_at_info_and_bugs_keep_their_traceback(capsys):
    def run(args):
        logging.getLogger("symile_data.test").info("working on %s", args.x)
        if args.x == "bug":
            raise KeyError("a programming error, not an input error")
        raise InputError("table.parquet row 3: column 'a' is negative")
    cmd = Command("demo_stage", "a demo", lambda p: p.add_argument("--x", default="in"), run)
    assert run_stage(cmd, []) == 2
    err = capsys.readouterr().err
    assert "INFO symile_data.test: working on in" in err
    assert err.strip().splitlines()[-1] == "error: table.parquet row 3: column 'a' is negative"
    with pytest.raises(KeyError):
        run_stage(cmd, ["--x", "bug"])
    ok = Command("ok_stage", "fine", lambda p: None, lambda a: 0)
    assert run_stage(ok, []) == 0
    assert "INFO symile_data.stage: stage ok_stage: done in" in capsys.readouterr().err


def test_one_line_folds_newlines_and_names_the_path():
    assert one_line(ValueError("a\n  b\n")) == "error: a; b"
    e = FileNotFoundError(2, "No such file or directory", "x/y.json")
    assert one_line(e) == "error: x/y.json: No such file or directory"
    assert one_line(FileNotFoundError("x: no cohort")) == "error: x: no cohort"


def test_one_line_prints_numpy_scalars_as_plain_numbers():
    import numpy as np
    e = ValueError(f"x.parquet: row {np.int64(139)!r} has {np.float32(1.5)!r}, not {np.str_('a')!r}")
    assert one_line(e) == "error: x.parquet: row 139 has 1.5, not 'a'"


def test_disk_full_names_the_path_being_written(tmp_path, monkeypatch):
    """ENOSPC / EDQUOT / EROFS are input (environment) errors: one line naming the path."""
    import errno
    from symile_data.errors import is_input_error
    from symile_data.io.atomic import atomic_write_json
    e = OSError(errno.ENOSPC, "No space left on device", "out/a.parquet")
    assert is_input_error(e) and one_line(e) == \
        "error: disk full writing out/a.parquet (No space left on device)"
    assert is_input_error(OSError(errno.EROFS, "Read-only file system", "x"))

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(InputError, match=f"disk full writing {tmp_path}/m.json"):
        atomic_write_json(tmp_path / "m.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []               # complete or absent
