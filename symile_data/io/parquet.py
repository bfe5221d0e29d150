"""Sharded, resumable, deterministic Parquet writer.

Each split is planned up front into n shards of equal row count (the last one shorter), the
row count chosen from ``ShardSpec`` (target bytes, row cap) and the source's bytes per row.
Shard i holds rows [i*r, (i+1)*r) of the source, built lazily through ``take_range`` so only
one shard is in memory. A shard is written to a temporary name, renamed, then its marker is
written; a re-run skips shards whose marker, size and sha256 still match.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from symile_data.io import lineage
from symile_data.io.atomic import atomic_path, atomic_write_json
from symile_data.io.fingerprint import reuse_or_reset
from symile_data.io.lock import folder_lock
from symile_data.io.manifest import (MANIFEST, build_manifest, marker_matches, marker_path,
                                     remove_stale, shard_info, shard_name, write_manifest)
from symile_data.io.memory import release_unused
from symile_data.progress import progress

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ShardSpec:
    target_shard_bytes: int = 500_000_000   # on-disk-ish target (estimated from arrow bytes)
    max_rows_per_shard: int = 1_000_000
    row_group_rows: int = 8192              # rows per row group: the streaming read unit
    compression: str = "zstd"
    compression_level: int = 3

    @classmethod
    def from_config(cls, cfg: Any) -> "ShardSpec":
        """The spec from a stage config carrying the three sizing keys."""
        spec = cls(target_shard_bytes=cfg.target_shard_bytes,
                   max_rows_per_shard=cfg.max_rows_per_shard,
                   row_group_rows=cfg.row_group_rows)
        spec.validate()
        return spec

    def validate(self) -> None:
        for f in ("target_shard_bytes", "max_rows_per_shard", "row_group_rows"):
            if getattr(self, f) <= 0:
                raise ValueError(f"{f} must be > 0, got {getattr(self, f)}")


class RowSource(Protocol):
    num_rows: int

    def take_range(self, start: int, stop: int) -> pa.Table: ...


class TableSource:
    """Adapts an in-memory ``pa.Table`` to the RowSource protocol."""

    def __init__(self, table: pa.Table):
        self.table = table
        self.num_rows = table.num_rows

    def take_range(self, start: int, stop: int) -> pa.Table:
        return self.table.slice(start, stop - start)


def as_source(obj: Any) -> RowSource:
    if isinstance(obj, pa.Table):
        return TableSource(obj)
    if hasattr(obj, "take_range") and hasattr(obj, "num_rows"):
        return obj
    raise TypeError(f"split source must be a pyarrow.Table or a RowSource, got {type(obj)}")


def conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """Select and cast ``table`` to ``schema``; name the missing or uncastable column."""
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing} for schema "
                         f"{(schema.metadata or {}).get(b'symile_data.schema', b'?').decode()}")
    table = table.select(schema.names)
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise ValueError(f"{where}: rows do not fit the declared schema: {e}") from e


def encoding_options(schema: pa.Schema) -> dict[str, Any]:
    """Per-column Parquet options. Vector columns: no dictionary and no statistics (useless
    for dense features), BYTE_STREAM_SPLIT for floats -- 8x faster reads of float16 features
    than the defaults here (bench/shards.py), at equal size."""
    vectors = [f.name for f in schema if pa.types.is_fixed_size_list(f.type)
               or pa.types.is_list(f.type)]
    scalars = [f.name for f in schema if f.name not in vectors]
    floats = [f.name for f in schema if f.name in vectors
              and pa.types.is_floating(f.type.value_type)]
    return {"use_dictionary": scalars, "write_statistics": scalars,
            "column_encoding": {name: "BYTE_STREAM_SPLIT" for name in floats} or None}


def rows_per_shard(source: RowSource, schema: pa.Schema, spec: ShardSpec,
                   row_schemas: list[pa.Schema] | None = None) -> int:
    """Rows per shard from the first rows' arrow size (deterministic for the same data); the
    probe's own schema (before the cast) is appended to ``row_schemas`` (io.lineage)."""
    n = source.num_rows
    if n == 0:
        return spec.max_rows_per_shard
    raw = source.take_range(0, min(n, 2048, _take_rows(source)))
    if row_schemas is not None:
        row_schemas.append(raw.schema)
    probe = conform(raw, schema, "size probe")
    per_row = max(1.0, probe.nbytes / max(1, probe.num_rows))
    by_bytes = max(1, int(spec.target_shard_bytes // per_row))
    return max(1, min(spec.max_rows_per_shard, by_bytes))


def write_parquet_split(out_dir: Path, split: str, source: RowSource, schema: pa.Schema,
                        spec: ShardSpec, params_hash: str,
                        row_schemas: list[pa.Schema] | None = None) -> list[dict[str, Any]]:
    r = rows_per_shard(source, schema, spec, row_schemas)
    n = max(1, math.ceil(source.num_rows / r))
    names = [shard_name(split, i, n, "parquet") for i in range(n)]
    remove_stale(out_dir, split, "parquet", set(names))
    infos = []
    for i in progress(range(n), desc=f"write {out_dir.name}/{split}", total=n, unit="shard"):
        start, stop = i * r, min(source.num_rows, (i + 1) * r)
        shard = out_dir / names[i]
        expect = {"params_hash": params_hash, "row_start": start, "row_stop": stop}
        done = marker_matches(shard, expect)
        if done is not None:
            log.debug("skip finished shard %s", shard.name)
            infos.append(_public(done))
            continue
        with atomic_path(shard) as tmp:
            _write_shard(tmp, source, start, stop, schema, spec, shard.name)
        # the shard's rows died with _write_shard: hand them back to the OS before the next
        release_unused()   # shard is built (issue 11: one shard in memory, not two)
        info = shard_info(shard, stop - start, expect)
        atomic_write_json(marker_path(shard), info)   # done-marker last
        infos.append(_public(info))
    return infos


def _take_rows(source: RowSource) -> int:
    """Rows per ``take_range`` call: a source with large rows sets ``max_take_rows`` so a shard
    is built a few row groups at a time (memory: those rows, not the shard); others: no limit."""
    return getattr(source, "max_take_rows", None) or 2**62


def _write_shard(tmp: Path, source: RowSource, start: int, stop: int, schema: pa.Schema,
                 spec: ShardSpec, where: str) -> None:
    """Rows [start, stop) into one Parquet file: one take, or (``max_take_rows``) slices of
    whole row groups (the same bytes: row groups split at the same rows)."""
    rg = spec.row_group_rows
    step = -(-min(_take_rows(source), stop - start or 1) // rg) * rg
    opts = {"compression": spec.compression, "compression_level": spec.compression_level,
            **encoding_options(schema)}
    takes = [(s, min(stop, s + step)) for s in range(start, max(stop, start + 1), step)]
    tables = (_take(source, s, e, schema, where) for s, e in takes)
    if len(takes) == 1:
        pq.write_table(next(tables), tmp, row_group_size=rg, **opts)
        return
    with pq.ParquetWriter(tmp, schema, **opts) as w:
        for table in tables:
            w.write_table(table, row_group_size=rg)


def _take(source: RowSource, s: int, e: int, schema: pa.Schema, where: str) -> pa.Table:
    table = conform(source.take_range(s, e), schema, where)
    if table.num_rows != e - s:
        raise ValueError(f"{where}: source returned {table.num_rows} rows for range [{s}, {e})")
    return table


def _public(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info[k] for k in ("file", "rows", "bytes", "sha256")}


def write_parquet_dataset(out_dir: str | Path, splits: dict[str, Any], schema: pa.Schema, *,
                          name: str, params_hash: str, spec: ShardSpec = ShardSpec(),
                          flags: dict[str, Any] | None = None,
                          extra: dict[str, Any] | None = None,
                          fingerprint: dict[str, Any] | None = None,
                          inputs: list[str | Path] | None = None) -> dict[str, Any]:
    """Write every split as shards, then ``manifest.json``; returns the manifest.

    ``fingerprint`` (io.fingerprint.make): the shards of a run made from other inputs are
    dropped first, when ``params_hash`` alone does not name the input content.
    ``inputs``: the dataset dirs the rows come from; ``flags.mimic_derived`` is inherited from
    them, from the restricted datasets this command read, or from the rows' own schema
    (io.lineage), whatever ``flags`` says."""
    out_dir = Path(out_dir)
    row_schemas: list[pa.Schema] = []     # as the rows arrive (their origin's stamp, if any)
    with folder_lock(out_dir):   # one writer; removes temporaries of killed runs
        if fingerprint is not None:
            reuse_or_reset(out_dir, fingerprint, "shards")
        (out_dir / MANIFEST).unlink(missing_ok=True)  # incomplete until rewritten last
        written = {split: write_parquet_split(out_dir, split, as_source(src), schema, spec,
                                              params_hash, row_schemas)
                   for split, src in splits.items()}
        flags, lineage_entries = lineage.inherit(flags, inputs, row_schemas)
        manifest = build_manifest(fmt="parquet", name=name, schema=schema,
                                  params_hash=params_hash, splits=written, flags=flags,
                                  extra=extra, inputs=lineage_entries)
        write_manifest(out_dir, manifest)
    return manifest
