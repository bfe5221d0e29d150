"""What made a reusable artifact, and reuse only on an exact match (issue 21).

Every artifact a re-run may reuse (import parts, shards resumed from markers, feature parts,
training checkpoints) is made from inputs and settings. A *fingerprint* names them::

    {"kind": "m3-import-parts", "version": 1, "schema_version": "1.0.0",
     "package_version": "0.1.0", "inputs": {...}, "params": {...}}

``inputs`` is a cheap content identity (``file_identity`` of the release files, a dataset's
manifest via ``dataset_identity``, a revision), never a hash of terabytes of media; ``params``
the settings that change the bytes. ``reuse_or_reset(folder, fp)`` keeps the folder's content
when its recorded fingerprint (``folder/.fingerprint.json``: hidden, so ``datasets`` and the
Hub skip it, see ``io.manifest.is_bookkeeping``) equals ``fp``; otherwise it logs ONE warning
naming the folder and what changed, empties the folder and records ``fp`` before any work, so a
killed run resumes only under the same fingerprint. No timestamps or hosts: the file is the same
on every run with the same inputs.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

import symile_data
from symile_data.hashing import CHUNK, sha256_file, sha256_json
from symile_data.io.atomic import atomic_write_json, read_json
from symile_data.io.lock import LOCK_NAME
from symile_data.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

FINGERPRINT = ".fingerprint.json"
VERSION = 1
FULL_HASH_BYTES = 64 << 20   # files up to 64 MiB: sha256 of all bytes
EDGE_BYTES = 1 << 20         # larger ones: size + sha256 of the first and last 1 MiB


def make(kind: str, *, inputs: Any, params: Any) -> dict[str, Any]:
    """A fingerprint (plain JSON values: tuples become lists)."""
    return _plain({"kind": kind, "version": VERSION, "schema_version": SCHEMA_VERSION,
                   "package_version": symile_data.__version__, "inputs": inputs,
                   "params": params})


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def file_identity(path: str | Path) -> dict[str, Any]:
    """Content identity of one file without its mtime or path. Large files: size plus the
    first and last MiB (a Parquet footer, a zip's central directory with every record's CRC,
    a gzip trailer's CRC32 + length), so it stays cheap on a multi-GB tensor or csv.gz."""
    path = Path(path)
    size = path.stat().st_size
    if size <= FULL_HASH_BYTES:
        return {"size": size, "sha256": sha256_file(path)}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(EDGE_BYTES))
        f.seek(size - EDGE_BYTES)
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return {"size": size, "edges_sha256": h.hexdigest()}


def files_identity(root: str | Path, paths: Iterable[str | Path]) -> dict[str, Any]:
    """{path relative to root: file_identity} of ``paths`` (sorted)."""
    root = Path(root)
    return {str(Path(p).relative_to(root) if Path(p).is_absolute() else p):
            file_identity(root / p) for p in sorted(map(str, paths))}


def dataset_identity(dataset_dir: str | Path) -> str:
    """Identity of a written shard dataset: its manifest's name, schema and every shard's
    (file, rows, sha256) -- the content, read from the manifest, no shard is re-hashed."""
    from symile_data.io.manifest import read_manifest
    m = read_manifest(dataset_dir)
    return sha256_json({"name": m.get("name"), "schema": m.get("schema_arrow_b64"),
                        "splits": {s: [[x["file"], x["rows"], x["sha256"]]
                                       for x in info["shards"]]
                                   for s, info in m.get("splits", {}).items()}})[:32]


def recorded(folder: str | Path) -> dict[str, Any] | None:
    """The fingerprint recorded in ``folder`` (None: none, or unreadable)."""
    try:
        fp = read_json(Path(folder) / FINGERPRINT)
    except (OSError, ValueError):
        return None
    return fp if isinstance(fp, dict) else None


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Dotted keys that differ (``params.batch_rows``, ``inputs``), for the log line."""
    if old is None:
        return ["no fingerprint recorded"]
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{k}.{s}" for s in changes(a, b)] if set(a) == set(b) else [k]
        else:
            out.append(k)
    return out


@contextlib.contextmanager
def _dir_flock(folder: Path) -> Iterator[None]:
    """Exclusive flock on the folder itself (no lock file left behind): workers writing
    disjoint parts of one folder check and reset its fingerprint one at a time."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # releases the flock


def reuse_or_reset(folder: str | Path, fp: dict[str, Any], what: str = "artifact",
                   only: Iterable[str] | None = None) -> bool:
    """True when ``folder`` was made under ``fp`` (its content may be reused); else empty it
    (``only``: remove just those names, for a folder a user may share with other files),
    record ``fp`` and return False. One WARNING names the folder and what changed when there
    was content to drop; a new or empty folder is quiet."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fp = _plain(fp)
    with _dir_flock(folder):
        old = recorded(folder)
        if old == fp:
            return True
        names = {p.name for p in folder.iterdir()} - {LOCK_NAME, FINGERPRINT}
        if only is not None:
            names &= set(only)
        if names:
            diff = changes(old, fp)
            more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
            log.warning("%s: %s not reused (%s%s changed): rebuilding", folder, what,
                        ", ".join(diff[:3]), more)
            for p in sorted(folder / n for n in names):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        atomic_write_json(folder / FINGERPRINT, fp)
    return False


def dataset_intact(dataset_dir: str | Path) -> str | None:
    """None when ``dataset_dir``'s manifest and every shard it lists are there with the
    recorded byte size; else what is missing or wrong (a re-run rebuilds instead of trusting
    a report). Sizes only: hashing every shard of a large dataset would cost a full read."""
    from symile_data.io.manifest import ManifestError, read_manifest
    d = Path(dataset_dir)
    try:
        m = read_manifest(d)
    except ManifestError as e:
        return str(e)
    for split in m.get("splits", {}).values():
        for s in split.get("shards", []):
            p = d / s["file"]
            if not p.is_file():
                return f"{p}: listed in the manifest, missing"
            if p.stat().st_size != s["bytes"]:
                return f"{p}: {p.stat().st_size} bytes, the manifest says {s['bytes']}"
    return None


def part_done(part: str | Path, marker: str | Path, expect: dict[str, Any]
              ) -> dict[str, Any] | None:
    """The marker's content when it has every ``expect`` item and the Parquet ``part`` reads
    with ``expect["rows"]`` rows (its footer); None when missing, damaged or of other inputs."""
    import pyarrow.parquet as pq
    try:
        m = read_json(marker)
        if not isinstance(m, dict) or any(m.get(k) != v for k, v in expect.items()):
            return None
        rows = pq.ParquetFile(part).metadata.num_rows
    except (OSError, ValueError):       # missing, or damaged (ArrowInvalid is a ValueError)
        return None
    return m if rows == expect["rows"] else None
