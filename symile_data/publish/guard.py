"""Nothing MIMIC-derived leaves the machine: the check every upload runs before any network call.

MIMIC-IV, MIMIC-IV-ECG, MIMIC-CXR and anything derived from them fall under the PhysioNet
credentialed-access data use agreement (SPEC section 3). A dataset is refused when ANY of these
says MIMIC, so removing or editing one of them by hand does not let it through:

- the flag: manifest ``flags.mimic_derived``;
- the schema name: manifest ``schema``, the name stamped in the manifest's Arrow schema and the
  name stamped in every Parquet shard's own schema (footer) starting with ``mimic``;
- the column set: a column of a MIMIC schema that no other schema has (identifiers such as
  ``hadm_id`` / ``subject_id``, the modalities ``ecg`` / ``cxr`` / ``labs_*``; MIMIC_COLUMNS),
  in the manifest's schema, in any Parquet shard, or as a WebDataset member (``{key}.ecg.npy``,
  or a field of a sample's ``json``);
- the recorded sources: "mimic" or "physionet" anywhere in the manifest's name, schema or
  ``extra`` (params, source paths, member maps);
- the lineage: an input recorded in the manifest's ``inputs`` that is MIMIC-derived
  (symile_data.io.lineage: a writer inherits the restriction of what it read);
- the shapes: a column or member holding an ECG (5000 x 12), a CXR image (320 x 320 or
  224 x 224) or the 50 labs, whatever it is called (publish/mimic_shapes.py).

Shards are recognised by content, not by name: a ``.PARQUET`` or ``.Tar`` shard is inspected
like any other, and a shard that is neither Parquet nor tar is itself a finding (nothing proves
it is not MIMIC). Reading only footers (plus the first row of variable-length list columns) and
the first members of each tar, the check costs milliseconds per shard.

Exporters (export-wds, export-reference) call ``export_restriction``: labelled MIMIC data is
exported for local use with its label carried over; data that is MIMIC by any sign above but
not labelled is refused, so an export cannot launder a lost label.
"""
from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any


from symile_data import schema as S
from symile_data.errors import InputError
from symile_data.io.lineage import manifest_restriction
from symile_data.io.manifest import MANIFEST, read_manifest, schema_from_b64
from symile_data.publish import mimic_shapes
from symile_data.io.openfile import parquet_schema

SOURCE_WORDS = re.compile(r"mimic|physionet", re.IGNORECASE)
TAR_MEMBERS_READ = 32        # members read from the start of each tar (a few samples)


class PublishError(InputError):
    """A refusal or failure to publish, with a message fit for the user (one line, exit 2)."""


class UnlabelledMimic(InputError):
    """An exporter's source is MIMIC-derived by content but its manifest does not say so."""


def _mimic_columns() -> frozenset[str]:
    """Columns of the MIMIC schemas that no other schema declares, plus the raw MIMIC record
    ids; ``label`` is too generic a name to tell anything."""
    mimic, other = set(), set()
    for name in S.names():
        (mimic if name.startswith("mimic") else other).update(S.get(name).names)
    return frozenset((mimic - other - {"label"}) | {"stay_id", "study_id", "dicom_id"})


MIMIC_COLUMNS = _mimic_columns()


def _columns_say(columns: list[str], where: str) -> list[str]:
    hit = sorted(set(columns) & MIMIC_COLUMNS)
    return [f"{where} has MIMIC column(s) {hit[:6]}"] if hit else []


def _schema_name_says(name: str | None, where: str) -> list[str]:
    return [f"{where} schema is '{name}'"] if name and name.lower().startswith("mimic") else []


def _parquet_says(shard: Path, strict: bool = False) -> list[str]:
    try:
        sch = parquet_schema(shard)
    except (OSError, ValueError) as e:   # InputError naming the file (io.openfile)
        if strict:                       # an exporter: the unreadable file is the error
            raise
        why = type(e.__cause__ or e).__name__
        return [f"unreadable Parquet footer ({why}); cannot prove it is not MIMIC"]
    try:
        rows = mimic_shapes.first_row_says(shard, sch, "Parquet")
    except (OSError, ValueError) as e:
        rows = [f"unreadable Parquet rows ({type(e).__name__}); cannot prove it is not MIMIC"]
    return (_schema_name_says(S.schema_name(sch), "Parquet")
            + _columns_say(sch.names, "Parquet") + mimic_shapes.schema_says(sch, "Parquet")
            + rows)


def _tar_says(shard: Path) -> list[str]:
    fields: set[str] = set()
    shapes: list[str] = []
    try:
        with tarfile.open(shard) as tar:
            for i, member in enumerate(tar):
                if i >= TAR_MEMBERS_READ:
                    break
                parts = Path(member.name).name.split(".", 1)
                if len(parts) < 2 or not member.isfile():
                    continue
                fields.add(parts[1].split(".")[0])
                ext = parts[1].rsplit(".", 1)[-1].lower()
                if ext not in ("json", "npy"):
                    continue
                data = tar.extractfile(member)
                data = data.read() if data is not None else b""
                if ext == "json":
                    obj = json.loads(data) if data else {}
                    fields.update(obj if isinstance(obj, dict) else {})
                    shapes += mimic_shapes.json_says(parts[1], data)
                else:
                    shapes += [s for s in [mimic_shapes.npy_says(parts[1], data)] if s]
    except (OSError, tarfile.TarError, ValueError) as e:
        return [f"unreadable tar ({type(e).__name__}); cannot prove it is not MIMIC"]
    return _columns_say(sorted(fields), "tar") + list(dict.fromkeys(shapes))


def _shard_says(shard: Path, strict: bool = False) -> list[str]:
    """By content: Parquet (magic ``PAR1``) or tar, whatever the suffix's case says.
    ``strict``: an unreadable Parquet shard raises its one-line error instead."""
    suffix = shard.suffix.lower()
    if suffix == ".parquet":
        return _parquet_says(shard, strict)
    if suffix == ".tar":
        return _tar_says(shard)
    with open(shard, "rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return _parquet_says(shard, strict)
    if tarfile.is_tarfile(shard):
        return _tar_says(shard)
    return [f"neither Parquet nor tar ({shard.suffix or 'no suffix'}); cannot prove it is "
            f"not MIMIC"]


def mimic_evidence(dataset_dir: Path, manifest: dict[str, Any] | None = None,
                   strict: bool = False) -> list[str]:
    """Every reason to call the dataset in ``dataset_dir`` MIMIC-derived ([] = none found).
    ``strict`` (exporters, which must read every shard anyway): an unreadable Parquet shard
    raises its one-line error naming the file instead of counting as unprovable."""
    m = read_manifest(dataset_dir) if manifest is None else manifest
    found = []
    flags = m.get("flags") or {}
    if flags.get("mimic_derived"):
        found.append("manifest flags.mimic_derived = true" + (
            f" ({flags['mimic_derived_by']})" if flags.get("mimic_derived_by") else ""))
    found += _schema_name_says(m.get("schema"), "manifest")
    found += [f"manifest inputs: '{e.get('name')}' ({e.get('dir')}) is MIMIC-derived"
              for e in m.get("inputs") or () if isinstance(e, dict) and e.get("mimic_derived")]
    if m.get("schema_arrow_b64"):
        try:
            sch = schema_from_b64(m["schema_arrow_b64"])
            found += _schema_name_says(S.schema_name(sch), "manifest Arrow")
            found += _columns_say(sch.names, "manifest schema")
            found += mimic_shapes.schema_says(sch, "manifest schema")
        except (ValueError, TypeError) as e:
            found.append(f"manifest schema_arrow_b64 unreadable ({e})")
    recorded = json.dumps({k: m.get(k) for k in ("name", "schema", "extra")}, default=str)
    words = sorted({w.lower() for w in SOURCE_WORDS.findall(recorded)})
    if words:
        found.append(f"manifest name/extra mention {words}")
    by_shard: dict[str, list[str]] = {}      # finding -> shards it holds for
    for info in (m.get("splits") or {}).values():
        for entry in info.get("shards", []):
            shard = Path(dataset_dir) / entry["file"]
            for finding in _shard_says(shard, strict) if shard.exists() else []:
                by_shard.setdefault(finding, []).append(shard.name)
    found += [f"{finding} in shard {names[0]}" + (f" and {len(names) - 1} more"
                                                   if len(names) > 1 else "")
              for finding, names in by_shard.items()]
    return list(dict.fromkeys(found))


def dataset_dirs(root: Path) -> list[Path]:
    """Every dataset directory (holding manifest.json) at or below ``root``."""
    if (root / MANIFEST).exists():
        return [root]
    return sorted(p.parent for p in root.rglob(MANIFEST))


def refuse_mimic_derived(root: str | Path) -> list[Path]:
    """Raise PublishError when any dataset under ``root`` is MIMIC-derived by any sign (see the
    module doc); else return the dataset dirs. Touches only local files."""
    root = Path(root)
    if not root.is_dir():
        raise PublishError(f"{root}: no such directory")
    dirs = dataset_dirs(root)
    if not dirs:
        raise PublishError(f"{root}: no {MANIFEST} found (no complete dataset to publish)")
    for d in dirs:
        m = read_manifest(d)
        if "splits" not in m:
            raise PublishError(f"{d / MANIFEST}: not a shard dataset manifest (no 'splits'); "
                               f"publish a folder of shard datasets")
        evidence = mimic_evidence(d, m)
        if evidence:
            raise PublishError(
                f"refusing to publish {root}: dataset '{m.get('name')}' in {d} is MIMIC-derived "
                f"({'; '.join(evidence[:5])}). MIMIC-IV, MIMIC-IV-ECG and MIMIC-CXR and anything "
                f"derived from them fall under the PhysioNet credentialed-access data use "
                f"agreement, which forbids sharing them: they are never uploaded to a hub. "
                f"Nothing was uploaded.")
    return dirs


def export_restriction(dataset_dir: str | Path, manifest: dict[str, Any] | None = None) -> bool:
    """For an exporter: True when the dataset is labelled restricted (export it for local use,
    the label carried over), False when nothing says MIMIC; raises UnlabelledMimic naming the
    dataset and why when its content or lineage says MIMIC but its manifest does not."""
    d = Path(dataset_dir)
    m = read_manifest(d) if manifest is None else manifest
    if manifest_restriction(m):
        return True
    evidence = mimic_evidence(d, m, strict=True)
    if evidence:
        raise UnlabelledMimic(
            f"{d / MANIFEST}: refusing to export '{m.get('name')}': it is MIMIC-derived "
            f"({'; '.join(evidence[:3])}) but its manifest does not say so "
            f"(flags.mimic_derived). MIMIC-derived data stays under the PhysioNet data use "
            f"agreement whatever its columns are called; write it with the project's writer "
            f"from its MIMIC inputs so the restriction is recorded. Nothing was written.")
    return False
