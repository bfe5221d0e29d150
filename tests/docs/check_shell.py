"""Parse-check of the shell commands in the docs: every invocation's options against the real
parser, without running anything.

``symile-data ...`` / ``python -m symile_data.cli ...``: symile_data.cli.build_parser(), and
each ``--set`` key and ``--params`` file; ``torchrun`` / ``python -m torch.distributed.run``:
torch's own parser, then the module's arguments; ``python pipelines/X.py`` / ``bench/X.py``:
the script's parser (``probe``: tests/docs/argv_probe.py runs it up to its ``parse_args``);
``dvc``: DVC's parser and the stage / file targets; ``dask scheduler|worker``: their click
options; ``./install.sh``, ``. .venv/bin/activate``, ``.venv/bin/python -m pytest``, ``cp``:
the files and extras they need. Any other command is a problem (add a check here).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import tomllib
import yaml
from check_params import check_set
from extract import REPO, Block, Command, shell_commands
from run_block import doc_env

ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
VENV_BIN = Path(sys.executable).parent
Probe = Callable[[str, list[str]], str]      # (script, argv) -> "" or the parser's error


def _argparse(parser, argv: list[str]) -> tuple[object | None, str]:
    """(namespace, "") or (None, argparse's error); --help is fine."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(argv), ""
    except SystemExit as e:
        return None, "" if e.code == 0 else " ".join(err.getvalue().split()[-30:])
    except Exception as e:  # noqa: BLE001 -- DVC's parser raises DvcParserError instead
        return None, " ".join(err.getvalue().split()[-30:]) or f"{type(e).__name__}: {e}"


def no_abbrev(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` and its subparsers without prefix matching: a flag renamed from ``--out`` to
    ``--output`` must not pass as an abbreviation in the docs."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                no_abbrev(sub)
    return parser


def check_cli(argv: list[str], where: str) -> list[str]:
    from symile_data.cli import build_parser
    ns, err = _argparse(no_abbrev(build_parser()), argv)
    if err:
        return [f"{where}: symile-data {' '.join(argv)}: {err}"]
    if ns is None:                                       # --help
        return []
    problems = [] if getattr(ns, "func", None) else [f"{where}: symile-data: no subcommand"]
    for item in ns.overrides:
        problems += check_set(item, where)
    params = getattr(ns, "params", None)
    if params and not os.path.isabs(params) and not (REPO / params).is_file():
        problems.append(f"{where}: --params {params}: no such file in the repository")
    return problems


def check_torchrun(argv: list[str], where: str, probe: Probe) -> list[str]:
    from torch.distributed.run import get_args_parser
    ns, err = _argparse(get_args_parser(), argv)
    if err or ns is None:
        return [f"{where}: torchrun {' '.join(argv)}: {err or 'no script'}"]
    if ns.module:
        return _python(["-m", ns.training_script, *ns.training_script_args], where, probe)
    return _python([ns.training_script, *ns.training_script_args], where, probe)


def check_dvc(argv: list[str], where: str) -> list[str]:
    from dvc.cli.parser import get_main_parser
    ns, err = _argparse(get_main_parser(), argv)
    if err:
        return [f"{where}: dvc {' '.join(argv)}: {err}"]
    stages = set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    return [f"{where}: dvc {argv[0]}: {t} is neither a stage of dvc.yaml nor a file"
            for t in getattr(ns, "targets", None) or []
            if t not in stages and not (REPO / t).exists()]


def check_dask(argv: list[str], where: str) -> list[str]:
    import click
    from distributed.cli import dask_scheduler, dask_worker
    commands = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}
    if not argv or argv[0] not in commands:
        return [f"{where}: dask {' '.join(argv[:1])}: only scheduler / worker are checked"]
    try:
        commands[argv[0]].make_context(f"dask {argv[0]}", list(argv[1:]))
    except click.ClickException as e:
        return [f"{where}: dask {' '.join(argv)}: {e.format_message()}"]
    return []


def _dev_extra() -> list[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [re.split(r"[<>=\[ ]", r)[0] for r in meta["optional-dependencies"]["dev"]]


def _python(argv: list[str], where: str, probe: Probe) -> list[str]:
    """``python ARGS`` (any interpreter: the venv's)."""
    if argv[:2] == ["-m", "symile_data.cli"]:
        return check_cli(argv[2:], where)
    if argv[:2] == ["-m", "torch.distributed.run"]:
        return check_torchrun(argv[2:], where, probe)
    if argv[:1] == ["-m"] and len(argv) > 1:
        if argv[1] == "pytest":
            ok = "pytest" in _dev_extra() and '".[dev]"' in (REPO / "install.sh").read_text()
            return [] if ok else [f"{where}: pytest is not in the dev extra install.sh installs"]
        return [f"{where}: python -m {argv[1]}: no check for this module"]
    if not argv or not argv[0].endswith(".py"):
        return [f"{where}: python {' '.join(argv[:2])}: no check for this form"]
    if not (REPO / argv[0]).is_file():
        return [f"{where}: {argv[0]}: no such script"]
    err = probe(argv[0], argv[1:])
    return [f"{where}: python {' '.join(argv)}: {err}"] if err else []


def check_command(cmd: Command, where: str, probe: Probe, created: set[str]) -> list[str]:
    argv = list(cmd.argv)
    while argv and ENV.match(argv[0]):                    # VAR=value cmd ...
        argv.pop(0)
    if argv[:1] == ["nice"]:
        argv = argv[3:] if argv[1:2] == ["-n"] else argv[1:]
    if not argv:
        return []
    prog, args = argv[0], argv[1:]
    installs_venv = "-m venv .venv" in (REPO / "install.sh").read_text()
    if prog == "symile-data":
        return check_cli(args, where)
    if prog == "torchrun":
        return check_torchrun(args, where, probe)
    if prog in ("python", "python3") or prog.endswith("/bin/python"):
        if prog.startswith(".venv/") and not installs_venv:
            return [f"{where}: {prog}: install.sh does not create .venv"]
        return _python(args, where, probe)
    if prog == "dvc":
        return check_dvc(args, where)
    if prog == "dask":
        return check_dask(args, where)
    if prog in (".", "source"):
        ok = args == [".venv/bin/activate"] and installs_venv
        return [] if ok else [f"{where}: {prog} {' '.join(args)}: not the venv install.sh makes"]
    if prog == "cp":
        missing = [a for a in args[:-1] if not (REPO / a).exists() and a not in created]
        created.add(args[-1])
        return [f"{where}: cp: no such file {a}" for a in missing]
    if prog.startswith("./"):
        path = REPO / prog
        return [] if path.is_file() and os.access(path, os.X_OK) else \
            [f"{where}: {prog} is not an executable file of the repository"]
    return [f"{where}: {prog}: no check for this command (tests/docs/check_shell.py)"]


def _variants(argv: list[str]) -> list[list[str]]:
    """A usage line's argv with each ``{a,b}`` / ``a|b`` alternative taken once."""
    alts = [re.split(r"[,|]", w[1:-1]) if w.startswith("{") and w.endswith("}")
            else w.split("|") if "|" in w else [w] for w in argv]
    base = [a[0] for a in alts]
    out = [base]
    for i, choices in enumerate(alts):
        out += [base[:i] + [c] + base[i + 1:] for c in choices[1:]]
    return out


def check_shell(block: Block, probe: Probe) -> list[str]:
    """Problems of every command of a shell block (nothing runs)."""
    problems: list[str] = []
    created: set[str] = set()
    for cmd in shell_commands(block):
        where = f"{block.file}:{cmd.line}"
        if shutil.which(cmd.argv[0], path=str(VENV_BIN)) is None and \
                cmd.argv[0] in ("symile-data", "torchrun", "dvc", "dask"):
            problems.append(f"{where}: {cmd.argv[0]} is not installed in the venv")
        for argv in _variants(cmd.argv) if block.kind == "usage" else [cmd.argv]:
            problems += check_command(Command(cmd.line, argv), where, probe, created)
    return problems


def script_calls(block: Block) -> list[tuple[str, list[str]]]:
    """(script, argv) of every ``python X.py ...`` in a shell block, for one probe run."""
    calls = []
    def record(script: str, argv: list[str]) -> str:
        calls.append((script, argv))
        return ""
    check_shell(block, record)
    return calls


def probe_scripts(calls: list[tuple[str, list[str]]]) -> dict[tuple, str]:
    """{(script, argv tuple): "" or its parser's error}, each parsed by the script's own
    parser, all in one process (tests/docs/argv_probe.py)."""
    unique = sorted({(s, tuple(a)) for s, a in calls})
    with tempfile.TemporaryDirectory() as home:         # anything a script writes goes here
        env = {**doc_env(Path(home)), "SYMILE_KERNELS": "native"}
        p = subprocess.run([sys.executable, str(REPO / "tests/docs/argv_probe.py")],
                           input=json.dumps(unique), cwd=home, env=env, capture_output=True,
                           text=True, timeout=120, check=True)
    return dict(zip(unique, json.loads(p.stdout)))
