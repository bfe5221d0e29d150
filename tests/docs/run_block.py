"""Run one doc block in a copy of the toy chain's work dir, as a user would in a checkout.

Shell blocks run line by line (continuations joined, comment lines skipped), each line with
``bash -o pipefail -c`` in the work dir: a failing line names its doc line. Python blocks run
as one script whose line numbers are the doc's (padded with blank lines), so a traceback
points into the markdown. yaml blocks do not run here (check_params loads them strictly).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from extract import REPO, Block, logical_lines

TIMEOUT_S = 300
# repository folders a doc command may name (scripts, profiles), linked into the work dir
LINKED = ("pipelines", "bench", "profiles", "schemas")


def doc_env(home: Path) -> dict[str, str]:
    """The environment of a user in the activated venv, offline, with this checkout's code."""
    env = dict(os.environ)
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1", SYMILE_DATA_PROGRESS="off",
               HF_HOME=str(home / "hf"), TMPDIR=str(home))
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def workdir_for(block: Block, chain: Path, root: Path) -> Path:
    """A fresh copy of the toy chain's work dir for one block (blocks write outputs)."""
    work = root / block.id.replace("/", "_").replace(":", "_")
    shutil.copytree(chain, work, symlinks=True)
    for name in LINKED:
        if not (work / name).exists():
            (work / name).symlink_to(REPO / name)
    return work


def run(block: Block, work: Path, env: dict[str, str]) -> str:
    """"" when the block ran cleanly, else what failed (doc line, exit code, output tail)."""
    if block.lang == "shell":
        for line_no, line in logical_lines(block):
            p = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=work, env=env,
                               capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
            _record(f"{block.file}:{line_no}", line.strip(), p)
            if p.returncode:
                return _failure(f"{block.file}:{line_no}: `{line.strip()}`", p)
        return ""
    if block.lang == "python":
        script = work / f"{Path(block.file).name}.py"
        script.write_text("\n" * (block.line - 1) + block.text + "\n")
        p = subprocess.run([sys.executable, script.name], cwd=work, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        _record(f"{block.file}:{block.line}", "python block", p)
        return _failure(f"{block.file}:{block.line}: python block", p) if p.returncode else ""
    raise ValueError(f"{block.id}: {block.lang} blocks do not run")


def _record(where: str, command: str, p: subprocess.CompletedProcess) -> None:
    """With SYMILE_DOCTEST_LOG=FILE: one JSON line per command run (where, command, exit,
    first line of output): the "each documented command as written" table."""
    log = os.environ.get("SYMILE_DOCTEST_LOG")
    if log:
        first = next((x for x in (p.stdout + p.stderr).splitlines() if x.strip()), "")
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"where": where, "command": command, "exit": p.returncode,
                                "first_line": first[:160]}) + "\n")


def _failure(what: str, p: subprocess.CompletedProcess) -> str:
    tail = "\n".join((p.stdout + p.stderr).splitlines()[-25:])
    return f"{what} exited with {p.returncode}:\n{tail}"
