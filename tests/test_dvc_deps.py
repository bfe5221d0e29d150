"""Every DVC stage's code deps are exactly the modules its script loads or runs (issue 21):
dvc.yaml is generated from the import closure (``symile-data dvc-deps --write``), dvc.lock was
made from that dvc.yaml, and editing a module makes ``dvc status`` name exactly its importers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from symile_data import dvc_deps

REPO = Path(__file__).resolve().parents[1]


def test_every_dvc_file_lists_its_stages_import_closure():
    report = dvc_deps.sync(REPO)
    assert report == {}, ("dvc.yaml code deps differ from the import closure; run "
                          f"`symile-data dvc-deps --write`: {sorted(report)}")


def _lock_code_deps() -> dict[str, set[str]]:
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    return {name: {d["path"] for d in st["deps"] if dvc_deps._is_code_dep(d["path"])}
            for name, st in lock["stages"].items()}


def _script(stage_cmd: str) -> str:
    return dvc_deps._SCRIPT.search(stage_cmd).group(1)


def test_dvc_lock_was_made_from_the_generated_deps():
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    for name, code in _lock_code_deps().items():
        assert code == set(dvc_deps.import_closure(_script(lock[name]["cmd"]), REPO)), name


def test_closure_follows_lazy_imports_of_the_stage_only(tmp_path):
    pkg = tmp_path / "symile_data"
    (pkg / "dom").mkdir(parents=True)
    (tmp_path / "pipelines").mkdir()
    files = {
        "__init__.py": "", "stage.py": "class Command:\n    def __init__(s, run, add_args):\n"
                                       "        s.run, s.add_args = run, add_args\n",
        "dom/__init__.py": "", "used.py": "def f():\n    from .helper import g\n",
        "helper.py": "", "other.py": "", "argsmod.py": "", "shared.py": "",
        "dom/cli.py": textwrap.dedent("""\
            from symile_data.stage import Command
            def _shared():
                from symile_data import shared
            def _mine(args):
                from symile_data.used import f
                _shared()
            def _theirs(args):
                from symile_data import other
            def _args(p):
                import symile_data.argsmod
            MINE = Command(_mine, _args)
            THEIRS = Command(_theirs, _args)
        """)}
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    (tmp_path / "pipelines" / "s.py").write_text(
        "from symile_data.dom.cli import MINE\nCOMMAND = MINE\n")
    sys.path.insert(0, str(tmp_path))
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "symile_data"}
    try:
        for k in saved:
            del sys.modules[k]
        got = dvc_deps.import_closure("pipelines/s.py", tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
        for k in [k for k in sys.modules if k.split(".")[0] == "symile_data"]:
            del sys.modules[k]
        sys.modules.update(saved)
    # run's lazy import, its same-module helper's import, the relative import inside used.f,
    # add_args' import, every package __init__; not the other Command's import
    assert got == ["symile_data/__init__.py", "symile_data/argsmod.py",
                   "symile_data/dom/__init__.py", "symile_data/dom/cli.py",
                   "symile_data/helper.py", "symile_data/shared.py",
                   "symile_data/stage.py", "symile_data/used.py"]


def test_sync_rewrites_code_deps_and_keeps_every_other_line(tmp_path):
    text = textwrap.dedent("""\
        stages:
          a:   # comment stays
            cmd: python pipelines/xor_data.py
              --out data/xor
            deps:
              - pipelines/xor_data.py
              - symile_data/io
              - data/in            # data dep stays
              - symile_data/resources/m3/sentences.json
            outs:
              - data/xor
        """)
    new, changed = dvc_deps.sync_text(text, REPO)
    assert list(changed) == ["a"] and changed["a"][0] == ["symile_data/io"]
    deps = yaml.safe_load(new)["stages"]["a"]["deps"]
    closure = dvc_deps.import_closure("pipelines/xor_data.py", REPO)
    assert deps == ["pipelines/xor_data.py", *closure, "data/in",
                    "symile_data/resources/m3/sentences.json"]
    assert "# comment stays" in new and "# data dep stays" in new
    assert dvc_deps.sync_text(new, REPO)[1] == {}


def _changed_dep_stages(root: Path, module: str) -> set[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    out = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, env=env,
                         capture_output=True, text=True, check=True).stdout
    stages = set()
    for name, changes in json.loads(out).items():
        if ":" in name:  # a profile's stage (profiles/*/dvc.yaml: no lock of its own here)
            continue
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict) and module in change.get("changed deps", {}):
                stages.add(name)
    return stages


def test_editing_a_module_makes_dvc_status_name_exactly_its_importers(tmp_path):
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    root = tmp_path / "repo"
    for f in files:
        if (REPO / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, root / f)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    for module in ("symile_data/mimic/splits.py", "symile_data/train/loss.py"):
        with open(root / module, "a") as f:
            f.write("\n# edited\n")
        importers = {name for name, st in lock.items()
                     if module in dvc_deps.import_closure(_script(st["cmd"]), REPO)}
        assert importers and importers != set(lock)
        assert _changed_dep_stages(root, module) == importers, module
