"""Hub dataset card: the foundation card (configs + data_files globs, symile_data.io.card) plus
features and split sizes per config (``dataset_info``), licence, the Symile citation and how
each config was built (params hash, seeds, versions and the manifest's ``extra``).

The card is pure text rendered from the manifests, so the same datasets give the same card;
publish sends it from memory (it never writes into the DVC-tracked dataset folder).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from symile_data.io.card import dataset_info, find_configs, render_card
from symile_data.io.manifest import read_manifest

SYMILE_CITATION = """\
@inproceedings{saporta2024symile,
  title     = {Contrasting with Symile: Simple Model-Agnostic Representation Learning
               for Unlimited Modalities},
  author    = {Saporta, Adriel and Puli, Aahlad and Goldstein, Mark and Ranganath, Rajesh},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2024}
}"""

LICENSE_NOTE = """\
The licence field applies to the packaging (shards, card, code that built them). The content
keeps the terms of its sources: ImageNet images (ImageNet terms of access: non-commercial
research), speech (Common Voice clips are CC0; text-to-speech output follows the engine's
terms), translations of class names. Check these terms before any use beyond research."""


def find_seeds(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every key containing 'seed' anywhere in a nested dict, as dotted path -> value."""
    found: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in sorted(obj.items()):
            path = f"{prefix}.{k}" if prefix else str(k)
            if "seed" in str(k).lower() and not isinstance(v, (dict, list)):
                found[path] = v
            found.update(find_seeds(v, path))
    return found


def provenance_section(configs: dict[str, Path]) -> str:
    lines = ["## How it was built", ""]
    for name, d in configs.items():
        m = read_manifest(d)
        seeds = find_seeds(m.get("extra", {}))
        lines += [f"### {name}", "",
                  f"- dataset name: `{m['name']}`, format: {m['format']}",
                  f"- schema: `{m.get('schema')}` version {m.get('schema_version')}",
                  f"- params hash: `{m['params_hash']}`",
                  f"- built with symile-data {m.get('package_version')}, "
                  f"pyarrow {m.get('pyarrow_version')}",
                  f"- seeds: {', '.join(f'{k}={v}' for k, v in seeds.items()) or 'none recorded'}",
                  f"- flags: `{json.dumps(m.get('flags', {}), sort_keys=True)}`",
                  "- sizes: " + ", ".join(f"{s} {i['rows']} rows / {i['bytes']} bytes in "
                                          f"{i['num_shards']} shard(s)"
                                          for s, i in m["splits"].items()),
                  "", "Manifest `extra` (parameters recorded by the build):", "", "```json",
                  json.dumps(m.get("extra", {}), indent=2, sort_keys=True, default=str),
                  "```", ""]
    return "\n".join(lines)


def usage_section(repo_id: str | None, configs: dict[str, Path]) -> str:
    first = next(iter(configs))
    where = repo_id or "path/to/this/folder"
    return "\n".join([
        "## Usage", "", "```python", "from datasets import load_dataset",
        f'ds = load_dataset("{where}", "{first}")', "```", "",
        "Each shard also has a hidden `.<shard>.stats.json` done-marker (rows, bytes, sha256) and each "
        "config a `manifest.json`, so `symile-data validate` checks a downloaded copy.", ""])


def build_card(root: str | Path, *, repo_id: str | None = None, title: str | None = None,
               license: str = "other", description: str = "") -> str:
    root = Path(root)
    configs = find_configs(root)
    if not configs:
        raise FileNotFoundError(f"{root}: no dataset (manifest.json) to describe")
    title = title or (repo_id.split("/")[-1] if repo_id else root.resolve().name)
    description = description or (
        "Shards built by symile-data, a reproduction of the datasets of *Contrasting with Symile: "
        "Simple Model-Agnostic Representation Learning for Unlimited Modalities* (NeurIPS 2024; "
        "code: rajesh-lab/symile).")
    body = "\n".join([usage_section(repo_id, configs), provenance_section(configs),
                      "## Licence", "", f"`{license}`. {LICENSE_NOTE}", "",
                      "## Citation", "", "```bibtex", SYMILE_CITATION, "```", ""])
    extra_front = {"pretty_name": title, "tags": ["symile", "multimodal", "contrastive-learning"],
                   "dataset_info": dataset_info(configs)}
    return render_card(root, title=title, description=description, license=license,
                       extra_front=extra_front, body=body)

