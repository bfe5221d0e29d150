"""Restriction is inherited, not labelled: what a writer makes from restricted input is restricted.

MIMIC-derived data falls under the PhysioNet data use agreement (SPEC section 3), whatever its
columns are called. The dataset writers (``io.parquet.write_parquet_dataset``,
``io.wds.write_wds_dataset``) therefore set ``flags.mimic_derived`` from where their rows come
from, not only from the flag a call site passes:

- ``inputs=[dataset dirs]``: the caller names the datasets its rows come from (export-wds, the
  M3 join); each one's manifest decides, and the output manifest records them as ``inputs``
  (``[{"dir", "name", "mimic_derived"}]``) so the lineage survives further steps;
- ``inputs=None`` (the caller does not say, e.g. a script): every restricted dataset whose rows
  this process read through the project's readers (``io.reader.split_files``, the one way to a
  dataset's files) since the current command started (``stage.Command`` calls ``reset``);
- rows that carry their origin: an Arrow table whose schema metadata names a ``mimic_*``
  schema (rows of a MIMIC shard read with ``pq.read_table``, sliced or with columns selected
  or dropped; ``rename_columns`` drops the stamp, the two records above remain).

A dataset is restricted when its manifest says ``flags.mimic_derived``, names a ``mimic_*``
schema, or lists a restricted input. ``publish`` and the exporters additionally recognise MIMIC
content by shape (publish/guard.py), for data whose lineage was cut outside the project.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa

from symile_data.schema import schema_name

_READS: dict[str, str] = {}     # restricted dataset dir read in this command -> its name


def reset() -> None:
    """Forget the restricted reads so far (a new command starts)."""
    _READS.clear()


def manifest_restriction(m: dict[str, Any]) -> str | None:
    """Why the dataset of manifest ``m`` is restricted, or None."""
    if (m.get("flags") or {}).get("mimic_derived"):
        return "flags.mimic_derived"
    name = m.get("schema")
    if isinstance(name, str) and name.lower().startswith("mimic"):
        return f"schema '{name}'"
    for entry in m.get("inputs") or ():
        if isinstance(entry, dict) and entry.get("mimic_derived"):
            return f"input '{entry.get('name')}' ({entry.get('dir')}) is MIMIC-derived"
    return None


def note_read(dataset_dir: str | Path, manifest: dict[str, Any]) -> None:
    """A project reader opened the rows of ``dataset_dir``: remember it when restricted."""
    if manifest_restriction(manifest):
        _READS[str(dataset_dir)] = str(manifest.get("name"))


def schema_restriction(schema: pa.Schema | None) -> str | None:
    """Rows whose Arrow schema is stamped with a ``mimic_*`` schema name are MIMIC rows."""
    name = schema_name(schema) if schema is not None else None
    return f"rows of schema '{name}'" if name and name.lower().startswith("mimic") else None


def input_entries(inputs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """``inputs`` lineage: one entry per input dataset dir (its manifest decides)."""
    from symile_data.io.manifest import read_manifest
    out = []
    for d in inputs:
        m = read_manifest(d)
        out.append({"dir": str(d), "name": m.get("name"),
                    "mimic_derived": manifest_restriction(m) is not None})
    return out


def inherit(flags: dict[str, Any] | None, inputs: Sequence[str | Path] | None,
            schemas: Iterable[pa.Schema | None] = ()) -> tuple[dict[str, Any],
                                                              list[dict[str, Any]]]:
    """(flags, inputs lineage) of a dataset about to be written: ``flags.mimic_derived`` is
    True when the caller says so or any input / read / row schema is restricted, with the
    reason in ``flags.mimic_derived_by``. ``schemas`` is consumed only when still needed."""
    flags = dict(flags or {})
    entries = (input_entries(inputs) if inputs is not None else
               [{"dir": d, "name": n, "mimic_derived": True} for d, n in sorted(_READS.items())])
    if flags.get("mimic_derived"):
        return flags, entries
    why = next((f"input '{e['name']}' ({e['dir']}) is MIMIC-derived" for e in entries
                if e["mimic_derived"]), None)
    if why is None:
        why = next((w for w in map(schema_restriction, schemas) if w), None)
    if why is not None:
        flags.update(mimic_derived=True, mimic_derived_by=why)
    return flags, entries
