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
  ``extra`` (params, source paths, member maps).

Reading only footers and the first members of each tar, the check costs milliseconds per shard.
"""
from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any


from symile_data import schema as S
from symile_data.io.manifest import MANIFEST, read_manifest, schema_from_b64
from symile_data.io.openfile import parquet_schema

SOURCE_WORDS = re.compile(r"mimic|physionet", re.IGNORECASE)
TAR_MEMBERS_READ = 32        # members read from the start of each tar (a few samples)


class PublishError(RuntimeError):
    """A refusal or failure to publish, with a message fit for the user."""


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


def _parquet_says(shard: Path) -> list[str]:
    try:
        sch = parquet_schema(shard)
    except (OSError, ValueError) as e:   # pyarrow raises ArrowInvalid (a ValueError)
        return [f"unreadable Parquet footer ({type(e).__name__}); cannot prove it is not MIMIC"]
    return (_schema_name_says(S.schema_name(sch), "Parquet")
            + _columns_say(sch.names, "Parquet"))


def _tar_says(shard: Path) -> list[str]:
    fields: set[str] = set()
    try:
        with tarfile.open(shard) as tar:
            for i, member in enumerate(tar):
                if i >= TAR_MEMBERS_READ:
                    break
                parts = Path(member.name).name.split(".", 1)
                if len(parts) < 2:
                    continue
                fields.add(parts[1].split(".")[0])
                if parts[1] == "json" and member.isfile():
                    data = tar.extractfile(member)
                    obj = json.loads(data.read()) if data is not None else {}
                    fields.update(obj if isinstance(obj, dict) else {})
    except (OSError, tarfile.TarError, ValueError) as e:
        return [f"unreadable tar ({type(e).__name__}); cannot prove it is not MIMIC"]
    return _columns_say(sorted(fields), "tar")


def mimic_evidence(dataset_dir: Path, manifest: dict[str, Any] | None = None) -> list[str]:
    """Every reason to call the dataset in ``dataset_dir`` MIMIC-derived ([] = none found)."""
    m = read_manifest(dataset_dir) if manifest is None else manifest
    found = []
    if (m.get("flags") or {}).get("mimic_derived"):
        found.append("manifest flags.mimic_derived = true")
    found += _schema_name_says(m.get("schema"), "manifest")
    if m.get("schema_arrow_b64"):
        try:
            sch = schema_from_b64(m["schema_arrow_b64"])
            found += _schema_name_says(S.schema_name(sch), "manifest Arrow")
            found += _columns_say(sch.names, "manifest schema")
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
            says = (_parquet_says if shard.suffix == ".parquet" else _tar_says
                    if shard.suffix == ".tar" else lambda p: [])
            for finding in says(shard) if shard.exists() else []:
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
