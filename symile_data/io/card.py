"""Dataset cards: README.md with the YAML ``configs:`` block that ``datasets`` reads.

A card root holds either one dataset directory (manifest.json at the root) or several, one per
config (``ROOT/<config>/manifest.json``). Each config lists ``data_files`` per split as a glob,
so ``datasets.load_dataset(ROOT, config)`` works offline on the folder and on the Hub.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from symile_data.io.atomic import atomic_write_text
from symile_data.io.manifest import MANIFEST, read_manifest


def find_configs(root: str | Path) -> dict[str, Path]:
    """config name -> dataset dir (relative paths are resolved against root)."""
    root = Path(root)
    if (root / MANIFEST).exists():
        return {read_manifest(root)["name"]: root}
    return {p.parent.name: p.parent for p in sorted(root.glob(f"*/{MANIFEST}"))}


def configs_block(root: Path, configs: dict[str, Path]) -> list[dict[str, Any]]:
    out = []
    for i, (name, d) in enumerate(configs.items()):
        manifest = read_manifest(d)
        ext = "parquet" if manifest["format"] == "parquet" else "tar"
        rel = d.relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        entry = {"config_name": name,
                 "data_files": [{"split": s, "path": f"{prefix}{s}-*.{ext}"}
                                for s in manifest["splits"]]}
        if i == 0:
            entry["default"] = True
        out.append(entry)
    return out


def render_card(root: str | Path, *, title: str, description: str = "",
                license: str = "other", extra_front: dict[str, Any] | None = None,
                body: str = "") -> str:
    root = Path(root)
    configs = find_configs(root)
    if not configs:
        raise FileNotFoundError(f"{root}: no dataset ({MANIFEST}) to describe")
    front = {"license": license, "configs": configs_block(root, configs),
             **(extra_front or {})}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# {title}", "", description.strip(), "", "## Configurations", "",
             "| config | split | rows | shards | params hash |", "|---|---|---|---|---|"]
    for name, d in configs.items():
        m = read_manifest(d)
        for split, info in m["splits"].items():
            lines.append(f"| {name} | {split} | {info['rows']} | {info['num_shards']} | "
                         f"{m['params_hash']} |")
    lines += ["", body.strip(), ""]
    return "\n".join(lines)


def write_card(root: str | Path, **kwargs: Any) -> Path:
    path = Path(root) / "README.md"
    atomic_write_text(path, render_card(root, **kwargs))
    return path
