"""MIMIC content recognised by its shape, whatever its column is called (SPEC section 3).

Renaming ``ecg`` to ``x1`` does not make an ECG public. The modalities of Symile-MIMIC have
shapes no other dataset of this project has (symile_data/schema.py ``mimic_samples``):

- ECG: (5000, 12) = 60,000 values (10 s at 500 Hz, 12 leads), any dtype;
- CXR: 320 x 320 = 102,400 pixels (224 x 224 = 50,176 for the smaller crop), or the same on 3
  channels as the reference export writes them ((3, 320, 320) = 307,200; 150,528);
- labs: 50 floating-point values (percentiles of the 50 lab itemids; the int8 indicator of the
  same width travels with them).

The count is what decides, so a flat vector, a nested fixed-size list, a .npy member of any
shape or a JSON list of it are all caught. A feature vector of exactly 50 floats would be taken
for labs: none of this project's datasets has one (M3 features are 1024 / 1280 wide, tokens are
integers).
"""
from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_LABS = 50
BY_COUNT = {60_000: "an ECG (5000 x 12)", 102_400: "a CXR image (320 x 320)",
            50_176: "a CXR image (224 x 224)", 307_200: "a CXR image (3 x 320 x 320)",
            150_528: "a CXR image (3 x 224 x 224)"}


def looks_like(count: int, floating: bool) -> str | None:
    """What ``count`` values of one row are, if a MIMIC modality; else None."""
    if count in BY_COUNT:
        return BY_COUNT[count]
    return "a vector of the 50 MIMIC labs" if count == N_LABS and floating else None


def _fixed_count(t: pa.DataType) -> tuple[int, pa.DataType] | None:
    """(values per row, value type) of a (nested) fixed-size list; None for other types."""
    n = 1
    while pa.types.is_fixed_size_list(t):
        n *= t.list_size
        t = t.value_type
    return (n, t) if n > 1 else None


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def schema_says(schema: pa.Schema, where: str) -> list[str]:
    """Findings for the fixed-size list columns of ``schema``."""
    found = []
    for f in schema:
        got = _fixed_count(f.type)
        what = got and looks_like(got[0], pa.types.is_floating(got[1]))
        if what:
            found.append(f"{where} column '{f.name}' holds {got[0]} values per row: {what}")
    return found


def first_row_says(shard: Any, schema: pa.Schema, where: str) -> list[str]:
    """Findings for the variable-length list columns of a Parquet shard, by its first row
    (one row of those columns is read; the footer cannot tell a list's length)."""
    cols = [f.name for f in schema if _is_list(f.type)]
    if not cols:
        return []
    batch = next(pq.ParquetFile(shard).iter_batches(batch_size=1, columns=cols), None)
    if batch is None or batch.num_rows == 0:
        return []
    found = []
    for name in cols:
        value = batch.column(name)[0].values
        if value is None:
            continue
        flat = value.flatten() if _is_list(value.type) else value
        what = looks_like(len(flat), pa.types.is_floating(flat.type))
        if what:
            found.append(f"{where} column '{name}' holds {len(flat)} values in its first row: "
                         f"{what}")
    return found


def npy_says(member: str, data: bytes) -> str | None:
    """Finding for a .npy member (its header: shape and dtype)."""
    try:
        f = io.BytesIO(data)
        version = np.lib.format.read_magic(f)
        shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(f))
    except (ValueError, SyntaxError, OSError):
        return None
    what = looks_like(math.prod(shape), np.issubdtype(dtype, np.floating))
    return f"tar member {member} has shape {tuple(shape)}: {what}" if what else None


def json_says(member: str, data: bytes) -> list[str]:
    """Findings for list values of a sample's json member."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    found = []
    for key, v in (obj.items() if isinstance(obj, dict) else ()):
        if isinstance(v, list):
            arr = np.asarray(v, dtype=object).ravel() if v and isinstance(v[0], list) else v
            floating = any(isinstance(x, float) for x in arr[:N_LABS])
            what = looks_like(len(arr), floating)
            if what:
                found.append(f"tar member {member} field '{key}' holds {len(arr)} values: "
                             f"{what}")
    return found
