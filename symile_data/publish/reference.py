"""Export shards to the reference code's tensor layout (rajesh-lab/symile), streaming.

``OUT/{split}/{name}_{split}.pt`` (+ ``.txt``) and ``OUT/metadata.json``, the names the
reference ``SymileM3Dataset`` / ``SymileMIMICDataModule`` load, so code written for the original
files runs unchanged. Each output tensor is preallocated at its final shape and filled shard by
shard (one record batch of one column at a time), then saved atomically: peak memory is one
output tensor plus one batch. ``OUT/symile_data_export.json`` records what was written (shape,
dtype, bytes, sha256) and the source fingerprint; a re-run with the same sources skips files
already written and unchanged (size + sha256), a re-run with other sources or options first
removes the files the record lists, and the record says ``complete: true`` only once every file
is there.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow.compute as pc
import torch

from symile_data.errors import writing
from symile_data.hashing import sha256_file, sha256_json
from symile_data.io.atomic import atomic_path, atomic_write_json, read_json, scratch_dir
from symile_data.io.fingerprint import changes
from symile_data.io.lock import folder_lock, remove_stale_tmp
from symile_data.io.manifest import MANIFEST, read_manifest, schema_from_b64
from symile_data.io.memory import release_unused
from symile_data.io.openfile import parquet_file, parquet_schema
from symile_data.io.reader import column_to_numpy, split_files
from symile_data.publish.guard import export_restriction
from symile_data.publish.tensorfile import TensorFile

log = logging.getLogger(__name__)

EXPORT_RECORD = "symile_data_export.json"
EXPORT_VERSION = 1
BATCH_ROWS = 1024   # rows per record batch read from a shard
# Streamed exports: rows per batch so one converted output batch is ~32 MB. Not 64: decoding a
# CXR batch from Parquet costs ~13 B of Arrow memory per uint8 pixel (int16 definition and
# repetition levels per list value, power-of-two buffers: 77 MB for a 54-row, 64 MB batch),
# plus its float32 output; the 40k-admission export peaked at 613 MB with 64 MB, 502 with 32.
BATCH_BYTES = 32 << 20

M3_COLUMNS = {"image_feat", "audio_feat", "text_input_ids", "text_attention_mask", "cls_id",
              "lang", "text"}
MIMIC_COLUMNS = {"hadm_id", "ecg", "cxr", "labs_percentiles", "labs_observed"}
RETRIEVAL_COLUMNS = {"split", "query_hadm_id", "candidate_hadm_ids", "label"}


def dataset_columns(d: Path) -> list[str]:
    m = read_manifest(d)
    if m.get("format") != "parquet":
        return []
    if m.get("schema_arrow_b64"):
        return schema_from_b64(m["schema_arrow_b64"]).names
    first = next((s["file"] for i in m["splits"].values() for s in i["shards"]), None)
    return parquet_schema(d / first).names if first else []


def classify(d: Path) -> str | None:
    """'m3', 'mimic' (samples) or 'retrieval' from the dataset's columns; None otherwise."""
    cols = set(dataset_columns(d))
    for kind, need in (("m3", M3_COLUMNS), ("mimic", MIMIC_COLUMNS),
                       ("retrieval", RETRIEVAL_COLUMNS)):
        if need <= cols:
            return kind
    return None


def iter_column(files: list[Path], columns: list[str],
                batch_rows: int = BATCH_ROWS) -> Iterator[dict[str, Any]]:
    """Batches of ``columns`` in shard order: {name: (rows, ...) array or list[str]}.

    One reader per row group, batches of at most ``batch_rows`` rows inside it: a batch never
    spans row groups. Why (measured on 1,000-row MIMIC shards of 64-row groups, issue 11):
    one reader over a whole file keeps the compressed column chunk of every row group it has
    read (+3.3 MB of ECG per group, +53 MB by the end of a shard), and a batch spanning row
    groups is assembled from their decoded pieces (143 MB of Arrow memory for a 64 MB ECG
    batch). Per row group, memory is the decode of one batch of one row group."""
    for f in files:
        pf = parquet_file(f)
        for g in range(pf.num_row_groups):
            for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[g],
                                         columns=columns):
                yield {n: column_to_numpy(batch.column(n), n) for n in columns}
                del batch
                release_unused()    # freed decode pages back to the OS (io/memory.py)


def fill_rows(out: torch.Tensor, files: list[Path], column: str,
              convert: Callable[[np.ndarray], np.ndarray], where: str) -> torch.Tensor:
    """Fill ``out`` (N, ...) with ``convert(column batch)`` in row order."""
    pos = 0
    for b in iter_column(files, [column]):
        x = convert(b[column])
        if pos + len(x) > len(out):
            raise ValueError(f"{where}: shards hold more than the manifest's {len(out)} rows")
        out[pos:pos + len(x)] = torch.from_numpy(np.ascontiguousarray(x))
        pos += len(x)
    if pos != len(out):
        raise ValueError(f"{where}: shards hold {pos} rows, manifest says {len(out)}")
    return out


def batch_rows_for(tf: TensorFile) -> int:
    """Rows per batch so that one output batch is about BATCH_BYTES."""
    return max(1, min(BATCH_ROWS, BATCH_BYTES // max(1, tf.row_bytes)))


def stream_rows(tf: TensorFile, files: list[Path], column: str,
                convert: Callable[[np.ndarray], np.ndarray], where: str) -> None:
    """Row i of ``tf`` = convert(column)[i] in shard order (the streamed ``fill_rows``)."""
    pos, n = 0, tf.shape[0]
    for b in iter_column(files, [column], batch_rows_for(tf)):
        x = convert(b[column])
        if pos + len(x) > n:
            raise ValueError(f"{where}: shards hold more than the manifest's {n} rows")
        tf.write(pos, x)
        pos += len(x)
    if pos != n:
        raise ValueError(f"{where}: shards hold {pos} rows, manifest says {n}")


def write_lines(path: Path, files: list[Path], column: str,
                convert: Callable[[list[str]], list[str]] = lambda x: x) -> None:
    """One line per row, joined by '\\n' without a trailing newline (as the reference wrote)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        first = True
        for b in iter_column(files, [column]):
            lines = convert(b[column])
            if not lines:
                continue
            bad = np.flatnonzero(pc.match_substring(lines, "\n").to_numpy(zero_copy_only=False))
            if len(bad):
                raise ValueError(f"{path.name}: value {lines[bad[0]]!r} contains a newline")
            f.write(("" if first else "\n") + "\n".join(lines))
            first = False


@contextlib.contextmanager
def named_tmp(path: Path) -> Iterator[Path]:
    """A temporary path with ``path``'s own file name, in a per-process hidden folder beside
    it; renamed into place on success, removed on error. ``torch.save`` names its zip archive
    after the file (``cxr_train/data.pkl``), so a temp name with the process id in it
    (``atomic_path``) made every export's bytes differ from the last; this way the bytes are
    the same on every run and the archive is named as the reference's own ``torch.save``.
    The folder is an ``io.atomic.scratch_dir`` (``.<file>.<pid>.tmp/``): one a killed run left
    is swept when the next export takes the lock of OUT (``export_reference``)."""
    with writing(path), scratch_dir(path.parent, path.name) as folder:
        tmp = folder / path.name
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)


class Exporter:
    """Writes files under ``out`` and keeps the resume record (EXPORT_RECORD)."""

    def __init__(self, out: Path, kind: str, sources: list[Path], options: dict[str, Any]):
        # unlabelled MIMIC content is refused (before anything is written); a labelled
        # source's restriction is carried into the record
        restricted = any([export_restriction(s) for s in sources])
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.fingerprint = sha256_json({
            "version": EXPORT_VERSION, "kind": kind, "options": options,
            "sources": [read_manifest(s)["splits"] for s in sources]})[:16]
        self.record_path = self.out / EXPORT_RECORD
        old = read_json(self.record_path) if self.record_path.exists() else {}
        keep = old.get("fingerprint") == self.fingerprint
        if old.get("files") and not keep:     # another export's files: none stays in out
            log.warning("%s: export of other sources or options (%s) not reused: removing its "
                        "%d file(s)", self.out, ", ".join(changes(
                            {k: old.get(k) for k in ("kind", "sources", "options")},
                            {"kind": kind, "sources": [str(s) for s in sources],
                             "options": options}) or ["source content"]), len(old["files"]))
            for rel in sorted(old["files"]):
                (self.out / rel).unlink(missing_ok=True)
        self.record = {"kind": kind, "fingerprint": self.fingerprint, "complete": False,
                       "sources": [str(s) for s in sources], "options": options,
                       "files": old.get("files", {}) if keep else {}}
        if restricted:
            self.record["mimic_derived"] = True   # PhysioNet DUA: local use only
        self._save()

    def _save(self) -> None:
        atomic_write_json(self.record_path, self.record)

    def done(self, rel: str) -> bool:
        """Exported by this fingerprint, and the file is still the one written (size, sha)."""
        entry, path = self.record["files"].get(rel), self.out / rel
        ok = entry is not None and path.exists() and path.stat().st_size == entry["bytes"] \
            and sha256_file(path) == entry["sha256"]
        if ok:
            log.info("skip %s (already exported)", rel)
        return ok

    def _finish(self, rel: str, **info: Any) -> None:
        path = self.out / rel
        self.record["files"][rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path),
                                     **info}
        self._save()

    def tensor(self, rel: str, build: Callable[[], torch.Tensor]) -> None:
        if self.done(rel):
            return
        t = build()
        with named_tmp(self.out / rel) as tmp:
            torch.save(t, tmp)
        self._finish(rel, shape=list(t.shape), dtype=str(t.dtype).replace("torch.", ""))
        del t

    def tensor_file(self, rel: str, shape: tuple[int, ...], dtype: torch.dtype,
                    fill: Callable[[TensorFile], None]) -> None:
        """Like ``tensor`` for tensors larger than memory: ``fill`` writes rows into a
        TensorFile at a temp name; renamed into place once complete."""
        if self.done(rel):
            return
        with named_tmp(self.out / rel) as tmp:
            tf = TensorFile(tmp, shape, dtype)
            try:
                fill(tf)
            finally:
                tf.close()
        self._finish(rel, shape=list(shape), dtype=str(dtype).replace("torch.", ""))

    def text(self, rel: str, files: list[Path], column: str,
             convert: Callable[[list[str]], list[str]] = lambda x: x) -> None:
        if not self.done(rel):
            write_lines(self.out / rel, files, column, convert)
            self._finish(rel)

    def json(self, rel: str, obj: Any) -> None:
        atomic_write_json(self.out / rel, obj)
        self._finish(rel)

    def complete(self) -> dict[str, Any]:
        self.record["complete"] = True
        self._save()
        return self.record


def find_key(obj: Any, names: tuple[str, ...]) -> Any:
    """First value under any of ``names`` in a nested dict (depth-first, sorted keys)."""
    if isinstance(obj, dict):
        for k in sorted(obj):
            if k in names and not isinstance(obj[k], (dict, list)):
                return obj[k]
        for k in sorted(obj):
            v = find_key(obj[k], names)
            if v is not None:
                return v
    return None


def export_reference(src: str | Path, out: str | Path, *, retrieval: str | Path | None = None,
                     missingness_prob: float | None = None,
                     text_enc_hidden_sz: int | None = None) -> dict[str, Any]:
    """Export the one M3 training dataset or MIMIC samples dataset under ``src``."""
    from symile_data.publish import reference_m3, reference_mimic
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such directory")
    dirs = [src] if (src / MANIFEST).exists() else sorted(p.parent for p in src.rglob(MANIFEST))
    kinds: dict[str, list[Path]] = {}
    for d in dirs:
        kinds.setdefault(classify(d) or "other", []).append(d)
    if retrieval is not None:
        if classify(Path(retrieval)) != "retrieval":
            raise ValueError(f"{retrieval}: not a MIMIC retrieval dataset (needs columns "
                             f"{sorted(RETRIEVAL_COLUMNS)})")
        kinds["retrieval"] = [Path(retrieval)]
    if "mimic" in kinds and "retrieval" not in kinds and src in dirs:
        # a samples folder given alone: ``mimic import-release`` / ``mimic shards`` write the
        # retrieval sets beside it (symile-mimic/ + symile-mimic-retrieval/)
        beside = [d for d in sorted(src.parent.iterdir()) if d != src and
                  (d / MANIFEST).exists() and classify(d) == "retrieval"]
        if len(beside) == 1:
            kinds["retrieval"] = beside
    found = {k: [str(d) for d in v] for k, v in kinds.items()}
    main = kinds.get("m3", []) + kinds.get("mimic", [])
    if len(main) != 1:
        raise ValueError(f"{src}: expected exactly one M3 training dataset (columns "
                         f"{sorted(M3_COLUMNS)}) or one MIMIC samples dataset (columns "
                         f"{sorted(MIMIC_COLUMNS)}); found {found}")
    if "m3" not in kinds and len(kinds.get("retrieval", [])) != 1:
        raise ValueError(f"{src}: a MIMIC export needs exactly one retrieval dataset (columns "
                         f"{sorted(RETRIEVAL_COLUMNS)}) under DIR, beside it, or given with "
                         f"--retrieval (e.g. the import's symile-mimic-retrieval/ folder); "
                         f"found {found}")
    for d in main + kinds.get("retrieval", []):
        export_restriction(d)   # before OUT is created
    out = Path(out)
    with folder_lock(out):      # one writer of OUT; what a killed export left is swept
        remove_stale_tmp(out, recursive=True)
        if "m3" in kinds:
            return reference_m3.export_m3(main[0], out, missingness_prob=missingness_prob,
                                          text_enc_hidden_sz=text_enc_hidden_sz)
        return reference_mimic.export_mimic(main[0], kinds["retrieval"][0], out)


__all__ = ["export_reference", "classify", "Exporter", "fill_rows", "iter_column",
           "split_files", "find_key", "stream_rows", "batch_rows_for", "TensorFile"]
