"""``symile-data validate``: every folder the pipeline writes, checked under its own contract.

``validate_tree(root)`` walks ``root`` and gives one entry per folder:

- a folder with ``manifest.json`` is checked under the contract the manifest names:
  ``parquet`` / ``webdataset`` (``format``: shards vs manifest, markers, sha256, schema, rows),
  ``feature_table`` or ``text_tokens`` (``schema``; see validate_tables.py); an unreadable or
  unknown manifest is a problem naming the file;
- a folder of shards or feature parts WITHOUT a manifest is an error (an unfinished write, or
  the manifest was deleted);
- a folder of loose Parquet tables is checked as ``tables``;
- everything else (media trees, models, raw sources, JSON-only folders) is ``skipped`` with the
  reason, one entry per top-most such folder.

Nothing here raises on bad content: every problem is a finding naming the file. Entries:
``{"dataset", "contract", "ok", "problems", "splits", "reason"}``.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any

from symile_data.hashing import sha256_file
from symile_data.io.atomic import read_json
from symile_data.io.manifest import (MANIFEST, MARKER_SUFFIX, SHARD_RE, ManifestError,
                                     legacy_marker_path, marker_path, read_manifest,
                                     schema_from_b64)
from symile_data.io.validate_tables import (PART_RE, check_feature_table, check_tables,
                                            check_text_tokens, json_problems, parquet_problems)

SHARD_CONTRACTS = ("parquet", "webdataset")
MANIFEST_CONTRACTS = SHARD_CONTRACTS + ("feature_table", "text_tokens")
DATA_SUFFIXES = (".parquet", ".tar")    # compared lower-cased: `.PARQUET` is data too


def _entry(d: Path, contract: str, problems: list[str], splits: dict | None = None,
           reason: str | None = None) -> dict[str, Any]:
    return {"dataset": str(d), "contract": contract, "ok": not problems, "problems": problems,
            "splits": splits or {}, "reason": reason}


def _tar_samples(path: Path) -> int:
    keys = set()
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            if m.isfile():
                keys.add(m.name.split(".", 1)[0])  # WebDataset: key = name up to first dot
    return len(keys)


def _check_shard(d: Path, split: str, i: int, n: int, entry: dict[str, Any], fmt: str,
                 declared) -> list[str]:
    name = entry["file"]
    problems = []
    m = SHARD_RE.match(name)
    if not m or m["split"] != split or int(m["i"]) != i or int(m["n"]) != n:
        problems.append(f"{name}: name does not fit {split}-{i:05d}-of-{n:05d}")
    path = d / name
    if not path.exists():
        return problems + [f"{name}: missing"]
    if path.stat().st_size != entry["bytes"]:
        problems.append(f"{name}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
    if sha256_file(path) != entry["sha256"]:
        problems.append(f"{name}: sha256 differs from the manifest")
    marker = marker_path(path)
    if not marker.exists():
        problems.append(f"{name}: done-marker {marker.name} missing")
    else:
        try:
            if read_json(marker).get("sha256") != entry["sha256"]:
                problems.append(f"{name}: done-marker disagrees with the manifest")
        except (OSError, ValueError, AttributeError) as e:
            problems.append(f"{marker.name}: corrupt done-marker ({e})")
    if legacy_marker_path(path).exists():
        problems.append(f"{legacy_marker_path(path).name}: visible marker (old name, read as "
                        f"data by `datasets`); rerun the stage to rename it")
    if fmt == "parquet":
        found, meta, file_schema = parquet_problems(path)
        problems += found
        if meta is not None and meta.num_rows != entry["rows"]:
            problems.append(f"{name}: {meta.num_rows} rows, manifest says {entry['rows']}")
        if (file_schema is not None and declared is not None
                and not file_schema.equals(declared, check_metadata=False)):
            problems.append(f"{name}: schema differs from the manifest's declared schema")
    else:
        try:
            k = _tar_samples(path)
            if k != entry["rows"]:
                problems.append(f"{name}: {k} samples, manifest says {entry['rows']}")
        except (tarfile.TarError, OSError) as e:
            problems.append(f"{name}: unreadable tar ({e})")
    return problems


def _check_shards(d: Path, manifest: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    fmt = manifest["format"]
    declared = (schema_from_b64(manifest["schema_arrow_b64"])
                if manifest.get("schema_arrow_b64") else None)
    ext = "parquet" if fmt == "parquet" else "tar"
    problems: list[str] = []
    listed, counts = set(), {}
    for split, info in manifest["splits"].items():
        rows, n = 0, len(info["shards"])
        for i, entry in enumerate(info["shards"]):
            listed.add(entry["file"])
            problems += _check_shard(d, split, i, n, entry, fmt, declared)
            rows += entry["rows"]
        if rows != info["rows"]:
            problems.append(f"split {split}: shards hold {rows} rows, manifest says {info['rows']}")
        counts[split] = rows
    for p in sorted(d.iterdir()):
        if p.suffix.lower() == f".{ext}" and p.name not in listed:
            problems.append(f"{p.name}: shard on disk but not in {MANIFEST}")
    return problems, counts


def contract_of(manifest: Any) -> str | None:
    if not isinstance(manifest, dict):
        return None
    if manifest.get("format") in SHARD_CONTRACTS:
        return manifest["format"]
    if manifest.get("schema") in ("feature_table", "text_tokens") and "format" not in manifest:
        return manifest["schema"]
    return None


def validate_dataset(dataset_dir: str | Path) -> dict[str, Any]:
    """One folder holding ``manifest.json``, under the contract its manifest names."""
    d = Path(dataset_dir)
    try:
        manifest = read_manifest(d)
    except ManifestError as e:
        return _entry(d, "manifest", [str(e)])
    contract = contract_of(manifest)
    if contract is None:
        keys = sorted(manifest) if isinstance(manifest, dict) else type(manifest).__name__
        return _entry(d, "manifest", [f"{MANIFEST}: unknown contract (no format 'parquet' / "
                                      f"'webdataset', no schema 'feature_table' / "
                                      f"'text_tokens'; keys {keys})"])
    check = {"feature_table": check_feature_table, "text_tokens": check_text_tokens}.get(
        contract, _check_shards)
    try:
        problems, splits = check(d, manifest)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        problems, splits = [f"{MANIFEST}: malformed for contract '{contract}' "
                            f"({type(e).__name__}: {e})"], {}
    return _entry(d, contract, problems, splits)


def _is_shard_file(name: str) -> bool:
    return bool(SHARD_RE.match(name) or PART_RE.match(name) or (
        name.endswith(MARKER_SUFFIX) and SHARD_RE.match(name.lstrip(".")[:-len(MARKER_SUFFIX)])))


def _leftovers(files: list[Path]) -> list[str]:
    return [f"{p.name}: leftover of a killed or running writer (rerun the stage)"
            for p in files if p.name.startswith(".") and
            (p.name.endswith(".tmp") or p.name.endswith(".lock"))]


def validate_folder(d: Path) -> dict[str, Any] | None:
    """The entry for folder ``d`` itself (its files, not its subfolders); None for a bare
    container of subfolders."""
    files = sorted(p for p in d.iterdir() if p.is_file())
    if (d / MANIFEST).exists():
        entry = validate_dataset(d)
    elif any(_is_shard_file(p.name) for p in files):
        n = sum(_is_shard_file(p.name) for p in files)
        entry = _entry(d, "shards", [f"{n} shard / part file(s) but no {MANIFEST} (an "
                                     f"unfinished write, or the manifest was deleted)"])
    elif any(p.suffix.lower() == ".parquet" for p in files):
        problems, rows = check_tables(d, [p for p in files if p.suffix.lower() == ".parquet"])
        entry = _entry(d, "tables", problems, rows)
    elif files:
        return _entry(d, "skipped", [], reason=f"no dataset files ({_names(files)})")
    else:
        return None
    extra = [p for p in json_problems(files) if not p.startswith(MANIFEST)] + _leftovers(files)
    entry["problems"] += extra
    entry["ok"] = not entry["problems"]
    return entry


def _names(files: list[Path], k: int = 4) -> str:
    names = [p.name for p in files[:k]]
    return ", ".join(names) + (f", ... {len(files)} files" if len(files) > k else "")


def _has_data(d: Path) -> bool:
    for _, _, names in os.walk(d):
        if any(n == MANIFEST or n.lower().endswith(DATA_SUFFIXES) or _is_shard_file(n)
               for n in names):
            return True
    return False


def _visit(d: Path, out: list[dict[str, Any]]) -> None:
    try:
        entry = validate_folder(d)
    except Exception as e:  # noqa: BLE001 -- validate never crashes: the folder is a finding
        entry = _entry(d, "error", [f"cannot validate ({type(e).__name__}: {e})"])
    if entry is not None:
        out.append(entry)
    for sub in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if _has_data(sub):
            _visit(sub, out)
        else:
            n = sum(len(f) for _, _, f in os.walk(sub))
            out.append(_entry(sub, "skipped", [], reason=f"no dataset files ({n} other files)"))


def validate_tree(root: str | Path) -> list[dict[str, Any]]:
    """Entries for ``root`` and every folder below it (see the module doc)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory (give a dataset folder or a root)")
    out: list[dict[str, Any]] = []
    _visit(root, out)
    if all(e["contract"] == "skipped" for e in out):
        out.append(_entry(root, "none", [f"{root}: no {MANIFEST} found (no complete dataset)"]))
    return out
