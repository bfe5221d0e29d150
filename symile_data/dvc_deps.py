"""DVC code deps generated from each stage script's import closure (issue 21).

A stage's code deps are exactly the ``symile_data`` modules its script can import: the static
closure of ``import`` / ``from ... import`` statements (top level AND inside functions, since a
lazy import runs too), every package ``__init__.py`` on the way. So editing any module makes
``dvc status`` report exactly the stages that import it, and nothing else.

``dvc.yaml`` files are rewritten line by line (a YAML round trip would reflow the folded ``cmd``
lines): in each stage's ``deps:`` list the items naming code under ``symile_data/`` (modules or
whole code folders) are replaced by the generated module list, placed after the script; every
other dep (data, resources, the script itself) keeps its line and comment.

    symile-data dvc-deps            # exit 1 and list the stages whose deps differ
    symile-data dvc-deps --write    # rewrite dvc.yaml and profiles/*/dvc.yaml
"""
from __future__ import annotations

import argparse
import ast
import functools
import importlib.util
import inspect
import re
from pathlib import Path

PACKAGE = "symile_data"
DVC_FILES = ("dvc.yaml", "profiles/m3-release/dvc.yaml", "profiles/mimic-release/dvc.yaml")
_SCRIPT = re.compile(r"python\s+(pipelines/\w+\.py)")
_STAGE = re.compile(r"^  (\w[\w@.-]*):\s*(#.*)?$")
_ITEM = re.compile(r"^(\s+)- ([^#\s]+)")


def _module_file(root: Path, dotted: str) -> Path | None:
    """``a.b.c`` -> root/a/b/c.py or root/a/b/c/__init__.py (None when neither exists)."""
    base = root.joinpath(*dotted.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _is_declaration(path: Path) -> bool:
    """A module that declares several stages' Commands (``cli.py``, ``*_cli.py``): each Command
    imports its implementation inside its own ``run``, so loading the module runs only its
    top-level imports; the other Commands' lazy imports are not the stage's code."""
    return path.name == "cli.py" or path.name.endswith("_cli.py")


def _walk(node: ast.AST, into_functions: bool):
    """``ast.walk`` that optionally does not enter function bodies (what loading a module runs)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        for c in ast.iter_child_nodes(n):
            if into_functions or not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                    ast.Lambda)):
                todo.append(c)


def _names(nodes, dotted: str, is_pkg: bool) -> set[str]:
    """Dotted names imported by ``nodes`` (``from a import b`` gives ``a`` and ``a.b``: b may be
    a submodule). Relative imports are resolved against ``dotted`` (the file's module name)."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = dotted.split(".")
                keep = len(parts) - node.level + (1 if is_pkg else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _module_imports(path: Path, dotted: str) -> set[str]:
    """What importing the module (and, unless it is a declaration module, calling any of its
    functions) can import."""
    tree = _tree(path)
    return _names(_walk(tree, not _is_declaration(path)), dotted, path.name == "__init__.py")


def _function_imports(path: Path, dotted: str, first_lines: set[int]) -> set[str]:
    """Imports inside the functions starting at ``first_lines`` and inside every function of
    the same module they call by name (transitively)."""
    tree = _tree(path)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    todo = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and (n.lineno in first_lines or any(d.lineno in first_lines for d in n.decorator_list))]
    seen: set[str] = set()
    names: set[str] = set()
    while todo:
        fn = todo.pop()
        names |= _names(ast.walk(fn), dotted, path.name == "__init__.py")
        for call in ast.walk(fn):
            callee = getattr(call, "func", None) if isinstance(call, ast.Call) else call
            name = callee.id if isinstance(callee, ast.Name) else None
            if name in defs and name not in seen:
                seen.add(name)
                todo.append(defs[name])
    return names


def _stage_functions(root: Path, script: str) -> dict[str, set[int]]:
    """{module: first lines} of the script's ``COMMAND.run`` and ``COMMAND.add_args``: what the
    stage runs inside its declaration module (loaded, not run: cheap, the imports are lazy)."""
    spec = importlib.util.spec_from_file_location("_dvc_deps_stage", root / script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out: dict[str, set[int]] = {}
    for fn in (mod.COMMAND.run, mod.COMMAND.add_args):
        while isinstance(fn, functools.partial):
            fn = fn.func
        code = inspect.unwrap(fn).__code__
        out.setdefault(fn.__module__, set()).add(code.co_firstlineno)
    return out


@functools.lru_cache(maxsize=None)
def _closure_of(root: Path, script: str) -> tuple[str, ...]:
    seen: dict[str, Path] = {}
    todo = sorted(_names(ast.walk(_tree(root / script)), "__main__", False))
    for module, lines in _stage_functions(root, script).items():
        todo.extend(_function_imports(_module_file(root, module), module, lines))
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and every package above it
            sub = ".".join(parts[:i])
            if sub in seen:
                continue
            f = _module_file(root, sub)
            if f is None:  # a name, not a module (``from pkg import function``)
                continue
            seen[sub] = f
            todo.extend(_module_imports(f, sub))
    return tuple(sorted(p.relative_to(root).as_posix() for p in seen.values()))


def import_closure(script: str | Path, root: str | Path = ".") -> list[str]:
    """Repository-relative paths of every ``symile_data`` module the stage ``script`` loads or
    runs: the script's imports, its Command's ``run`` / ``add_args`` lazy imports, and from
    there every import of every module reached (function bodies included), except that a
    declaration module (``cli.py``) contributes only its top-level imports."""
    return list(_closure_of(Path(root).resolve(), Path(script).as_posix()))


def _is_code_dep(item: str) -> bool:
    return item.startswith(PACKAGE + "/") and not item.startswith(PACKAGE + "/resources")


def sync_text(text: str, root: Path) -> tuple[str, dict[str, tuple[list[str], list[str]]]]:
    """``text`` with every stage's code deps set to its script's closure, and the stages that
    changed: {stage: (code deps before, after)}."""
    lines, out, changed = text.splitlines(keepends=True), [], {}
    stage, script, i = None, None, 0
    while i < len(lines):
        line = lines[i]
        m = _STAGE.match(line)
        if m:  # a stage header: its script is the first ``python pipelines/x.py`` below it
            stage, script = m.group(1), None
            for nxt in lines[i + 1:]:
                if _STAGE.match(nxt):
                    break
                s = _SCRIPT.search(nxt)
                if s:
                    script = s.group(1)
                    break
        if stage and script and line.strip() == "deps:":
            out.append(line)
            i += 1
            items: list[str] = []
            while i < len(lines) and _ITEM.match(lines[i]):
                items.append(lines[i])
                i += 1
            old = [_ITEM.match(x).group(2) for x in items if _is_code_dep(_ITEM.match(x).group(2))]
            new = import_closure(script, root)
            kept = [x for x in items if not _is_code_dep(_ITEM.match(x).group(2))]
            indent = _ITEM.match(items[0]).group(1) if items else "      "
            at = next((k + 1 for k, x in enumerate(kept) if script in x), 0)
            gen = [f"{indent}- {p}\n" for p in new]
            out.extend(kept[:at] + gen + kept[at:])
            if old != new:
                changed[stage] = (old, new)
            continue
        out.append(line)
        i += 1
    return "".join(out), changed


def sync(root: str | Path = ".", write: bool = False) -> dict[str, dict]:
    """Check (or with ``write`` rewrite) every DVC file under ``root``; {file: changed stages}."""
    root = Path(root).resolve()
    if not any((root / name).is_file() for name in DVC_FILES):
        from symile_data.errors import InputError
        raise InputError(f"{root}: no {' / '.join(DVC_FILES)} here (not the repository root; "
                         f"pass --root)")
    _closure_of.cache_clear()
    _tree.cache_clear()
    report = {}
    for name in DVC_FILES:
        path = root / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new, changed = sync_text(text, root)
        if changed:
            report[name] = changed
            if write:
                path.write_text(new, encoding="utf-8")
    return report


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=".", help="repository root (default: .)")
    p.add_argument("--write", action="store_true", help="rewrite the dvc.yaml files")


def run(args: argparse.Namespace) -> int:
    report = sync(args.root, write=args.write)
    for name, stages in report.items():
        for stage, (old, new) in stages.items():
            missing, extra = sorted(set(new) - set(old)), sorted(set(old) - set(new))
            print(f"{name}: {stage}: {'rewrote' if args.write else 'differs'}"
                  f" (+{len(missing)} missing, -{len(extra)} not imported)")
    return 1 if report and not args.write else 0


def register(sub: argparse._SubParsersAction) -> None:
    from symile_data.stage import Command, add_command
    add_command(sub, "dvc-deps", Command(
        "dvc-deps", "check (or --write) every DVC stage's code deps against its import closure",
        add_args, run))
