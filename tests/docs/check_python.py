"""Parse-check of a Python block: it compiles, what it imports exists, and the keyword
arguments it passes to a ``symile_data`` function or class are parameters of it.

``<name>`` placeholders (``symile_data.<domain>.cli``) compile as a name and their imports are
not checked; ``...`` is Python's Ellipsis.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re

from extract import Block

PLACEHOLDER = re.compile(r"<([a-z_]+)>")
MARK = "placeholder_"


def _resolve(module: str, name: str) -> object | None:
    mod = importlib.import_module(module)
    if hasattr(mod, name):
        return getattr(mod, name)
    if hasattr(mod, "__path__") and importlib.util.find_spec(f"{module}.{name}") is not None:
        return importlib.import_module(f"{module}.{name}")
    return None


def _check_kwargs(tree: ast.AST, names: dict[str, object], block: Block) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in names):
            continue
        try:
            params = inspect.signature(names[node.func.id]).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        for kw in node.keywords:
            if kw.arg is not None and kw.arg not in params:
                problems.append(f"{block.file}:{block.line + node.lineno - 1}: "
                                f"{node.func.id}() has no parameter {kw.arg!r}")
    return problems


def check_python(block: Block) -> list[str]:
    src = PLACEHOLDER.sub(lambda m: MARK + m.group(1), block.text)
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        return [f"{block.file}:{block.line + (e.lineno or 1) - 1}: {e.msg}"]
    problems: list[str] = []
    ours: dict[str, object] = {}        # local name -> symile_data object (for kwargs)
    for node in ast.walk(tree):
        where = f"{block.file}:{block.line + getattr(node, 'lineno', 1) - 1}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if importlib.util.find_spec(alias.name.split(".")[0]) is None:
                    problems.append(f"{where}: no module {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and MARK not in node.module:
            try:
                found = {a.name: _resolve(node.module, a.name) for a in node.names}
            except ImportError as e:
                problems.append(f"{where}: {e}")
                continue
            for alias in node.names:
                if found[alias.name] is None:
                    problems.append(f"{where}: {node.module} has no {alias.name}")
                elif node.module.split(".")[0] == "symile_data":
                    ours[alias.asname or alias.name] = found[alias.name]
    return problems + _check_kwargs(tree, ours, block)
