"""The one declaration of every table and shard schema the pipelines write.

``schemas/*.json`` is generated from this module (``symile-data schemas --write``) and a test
keeps the two equal. Each schema carries ``symile_data.schema`` (name) and
``symile_data.schema_version`` in its metadata. Bump SCHEMA_VERSION on any change.

Feature columns are ``fixed_size_list<float16|float32>[D]`` so readers turn a column into an
(N, D) array without per-row Python. Schemas with a model-dependent D are built by functions;
the generated JSON uses the reference dimensions (SPEC section 2).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pyarrow as pa

SCHEMA_VERSION = "1.0.0"

_REGISTRY: dict[str, Callable[[], pa.Schema]] = {}
_DOCS: dict[str, str] = {}


def _with_meta(name: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={
        "symile_data.schema": name, "symile_data.schema_version": SCHEMA_VERSION})


def register(name: str, doc: str):
    """Decorator: register a zero-argument schema builder under ``name``."""
    def deco(fn: Callable[[], pa.Schema]):
        _REGISTRY[name] = fn
        _DOCS[name] = doc
        return fn
    return deco


def get(name: str) -> pa.Schema:
    if name not in _REGISTRY:
        raise KeyError(f"unknown schema '{name}'; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()


def names() -> list[str]:
    return sorted(_REGISTRY)


def schema_name(schema: pa.Schema) -> str | None:
    meta = schema.metadata or {}
    v = meta.get(b"symile_data.schema")
    return v.decode() if v else None


def vec(dim: int, dtype: pa.DataType = pa.float16()) -> pa.DataType:
    """A fixed-length vector column type (e.g. a feature of width ``dim``)."""
    return pa.list_(dtype, dim)


# --------------------------------------------------------------------------------------------
# Foundation: synthetic XOR (SPEC section 4). a, b, c are d_v-bit vectors stored as int8.
# --------------------------------------------------------------------------------------------
XOR_DV = 5


def xor_schema(d_v: int = XOR_DV) -> pa.Schema:
    return _with_meta("xor_samples", [
        pa.field("key", pa.string(), nullable=False),       # stable sample key "xor-{split}-{i}"
        pa.field("split", pa.string(), nullable=False),
        pa.field("a", vec(d_v, pa.int8()), nullable=False),  # (d_v,) in {0,1}
        pa.field("b", vec(d_v, pa.int8()), nullable=False),
        pa.field("c", vec(d_v, pa.int8()), nullable=False),
        pa.field("i", pa.int8(), nullable=False),            # 1 when c = a XOR b
    ])


register("xor_samples", "Synthetic XOR tuples (a, b, c) of SPEC section 4")(xor_schema)

# --------------------------------------------------------------------------------------------
# Symile-M3 (issue 4) -- tables declared below this line.
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Symile-MIMIC (issue 5) -- tables declared below this line.
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Encoder features (issue 6) -- tables declared below this line.
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Training and evaluation outputs (issue 3) -- tables declared below this line.
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# JSON generation (schemas/*.json) and the equality check.
# --------------------------------------------------------------------------------------------
def schema_to_json(schema: pa.Schema) -> dict:
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    return {
        "name": meta.get("symile_data.schema"),
        "schema_version": meta.get("symile_data.schema_version"),
        "fields": [{"name": f.name, "type": str(f.type), "nullable": f.nullable}
                   for f in schema],
    }


def render_all() -> dict[str, str]:
    """file name -> JSON text for every registered schema."""
    out = {}
    for name in names():
        doc = schema_to_json(get(name))
        doc["description"] = _DOCS[name]
        out[f"{name}.json"] = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    return out


def write_schemas(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for stale in directory.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for fname, text in rendered.items():
        p = directory / fname
        p.write_text(text)
        paths.append(p)
    return paths


def diff_schemas(directory: str | Path) -> list[str]:
    """Differences between this module and ``directory`` (empty when equal)."""
    directory = Path(directory)
    rendered = render_all()
    problems = []
    on_disk = {p.name: p.read_text() for p in directory.glob("*.json")}
    for fname, text in rendered.items():
        if fname not in on_disk:
            problems.append(f"{directory / fname}: missing (run `symile-data schemas --write`)")
        elif on_disk[fname] != text:
            problems.append(f"{directory / fname}: differs from symile_data/schema.py")
    for fname in sorted(set(on_disk) - set(rendered)):
        problems.append(f"{directory / fname}: no such schema in symile_data/schema.py")
    return problems
