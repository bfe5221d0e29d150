"""Parquet shards -> WebDataset tars (symile_data.io.wds: same naming, markers, manifest).

One sample per row, key = the row's ``key`` column (sanitised by the writer) or
``{split}_{row:010d}``. Members: every vector column as ``{column}.npy`` (a 1-D .npy of the row's
values, dtype kept), every binary column as ``{column}.{jpg|wav|png|bin}`` (raw bytes), every
embedded-media column (the ``datasets`` Image / Audio storage ``struct<bytes, path>``) as
``{column}.{ext}`` with ext from the stored path (else jpg for images, wav otherwise), and all
scalar and string columns together in ``json``. So ``wds.WebDataset(...).decode()`` reads them
with its standard decoders and ``wids.ShardListDataset`` through the ``.{split}.wids.json``
index; the output root gets a dataset card (``load_dataset(OUT, config)``). The member map is recorded in the manifest's
``extra.members``; ``flags`` (mimic_derived included) are carried over from the source, and the
source is recorded as the output's ``inputs`` lineage. A source whose content says MIMIC
(columns, shapes, lineage) while its manifest does not is refused (publish/guard.py).
Rows are read one row group at a time; building tar members is per sample by nature of the
format, but the .npy members reuse one header per column (no per-row ``np.save``).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from symile_data.hashing import sha256_json
from symile_data.io.card import find_configs, write_root_card
from symile_data.io.lock import folder_lock, remove_stale_tmp
from symile_data.io.manifest import MANIFEST, read_manifest
from symile_data.io.openfile import parquet_file, parquet_schema
from symile_data.io.reader import column_to_numpy, split_files
from symile_data.io.wds import write_wds_dataset
from symile_data.publish.guard import export_restriction

EXPORT_VERSION = 1
BINARY_EXT = (("jpeg", "jpg"), ("jpg", "jpg"), ("png", "png"), ("wav", "wav"))


def is_media(t: pa.DataType) -> bool:
    """The ``datasets`` Image / Audio storage: struct<bytes: binary, path: string>."""
    return pa.types.is_struct(t) and {t.field(i).name for i in range(t.num_fields)} == {
        "bytes", "path"}


def media_ext(path: str | None, column: str) -> str:
    suffix = Path(path).suffix.lower().lstrip(".") if path else ""
    suffix = {"jpeg": "jpg"}.get(suffix, suffix)
    if suffix and suffix.isalnum():
        return suffix
    return "jpg" if "image" in column.lower() else "wav"


def member_name(field: pa.Field) -> str | None:
    """Tar member extension of a column, or None for columns that go into ``json``."""
    t = field.type
    if is_media(t):
        return f"{field.name}.{media_ext(None, field.name)}"   # ext per row: see take_range
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{field.name}.npy"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        ext = next((e for k, e in BINARY_EXT if k in field.name.lower()), "bin")
        return f"{field.name}.{ext}"
    return None


def npy_header(dtype: np.dtype, length: int) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dtype),
                                               "fortran_order": False, "shape": (length,)})
    return buf.getvalue()


def npy_members(arr: Any) -> list[bytes]:
    """(n, D) array -> n .npy files; a list of 1-D arrays (variable length) -> one each."""
    if isinstance(arr, np.ndarray) and arr.ndim == 2:
        head = npy_header(arr.dtype, arr.shape[1])
        arr = np.ascontiguousarray(arr)
        return [head + row.tobytes() for row in arr]
    return [npy_header(a.dtype, len(a)) + np.ascontiguousarray(a).tobytes() for a in arr]


class ParquetSampleSource:
    """SampleSource over the shards of one split, read row group by row group."""

    def __init__(self, files: list[Path], split: str):
        self.files, self.split = files, split
        self.units: list[tuple[Path, int, int, int]] = []   # (file, row group, start, rows)
        total = 0
        for f in files:
            meta = parquet_file(f).metadata
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                self.units.append((f, g, total, n))
                total += n
        self.num_samples = total
        self.schema = parquet_schema(files[0]) if files else pa.schema([])
        self.members = {f.name: member_name(f) for f in self.schema}

    def rows(self, start: int, stop: int) -> pa.Table:
        pieces = []
        for f, g, s, n in self.units:
            if s + n <= start or s >= stop:
                continue
            lo, hi = max(start, s), min(stop, s + n)
            pieces.append(parquet_file(f).read_row_group(g).slice(lo - s, hi - lo))
        return pa.concat_tables(pieces) if pieces else self.schema.empty_table()

    def take_range(self, start: int, stop: int) -> list[dict[str, Any]]:
        t = self.rows(start, stop)
        n = t.num_rows
        keys = (t.column("key").to_pylist() if "key" in t.column_names
                else [f"{self.split}_{i:010d}" for i in range(start, stop)])
        samples: list[dict[str, Any]] = [{"__key__": k} for k in keys]
        scalars = [c for c, m in self.members.items() if m is None]
        for c, m in self.members.items():
            if m is None:
                continue
            values = (npy_members(column_to_numpy(t.column(c), c)) if m.endswith(".npy")
                      else t.column(c).to_pylist())
            for s, v in zip(samples, values):
                name = m
                if v is not None and is_media(self.schema.field(c).type):
                    name, v = f"{c}.{media_ext(v['path'], c)}", v["bytes"]
                if v is None:
                    raise ValueError(f"{self.split} row {start}+: column {c} is null for "
                                     f"key {s['__key__']!r}")
                s[name] = v
        if scalars:
            cols = {c: t.column(c).to_pylist() for c in scalars}
            for i in range(n):
                samples[i]["json"] = json.dumps({c: cols[c][i] for c in scalars},
                                                ensure_ascii=False, sort_keys=True).encode()
        return samples


def export_dataset(src: Path, out: Path, samples_per_shard: int) -> dict[str, Any]:
    m = read_manifest(src)
    if m["format"] != "parquet":
        raise ValueError(f"{src}: format {m['format']!r}; export-wds reads Parquet datasets")
    export_restriction(src, m)     # unlabelled MIMIC content: refused (publish/guard.py)
    sources = {s: ParquetSampleSource(split_files(src, s), s) for s in m["splits"]}
    members = next(iter(sources.values())).members if sources else {}
    h = sha256_json({"version": EXPORT_VERSION, "source": m["params_hash"],
                     "shards": [x["sha256"] for i in m["splits"].values() for x in i["shards"]],
                     "samples_per_shard": samples_per_shard})[:16]
    extra = {"source": {"dir": str(src), "name": m["name"], "params_hash": m["params_hash"],
                        "schema": m.get("schema")},
             "members": {c: (e or "json") for c, e in members.items()},
             "source_extra": m.get("extra", {})}
    return write_wds_dataset(out, sources, name=m["name"], params_hash=h,
                             samples_per_shard=samples_per_shard, flags=m.get("flags"),
                             extra=extra, inputs=[src])


def export_wds(src: str | Path, out: str | Path, *, samples_per_shard: int = 1000
               ) -> list[dict[str, Any]]:
    """Export every Parquet dataset under ``src`` to ``out`` (same relative layout)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such directory")
    dirs = [src] if (src / MANIFEST).exists() else sorted(p.parent for p in src.rglob(MANIFEST))
    dirs = [d for d in dirs if read_manifest(d)["format"] == "parquet"]
    if not dirs:
        raise FileNotFoundError(f"{src}: no Parquet dataset ({MANIFEST}) found")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise ValueError(f"--out {out} lies inside the source {src}; choose another directory")
    for d in dirs:                 # refuse before writing anything
        export_restriction(d)
    with folder_lock(out):         # one writer of OUT; temporaries of killed runs swept
        remove_stale_tmp(out, recursive=True)
        manifests = [export_dataset(d, out / d.relative_to(src), samples_per_shard)
                     for d in dirs]
        if find_configs(out):   # datasets at OUT or one level below (deeper ones: no card)
            write_root_card(out, f"{src.resolve().name} (WebDataset export)")
    return manifests
