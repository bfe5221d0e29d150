"""Dataset cards: README.md with the YAML ``configs:`` block that ``datasets`` reads.

A card root holds either one dataset directory (manifest.json at the root) or several, one per
config (``ROOT/<config>/manifest.json``). Each config lists ``data_files`` per split as a glob,
so ``datasets.load_dataset(ROOT, config)`` works offline on the folder and on the Hub, and
``dataset_info`` declares each Parquet config's features (from the Arrow schema stored in its
manifest; columns the schema's ``huggingface`` metadata types as ``Image`` / ``Audio`` keep
those types, so the Hub viewer shows pictures and players; ``Audio`` is declared
``decode=False``, see below) and split sizes (``num_examples``, which ``datasets`` checks, and
``num_bytes``: the uncompressed size in the Parquet footers, or a WebDataset split's tar bytes;
``datasets`` reports it and checks nothing against it).

Split names are the ones ``datasets`` gives a dataset folder's files (``val-*`` ->
``validation``, SPLIT_NAMES), so ``load_dataset(folder)`` and ``load_dataset(ROOT, config)``
name the same splits; the files keep the manifest's names.

Audio columns are declared ``Audio(decode=False)``: ``ds[i]["audio"]`` is ``{"bytes", "path"}``
on every install (decoding needs ``torchcodec``, whose PyPI wheels need a CUDA torch); where
torchcodec loads, ``ds.cast_column("audio", Audio())`` decodes. WebDataset configs
(``.tar``) declare the features of their first samples as the ``webdataset`` builder would infer
them (``.jpg``/``.png`` Image, ``.json`` dict, ``.npy`` list, ``.txt`` string), except audio
members (``.wav``/``.mp3``/``.flac``), declared as raw ``binary``: ``datasets`` >= 4 encodes every
``Audio`` value through ``torchcodec``, whose PyPI wheels need a CUDA torch, so a declared
``Audio`` member would make the tars unloadable on a CPU install (docs/publish.md).
A ``datasets`` repository has one builder for all its configs, so a root mixing Parquet and
WebDataset datasets lists the Parquet ones; each other dataset gets a card of its own folder.

Every stage that writes a root of datasets calls ``write_card`` on it (``write_root_card`` with
the default title/description is the one-line hunk for a stage); each WebDataset folder below
the root gets its own card too, so ``load_dataset(folder)`` works as well as
``load_dataset(root, config)``.
"""
from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml

from symile_data.errors import InputError
from symile_data.io.atomic import atomic_write_text
from symile_data.io.manifest import MANIFEST, read_manifest, schema_from_b64

# manifest split name -> the name datasets gives files of that split in a folder
SPLIT_NAMES = {"val": "validation"}


def hf_split(split: str) -> str:
    return SPLIT_NAMES.get(split, split)


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
        check_shard_names(d, manifest, ext)
        rel = d.relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        entry = {"config_name": name,
                 "data_files": [{"split": hf_split(s), "path": f"{prefix}{s}-*.{ext}"}
                                for s in manifest["splits"]]}
        if i == 0:
            entry["default"] = True
        out.append(entry)
    return out


def check_shard_names(d: Path, manifest: dict[str, Any], ext: str) -> None:
    """Every shard the manifest lists must match its split's ``data_files`` glob
    (``{split}-*.{ext}``), else the card would publish a dataset missing that shard."""
    for split, info in manifest["splits"].items():
        for shard in info.get("shards", []):
            if not fnmatch.fnmatchcase(shard["file"], f"{split}-*.{ext}"):
                raise InputError(f"{d / MANIFEST}: split {split} shard {shard['file']!r} is not "
                                 f"named {split}-*.{ext} (a {manifest['format']} shard); the "
                                 f"card's data_files would not load it")


def features_yaml(manifest: dict[str, Any], d: Path | None = None
                  ) -> list[dict[str, Any]] | None:
    """The ``datasets`` features of a config: Parquet from the schema stored in its manifest,
    WebDataset from the first samples of its first tar in ``d`` (None when it has none)."""
    import datasets
    if manifest.get("schema_arrow_b64"):
        schema = schema_from_b64(manifest["schema_arrow_b64"])
        feats = datasets.Features.from_arrow_schema(schema)
        for name, f in feats.items():         # loads without torchcodec (module docstring)
            if isinstance(f, datasets.Audio):
                feats[name] = datasets.Audio(sampling_rate=f.sampling_rate, decode=False)
        return feats._to_yaml_list()
    if manifest.get("format") == "parquet":
        where = d / MANIFEST if d is not None else "a parquet manifest"
        raise InputError(f"{where}: no schema_arrow_b64 (the Arrow schema every Parquet "
                         f"manifest records); rebuild the dataset with symile-data")
    if d is None:
        return None
    from symile_data.io.card_wds import wds_features
    feats = wds_features(d, manifest)
    return None if feats is None else feats._to_yaml_list()


def split_num_bytes(d: Path, manifest: dict[str, Any], split: str) -> int:
    """Uncompressed bytes of a split: the row groups' sizes in the Parquet footers (only the
    footers are read), or the tars' bytes of a WebDataset split."""
    info = manifest["splits"][split]
    if manifest["format"] != "parquet":
        return int(info["bytes"])
    import pyarrow.parquet as pq
    total = 0
    for s in info["shards"]:
        meta = pq.read_metadata(d / s["file"])
        total += sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    return int(total)


def by_format(configs: dict[str, Path]) -> tuple[dict[str, Path], dict[str, Path]]:
    """(configs of the root's card, datasets of another format that get their own card)."""
    fmts = {n: read_manifest(d)["format"] for n, d in configs.items()}
    main = "parquet" if "parquet" in fmts.values() else next(iter(fmts.values()), "parquet")
    return ({n: d for n, d in configs.items() if fmts[n] == main},
            {n: d for n, d in configs.items() if fmts[n] != main})


def dataset_info(configs: dict[str, Path]) -> list[dict[str, Any]]:
    """``dataset_info`` entries: features, split sizes, download size."""
    out = []
    for name, d in configs.items():
        m = read_manifest(d)
        entry: dict[str, Any] = {"config_name": name}
        feats = features_yaml(m, d)
        if feats is not None:
            entry["features"] = feats
        # num_examples is checked by `datasets` on load; num_bytes is informational
        entry["splits"] = [{"name": hf_split(s), "num_bytes": split_num_bytes(d, m, s),
                            "num_examples": int(i["rows"])} for s, i in m["splits"].items()]
        entry["download_size"] = int(sum(i["bytes"] for i in m["splits"].values()))
        out.append(entry)
    return out


def render_card(root: str | Path, *, title: str, description: str = "",
                license: str = "other", extra_front: dict[str, Any] | None = None,
                body: str = "") -> str:
    root = Path(root)
    configs, own_card = by_format(find_configs(root))
    if not configs:
        raise FileNotFoundError(f"{root}: no dataset ({MANIFEST}) to describe")
    front = {"license": license, "configs": configs_block(root, configs),
             "dataset_info": dataset_info(configs), **(extra_front or {})}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# {title}", "", description.strip(), "", "## Configurations", "",
             "| config | split | rows | shards | params hash |", "|---|---|---|---|---|"]
    for name, d in configs.items():
        m = read_manifest(d)
        for split, info in m["splits"].items():
            lines.append(f"| {name} | {hf_split(split)} | {info['rows']} | {info['num_shards']} | "
                         f"{m['params_hash']} |")
    if own_card:
        lines += ["", "Other formats (one builder per card), each with a card in its folder: "
                  + ", ".join(f"`{d.relative_to(root).as_posix()}/`" for d in own_card.values())]
    lines += ["", body.strip(), ""]
    return "\n".join(lines)


def write_card(root: str | Path, **kwargs: Any) -> Path:
    """README.md at ``root``, and in each WebDataset folder below it: its card declares the
    features (audio as binary), which ``load_dataset(folder)`` needs; a Parquet folder loads
    without one (hidden done-markers; datasets' default split names, val -> validation, the
    names the root's card declares too)."""
    root = Path(root)
    path = root / "README.md"
    atomic_write_text(path, render_card(root, **kwargs))
    for name, d in find_configs(root).items():
        if d != root and read_manifest(d)["format"] != "parquet":
            atomic_write_text(d / "README.md", render_card(d, **{**kwargs, "title": name}))
    return path


def write_root_card(root: str | Path, title: str | None = None, description: str = "") -> Path:
    """The card of a root of datasets written by a stage (title defaults to the folder name)."""
    root = Path(root)
    return write_card(root, title=title or f"{root.resolve().name} (symile-data)",
                      description=description or (
                          "Written by symile-data; one config per dataset folder. Load with "
                          "`datasets.load_dataset(ROOT, CONFIG)`; see the project's docs."))
