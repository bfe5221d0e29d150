"""Contracts of the non-shard folders the pipeline writes (see ``validate.validate_tree``).

- ``feature_table`` (features/tables.py): ``part-XXXXX.parquet`` + ``part-XXXXX.done.json``
  marker per part, ``manifest.json`` (schema "feature_table") listing parts, rows, ok/failed, dim.
- ``text_tokens`` (features/text.py): ``tokens.parquet`` + ``manifest.json`` (schema
  "text_tokens") with the row count.
- ``tables``: a stage folder of loose Parquet tables without a manifest (m3 images / clips,
  MIMIC cohort, failure tables): each file must read, and one stamped with a registered schema
  name must have that schema's columns.
Every check returns a list of problems, each naming the file; none raises.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from symile_data import schema as schemas
from symile_data.io.atomic import read_json

PART_RE = re.compile(r"^part-\d{5}\.((?i:parquet)|done\.json)$")     # `.PARQUET` too


def parquet_problems(path: Path) -> tuple[list[str], pq.FileMetaData | None, pa.Schema | None]:
    """(problems, metadata, schema) of one Parquet file; unreadable -> one problem."""
    try:
        meta = pq.ParquetFile(path).metadata
        file_schema = pq.read_schema(path)
    except Exception as e:  # noqa: BLE001 -- any read failure is a finding, not a crash
        return [f"{path.name}: unreadable Parquet ({e})"], None, None
    problems = []
    name = schemas.schema_name(file_schema)
    if name is not None and name in schemas.names():
        declared = schemas.column_sets(name)
        if file_schema.names not in declared:
            problems.append(f"{path.name}: columns {file_schema.names} differ from schema "
                            f"'{name}' {' or '.join(map(str, declared))}")
    return problems, meta, file_schema


def _json(path: Path) -> tuple[Any, str | None]:
    try:
        return read_json(path), None
    except (OSError, ValueError) as e:
        return None, f"{path.name}: not valid JSON ({e})"


def _parts_list(manifest: dict[str, Any]) -> tuple[list[str] | None, list[str]]:
    parts = manifest.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        return None, [f"manifest.json: 'parts' must be a list of file names, got {parts!r}"]
    return parts, []


def _walk_parts(d: Path, parts: list[str], problems: list[str], encoder_id: str | None = None):
    """Yield (part, path, row count, file schema) of every readable part; problems of missing
    or unreadable parts and of their ``part-*.done.json`` markers (rows, encoder) go to
    ``problems``."""
    for part in parts:
        path = d / part
        if not path.exists():
            problems.append(f"{part}: missing")
            continue
        found, meta, file_schema = parquet_problems(path)
        problems += found
        if meta is None:
            continue
        marker = path.with_name(path.name.removesuffix(".parquet") + ".done.json")
        info, err = _json(marker) if marker.exists() else (None, f"{marker.name}: missing")
        if err:
            problems.append(err)
        elif info.get("rows") != meta.num_rows:
            problems.append(f"{marker.name}: says {info.get('rows')} rows, "
                            f"{part} holds {meta.num_rows}")
        elif encoder_id is not None and info.get("encoder_id") != encoder_id:
            problems.append(f"{marker.name}: encoder {info.get('encoder_id')} differs from the "
                            f"manifest's {encoder_id}")
        yield part, path, meta.num_rows, file_schema


def check_feature_table(d: Path, manifest: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    parts, problems = _parts_list(manifest)
    if parts is None:
        return problems, {}
    dim, rows, ok = manifest.get("dim"), 0, 0
    for part, path, n, file_schema in _walk_parts(d, parts, problems,
                                                  manifest.get("encoder_id")):
        rows += n
        if "feat" in file_schema.names:
            t = file_schema.field("feat").type
            if not pa.types.is_fixed_size_list(t) or t.list_size != dim:
                problems.append(f"{part}: feat is {t}, manifest says dim {dim}")
        try:
            status = pq.read_table(path, columns=["status"])["status"]
            ok += pa.compute.sum(pa.compute.equal(status, "ok")).as_py() or 0
        except Exception as e:  # noqa: BLE001
            problems.append(f"{part}: status column unreadable ({e})")
    if rows != manifest.get("rows"):
        problems.append(f"parts hold {rows} rows, manifest.json says {manifest.get('rows')}")
    if not problems and (ok, rows - ok) != (manifest.get("ok"), manifest.get("failed")):
        problems.append(f"parts hold {ok} ok / {rows - ok} failed rows, manifest.json says "
                        f"{manifest.get('ok')} / {manifest.get('failed')}")
    for p in sorted(d.glob("part-*")):
        if p.suffix.lower() == ".parquet" and p.name not in parts:
            problems.append(f"{p.name}: part on disk but not in manifest.json")
    return problems, {"rows": rows}


def check_text_tokens(d: Path, manifest: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """Text table (features.text): hash-bucket parts ``part-*.parquet`` each with its
    ``part-*.done.json`` marker, and the lookup index ``index/{hash,offsets,ids}.bin`` whose
    sizes follow the manifest's counts (uint64 per text, int64 per text + 1, int32 per token)."""
    parts, problems = _parts_list(manifest)
    if parts is None:
        return problems, {}
    rows = sum(n for _, _, n, _ in _walk_parts(d, parts, problems))
    if rows != manifest.get("rows"):
        problems.append(f"parts hold {rows} rows, manifest.json says {manifest.get('rows')}")
    counts = manifest.get("index") or {}
    texts, tokens = counts.get("texts"), counts.get("tokens")
    for name, size in (("hash.bin", None if texts is None else 8 * texts),
                       ("offsets.bin", None if texts is None else 8 * (texts + 1)),
                       ("ids.bin", None if tokens is None else 4 * tokens)):
        f = d / "index" / name
        if not f.exists():
            problems.append(f"index/{name}: missing")
        elif size is not None and f.stat().st_size != size:
            problems.append(f"index/{name}: {f.stat().st_size} bytes, manifest.json index "
                            f"counts {counts} give {size}")
    return problems, {"rows": rows}


def check_tables(d: Path, tables: list[Path]) -> tuple[list[str], dict[str, int]]:
    problems, rows = [], {}
    for path in tables:
        found, meta, _ = parquet_problems(path)
        problems += found
        if meta is not None:
            rows[path.name] = meta.num_rows
    return problems, rows


def json_problems(files: list[Path]) -> list[str]:
    """Every ``*.json`` among ``files`` (reports, markers, sidecars) must parse."""
    return [err for p in files if p.name.endswith(".json") for err in [_json(p)[1]] if err]
