"""Shard naming, per-shard done-markers and the per-dataset manifest.

A dataset directory holds ``{split}-{i:05d}-of-{n:05d}.{ext}`` shards, one hidden
``.<shard>.stats.json`` marker per shard (written after the shard, so a shard without a marker
is unfinished) and ``manifest.json`` written after all shards. Nothing here carries a
timestamp: same inputs give byte-identical markers and manifests.

Bookkeeping files are invisible to the Hugging Face ``datasets`` data-file patterns: markers,
temporaries and locks start with ``.`` (``datasets`` and the Hub skip hidden files), and
``manifest.json`` never matches a split pattern nor the ``.parquet``/``.tar`` extension filter
(tests/io/test_hf_load.py loads a written folder with ``datasets.load_dataset``). Callers use
``marker_path``, ``MANIFEST`` and ``is_bookkeeping``, never literal names.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

import symile_data
from symile_data.hashing import sha256_file
from symile_data.io.atomic import atomic_write_json, read_json
from symile_data.schema import SCHEMA_VERSION, schema_name

MANIFEST = "manifest.json"
MARKER_PREFIX = "."          # hidden: never matched by the Hub's data-file patterns
MARKER_SUFFIX = ".stats.json"
# the extension in any case: a `.PARQUET` / `.Tar` shard is a shard to every check (guard,
# validate), never a file they pass over
SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\."
                      r"(?P<ext>(?i:parquet|tar))$")


class ManifestError(ValueError):
    pass


def shard_name(split: str, i: int, n: int, ext: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]+", split):
        raise ValueError(f"split name {split!r}: use letters, digits and '_' only")
    return f"{split}-{i:05d}-of-{n:05d}.{ext}"


def marker_path(shard: Path) -> Path:
    """``DIR/train-00000-of-00002.parquet`` -> ``DIR/.train-00000-of-00002.parquet.stats.json``."""
    shard = Path(shard)
    return shard.with_name(MARKER_PREFIX + shard.name + MARKER_SUFFIX)


def legacy_marker_path(shard: Path) -> Path:
    """Where markers lived before 0.2 (visible, matched by ``datasets``' split patterns)."""
    return Path(shard).with_name(Path(shard).name + MARKER_SUFFIX)


def shard_of_marker(marker: Path) -> Path:
    """Inverse of ``marker_path``."""
    name = marker.name[len(MARKER_PREFIX):-len(MARKER_SUFFIX)]
    return marker.with_name(name)


def is_bookkeeping(name: str) -> bool:
    """True for the files of a dataset dir that are not data (manifest, markers, temporaries,
    lock): hidden names and ``manifest.json``."""
    return name.startswith(".") or name == MANIFEST


def shard_info(shard: Path, rows: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {"file": shard.name, "rows": int(rows), "bytes": shard.stat().st_size,
            "sha256": sha256_file(shard), **extra}


def marker_matches(shard: Path, expect: dict[str, Any]) -> dict[str, Any] | None:
    """The marker's content when shard + marker are complete and match ``expect``."""
    marker = marker_path(shard)
    if not (shard.exists() and marker.exists()):
        return None
    try:
        info = read_json(marker)
    except (OSError, ValueError):
        return None
    if any(info.get(k) != v for k, v in expect.items()):
        return None
    if info.get("bytes") != shard.stat().st_size or info.get("sha256") != sha256_file(shard):
        return None
    return info


def remove_stale(out_dir: Path, split: str, ext: str, keep: set[str]) -> None:
    """Delete shards and markers of ``split`` not in the current plan, legacy visible markers
    and temporaries left by killed runs."""
    for p in out_dir.glob(f"{split}-*-of-*.{ext}"):
        if p.name not in keep:
            p.unlink()
    for p in out_dir.glob(f"{MARKER_PREFIX}{split}-*-of-*.{ext}{MARKER_SUFFIX}"):
        if shard_of_marker(p).name not in keep:
            p.unlink()
    for p in out_dir.glob(f"{split}-*-of-*.{ext}{MARKER_SUFFIX}"):   # pre-0.2 marker name
        p.unlink()
    for p in out_dir.glob(f".{split}-*.tmp"):
        p.unlink()


def schema_b64(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def schema_from_b64(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def build_manifest(*, fmt: str, name: str, schema: pa.Schema | None, params_hash: str,
                   splits: dict[str, list[dict[str, Any]]], flags: dict[str, Any] | None,
                   extra: dict[str, Any] | None,
                   inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``inputs``: the lineage (io.lineage), a key only when there is one."""
    flags = {"mimic_derived": False, **(flags or {})}
    return {
        "format": fmt,
        "name": name,
        "schema": schema_name(schema) if schema is not None else None,
        "schema_version": SCHEMA_VERSION,
        "schema_arrow_b64": schema_b64(schema) if schema is not None else None,
        "params_hash": params_hash,
        "package_version": symile_data.__version__,
        "pyarrow_version": pa.__version__,
        "flags": flags,
        "splits": {s: {"rows": sum(x["rows"] for x in infos),
                       "bytes": sum(x["bytes"] for x in infos),
                       "num_shards": len(infos), "shards": infos}
                   for s, infos in splits.items()},
        "extra": extra or {},
        **({"inputs": inputs} if inputs else {}),
    }


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(Path(out_dir) / MANIFEST, manifest)


def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    path = Path(dataset_dir) / MANIFEST
    if not path.exists():
        raise ManifestError(f"{path}: no manifest (dataset incomplete or not a symile-data dir)")
    try:
        manifest = read_json(path)
    except (ValueError, OSError) as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    return manifest


def is_mimic_derived(dataset_dir: str | Path) -> bool:
    return bool(read_manifest(dataset_dir).get("flags", {}).get("mimic_derived", False))
