"""Check shards against their manifest and declared schema.

Every problem names the dataset, the shard and what is wrong; ``validate_tree`` finds every
dataset directory (one with manifest.json) under a root.
"""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from symile_data import schema as schemas
from symile_data.hashing import sha256_file
from symile_data.io.manifest import (MANIFEST, SHARD_RE, ManifestError, marker_path,
                                     read_manifest, schema_from_b64)
from symile_data.io.atomic import read_json


def _tar_samples(path: Path) -> int:
    keys = set()
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            if m.isfile():
                keys.add(m.name.split(".", 1)[0])  # WebDataset: key = name up to first dot
    return len(keys)


def _check_parquet(path: Path, entry: dict[str, Any], declared) -> list[str]:
    problems = []
    try:
        meta = pq.ParquetFile(path).metadata
        file_schema = pq.read_schema(path)
    except Exception as e:  # noqa: BLE001 -- any read failure is a finding, not a crash
        return [f"{path.name}: unreadable Parquet ({e})"]
    if meta.num_rows != entry["rows"]:
        problems.append(f"{path.name}: {meta.num_rows} rows, manifest says {entry['rows']}")
    if declared is not None and not file_schema.equals(declared, check_metadata=False):
        problems.append(f"{path.name}: schema differs from the manifest's declared schema")
    name = schemas.schema_name(file_schema)
    if name is not None and name in schemas.names():
        registered = schemas.get(name)
        if file_schema.names != registered.names:
            problems.append(f"{path.name}: columns {file_schema.names} differ from schema "
                            f"'{name}' {registered.names}")
    return problems


def validate_dataset(dataset_dir: str | Path) -> dict[str, Any]:
    """Return {"dataset", "ok", "problems", "splits"} for one dataset directory."""
    d = Path(dataset_dir)
    problems: list[str] = []
    try:
        manifest = read_manifest(d)
    except ManifestError as e:
        return {"dataset": str(d), "ok": False, "problems": [str(e)], "splits": {}}
    declared = (schema_from_b64(manifest["schema_arrow_b64"])
                if manifest.get("schema_arrow_b64") else None)
    ext = "parquet" if manifest["format"] == "parquet" else "tar"
    listed = set()
    counts = {}
    for split, info in manifest["splits"].items():
        rows = 0
        n = len(info["shards"])
        for i, entry in enumerate(info["shards"]):
            listed.add(entry["file"])
            path = d / entry["file"]
            m = SHARD_RE.match(entry["file"])
            if not m or m["split"] != split or int(m["i"]) != i or int(m["n"]) != n:
                problems.append(f"{entry['file']}: name does not fit {split}-{i:05d}-of-{n:05d}")
            if not path.exists():
                problems.append(f"{entry['file']}: missing")
                continue
            if path.stat().st_size != entry["bytes"]:
                problems.append(f"{entry['file']}: {path.stat().st_size} bytes, manifest says "
                                f"{entry['bytes']}")
            if sha256_file(path) != entry["sha256"]:
                problems.append(f"{entry['file']}: sha256 differs from the manifest")
            marker = marker_path(path)
            if not marker.exists():
                problems.append(f"{entry['file']}: done-marker {marker.name} missing")
            elif read_json(marker).get("sha256") != entry["sha256"]:
                problems.append(f"{entry['file']}: done-marker disagrees with the manifest")
            if ext == "parquet":
                problems += _check_parquet(path, entry, declared)
            else:
                try:
                    k = _tar_samples(path)
                    if k != entry["rows"]:
                        problems.append(f"{entry['file']}: {k} samples, manifest says "
                                        f"{entry['rows']}")
                except (tarfile.TarError, OSError) as e:
                    problems.append(f"{entry['file']}: unreadable tar ({e})")
            rows += entry["rows"]
        if rows != info["rows"]:
            problems.append(f"split {split}: shards hold {rows} rows, manifest says {info['rows']}")
        counts[split] = rows
    for p in sorted(d.glob(f"*.{ext}")):
        if p.name not in listed:
            problems.append(f"{p.name}: shard on disk but not in {MANIFEST}")
    return {"dataset": str(d), "ok": not problems, "problems": problems, "splits": counts}


def validate_tree(root: str | Path) -> list[dict[str, Any]]:
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    dirs = [root] if (root / MANIFEST).exists() else sorted(
        p.parent for p in root.rglob(MANIFEST))
    if not dirs:
        return [{"dataset": str(root), "ok": False,
                 "problems": [f"{root}: no {MANIFEST} found (no complete dataset)"], "splits": {}}]
    return [validate_dataset(d) for d in dirs]
