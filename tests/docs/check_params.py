"""Params keys named by the docs are real: ``--set SECTION.KEY=VALUE`` and params.yaml-style
yaml blocks, checked with the strict loader (symile_data.config.from_dict) of each section's
dataclass, on top of the section as the repository's params files hold it."""
from __future__ import annotations

import dataclasses
import re
import sys

import yaml
from extract import REPO, Block

from symile_data.config import ConfigError, _yaml_value, from_dict
from symile_data.m3.release_config import M3ReleaseConfig
from symile_data.mimic.release_cli import MimicReleaseConfig

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from test_params_profiles import PATH_ONLY, SECTIONS

CLASSES = {**SECTIONS, "m3_release": M3ReleaseConfig, "mimic_release": MimicReleaseConfig}
PARAMS_FILES = ("params.yaml", "profiles/m3-release/params.yaml",
                "profiles/mimic-release/params.yaml")
KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


def base_section(section: str) -> dict:
    """The section as the first params file holding it has it (the demo first)."""
    for name in PARAMS_FILES:
        params = yaml.safe_load((REPO / name).read_text())
        if section in params:
            return dict(params[section])
    return {}


def check_values(section: str, values: dict, where: str, keys_only: bool = False) -> list[str]:
    """Problems of ``values`` as keys of ``section`` (strictly loaded over its base values;
    with ``keys_only`` just the key names)."""
    if section in PATH_ONLY or (keys_only and section in CLASSES):
        known = base_section(section) if section in PATH_ONLY else \
            {f.name: f for f in dataclasses.fields(CLASSES[section])}
        unknown = sorted(set(values) - set(known))
        return [f"{where}: {section} has no key(s) {', '.join(unknown)}"] if unknown else []
    if section not in CLASSES:
        return [f"{where}: no params section {section!r} (known: {', '.join(sorted(CLASSES))})"]
    try:
        from_dict(CLASSES[section], {**base_section(section), **values}, f"{where}: {section}")
    except (ConfigError, TypeError) as e:
        return [str(e)]
    return []


def check_set(item: str, where: str) -> list[str]:
    """One ``--set SECTION.KEY=VALUE``."""
    dotted, sep, value = item.partition("=")
    section, dot, key = dotted.partition(".")
    if not sep or not dot:
        return [f"{where}: --set {item!r}: expected SECTION.KEY=VALUE"]
    try:
        parsed = _yaml_value(value, f"--set {item!r}")
    except ConfigError as e:
        return [f"{where}: {e}"]
    return check_values(section, {key: parsed}, f"{where}: --set {item}")


def _comment_keys(comment: str) -> dict | None:
    """``# or engine: gtts (online), throttle_s: 1.0`` -> that mapping; None when the comment
    is prose (does not read as a flow mapping of plain keys)."""
    text = re.sub(r"^\s*(or\s+)?", "", comment)
    try:
        data = yaml.safe_load("{" + text + "}")
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not data or not all(
            isinstance(k, str) and KEY.match(k) for k in data):
        return None
    return data


def check_yaml(block: Block) -> list[str]:
    """A params.yaml-style block: each top-level key a section, its keys (and the keys of
    ``# or key: value, ...`` alternatives in comments) loading strictly into its dataclass."""
    where = f"{block.file}:{block.line}"
    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError as e:
        return [f"{where}: not YAML ({' '.join(str(e).split())})"]
    if not isinstance(data, dict):
        return [f"{where}: expected a mapping of params sections"]
    problems = []
    for section, values in data.items():
        problems += check_values(section, values or {}, where)
    section = None
    for n, line in enumerate(block.text.splitlines()):
        top = re.match(r"^([a-z_0-9]+):", line)
        section = top.group(1) if top else section
        _, hash_, comment = line.partition("#")
        alt = _comment_keys(comment) if hash_ and section else None
        if alt is not None:
            problems += check_values(section, alt, f"{block.file}:{block.line + n} (comment)",
                                     keys_only=True)
    return problems
