"""Run the stages of the project's dvc.yaml in-process, in file order, in a work directory.

A test helper (not DVC): it expands ``matrix`` stages (cartesian product, DVC's ``name@a-b``
naming), interpolates ``${section.key}`` from the work dir's params.yaml and ``${item.key}``,
and calls ``main(argv)`` of each ``python pipelines/X.py ...`` command, so the real wiring of
dvc.yaml (paths, flags, sections) is exercised without a process per stage. It writes
``.chain/{stage}.started`` before and ``.chain/{stage}.done`` after each stage, which lets a
test kill the run mid-stage. Usage: ``python chain.py REPO WORKDIR [--until STAGE]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import re
import shlex
import sys
from pathlib import Path

import yaml

VAR = re.compile(r"\$\{([^}]+)\}")


def _lookup(path: str, scopes: dict) -> object:
    value: object = scopes
    for part in path.split("."):
        value = value[part]  # type: ignore[index]
    return value


def _interp(text: str, scopes: dict) -> str:
    return VAR.sub(lambda m: str(_lookup(m.group(1).strip(), scopes)), text)


def resolve_stages(dvc_yaml: Path, params: dict) -> list[tuple[str, list[str]]]:
    """[(stage name, argv of ``python ...``)] in dvc.yaml order, matrices expanded."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = []
    for name, st in stages.items():
        matrix = st.get("matrix")
        combos = [({}, name)]
        if matrix:
            axes = {k: (_lookup(v[2:-1], params) if isinstance(v, str) else v)
                    for k, v in matrix.items()}
            combos = [(dict(zip(axes, vals)), f"{name}@" + "-".join(map(str, vals)))
                      for vals in itertools.product(*axes.values())]
        for item, full in combos:
            cmd = _interp(" ".join(st["cmd"].split()), {**params, "item": item})
            out.append((full, shlex.split(cmd)))
    return out


def _call(repo: Path, argv: list[str]) -> int:
    if argv[0] != "python" or not argv[1].startswith("pipelines/"):
        raise ValueError(f"unexpected stage command {argv}")
    spec = importlib.util.spec_from_file_location("stage_" + Path(argv[1]).stem,
                                                  repo / argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.main(argv[2:])


def run_chain(repo: str | Path, workdir: str | Path, until: str | None = None) -> list[str]:
    """Run every stage (up to and including ``until``) with cwd = workdir; returns names."""
    repo, workdir = Path(repo).resolve(), Path(workdir).resolve()
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    marks = workdir / ".chain"
    marks.mkdir(exist_ok=True)
    ran = []
    old = os.getcwd()
    os.chdir(workdir)
    try:
        for name, argv in resolve_stages(repo / "dvc.yaml", params):
            (marks / f"{name}.started").touch()
            rc = _call(repo, argv)
            if rc:
                raise RuntimeError(f"stage {name} exited with {rc}")
            (marks / f"{name}.done").touch()
            ran.append(name)
            if until is not None and name.split("@")[0] == until and all(
                    n.split("@")[0] != until for n, _ in
                    resolve_stages(repo / "dvc.yaml", params)[len(ran):]):
                break
    finally:
        os.chdir(old)
    return ran


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("workdir")
    ap.add_argument("--until", default=None, help="last stage (all its matrix items)")
    a = ap.parse_args()
    run_chain(a.repo, a.workdir, a.until)
    sys.exit(0)
