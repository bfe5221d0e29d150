"""Typed, strict loading of ``params.yaml`` sections into frozen dataclasses.

One ``params.yaml`` section per DVC stage, one frozen dataclass per section. Unknown keys,
missing keys (without a dataclass default) and wrongly typed values are configuration errors
that name the file, the section and the key: we fail fast before any work starts.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from symile_data.hashing import sha256_json

T = TypeVar("T")

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(ValueError):
    """A bad configuration value; the message names file, section and key."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                          f"{e.start}, line {line})") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of stage sections")
    return data


def _type_ok(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, coerced value). ints are accepted for floats; lists become tuples."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, v = _type_ok(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if origin is typing.Literal:
        return value in args, value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        item_tp = args[0] if args else Any
        out = []
        for item in value:
            ok, v = _type_ok(item, item_tp)
            if not ok:
                return False, value
            out.append(v)
        return True, tuple(out)
    if origin is dict:
        if not isinstance(value, dict):
            return False, value
        return True, types.MappingProxyType(dict(value))
    if tp is float:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, (int, float)):
            return True, float(value)
        return False, value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp), value


def from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build the frozen dataclass ``cls`` from ``data``; ``where`` names it in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key '{name}'")
            continue
        ok, value = _type_ok(data[name], hints[name])
        if not ok:
            raise ConfigError(
                f"{where}.{name}: expected {hints[name]}, got {data[name]!r}")
        kwargs[name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from e
    return obj


def parse_overrides(items: typing.Sequence[str] | None, where: str = "--set") -> dict[str, Any]:
    """``["n_train=500", "ps=[0.0, 1.0]"]`` -> {"n_train": 500, "ps": [0.0, 1.0]} (YAML values)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where} {item!r}: expected KEY=VALUE")
        out[key.strip()] = _yaml_value(value, f"{where} {item!r}")
    return out


def _yaml_value(value: str, where: str) -> Any:
    """One override value parsed as YAML; a ConfigError naming the override when it is not."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or " ".join(str(e).split())
        raise ConfigError(f"{where}: value {value!r} is not YAML ({problem})") from e


# Overrides given on the command line (``symile-data --set SECTION.KEY=VALUE ...``), by section.
# Set once by the CLI entry point; DVC stage scripts never set them, so DVC's params tracking
# always sees exactly what runs.
_CLI_OVERRIDES: dict[str, dict[str, Any]] = {}
# Sections ``load_section`` read since the last ``set_cli_overrides`` (the CLI checks that every
# ``--set`` section was read by the command: a section it does not read would be ignored).
_SECTIONS_READ: set[str] = set()


def set_cli_overrides(items: typing.Sequence[str] | None) -> None:
    """Register ``SECTION.KEY=VALUE`` overrides for later ``load_section`` calls."""
    _CLI_OVERRIDES.clear()
    _SECTIONS_READ.clear()
    for item in items or ():
        dotted, sep, value = item.partition("=")
        section, dot, key = dotted.strip().partition(".")
        if not sep or not dot or not section or not key:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        _CLI_OVERRIDES.setdefault(section, {})[key] = _yaml_value(value, f"--set {item!r}")


def check_override_sections(path: str | Path) -> None:
    """Fail fast when ``--set`` names a section the params file does not have (a typo)."""
    known = set(load_params(path))
    unknown = sorted(set(_CLI_OVERRIDES) - known)
    if unknown:
        raise ConfigError(f"--set names unknown section(s) {', '.join(unknown)} of {path}")


def check_overrides_read(command: str) -> None:
    """After a run: every ``--set`` section must have been read, else the override was ignored."""
    unread = sorted(set(_CLI_OVERRIDES) - _SECTIONS_READ)
    if unread:
        reads = ", ".join(sorted(_SECTIONS_READ)) or "no params section"
        raise ConfigError(f"--set names section(s) {', '.join(unread)}, which {command} does "
                          f"not read (it reads: {reads}); the override was not applied")


def load_section(cls: type[T], section: str, path: str | Path = DEFAULT_PARAMS,
                 overrides: typing.Sequence[str] | None = None) -> T:
    """Load ``params.yaml[section]`` into ``cls`` (strict). ``overrides`` (KEY=VALUE strings)
    and the CLI's ``--set SECTION.KEY=VALUE`` apply on top, checked as strictly as the file."""
    params = load_params(path)
    if section not in params:
        raise ConfigError(f"{path}: missing section '{section}'")
    _SECTIONS_READ.add(section)
    if params[section] is None:
        raise ConfigError(f"{path}:{section}: empty section (expected its keys: KEY: VALUE)")
    if not isinstance(params[section], dict):
        raise ConfigError(f"{path}:{section}: expected a mapping of keys, got "
                          f"{type(params[section]).__name__} {params[section]!r}")
    data = {**params[section], **_CLI_OVERRIDES.get(section, {}),
            **parse_overrides(overrides)}
    return from_dict(cls, data, f"{path}:{section}")


def to_dict(obj: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, types.MappingProxyType):
            v = dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def params_hash(*objs: Any) -> str:
    """Stable sha256 (16 hex) of one or more config dataclasses / plain dicts."""
    payload = [to_dict(o) if dataclasses.is_dataclass(o) else o for o in objs]
    return sha256_json(payload)[:16]


def add_params_args(parser: Any) -> None:
    """``--params FILE`` for a stage command (per-key overrides: the global ``--set``)."""
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="params file (YAML)")
