"""Feature tables: one row per unique item, written in resumable parts.

Layout of one table (``{root}/{modality}/{encoder_id}/``)::

    part-00000.parquet        key, status, error, feat fixed_size_list<float16|float32>[D]
    part-00000.done.json      marker written last: keys sha256, encoder id, counts
    manifest.json             written after all parts: identity, dim, parts, counts

Items are sorted by key and cut into parts of ``items_per_part``; a part whose marker names
the same keys and encoder id is skipped on a rerun (resume) when the table's hidden
``.fingerprint.json`` (encoder identity, amp, items per part: io.fingerprint)
matches -- else every part is dropped first -- and the part file reads with the marker's rows
and each item's upstream error as given now (an item failed upstream then, ok now, is
re-encoded). A failed decode (corrupt image,
unreadable audio) or an upstream ``status != "ok"`` is a row with status "failed" and the
error, never an exception that stops the stage.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Dataset

from symile_data import schema as S
from symile_data.hashing import sha256_json
from symile_data.io import fingerprint
from symile_data.io.atomic import atomic_path, atomic_write_json, read_json
from symile_data.io.fingerprint import part_done, reuse_or_reset
from symile_data.io.lock import remove_stale_tmp
from symile_data.io.openfile import read_parquet
from symile_data.progress import progress

log = logging.getLogger(__name__)
_ADDR = re.compile(r"<[^<>]* at 0x[0-9a-f]+>")


class _Items(Dataset):
    """Item i -> (i, decoded item or None, error). Reads bytes or a file, then decodes."""

    def __init__(self, payloads: list, decode, upstream_errors: list):
        self.payloads, self.decode, self.upstream = payloads, decode, upstream_errors

    def __len__(self) -> int:
        return len(self.payloads)

    def __getitem__(self, i: int):
        if self.upstream[i]:
            return i, None, self.upstream[i]
        try:
            p = self.payloads[i]
            data = p if isinstance(p, bytes) else Path(p).read_bytes()
            return i, self.decode(data), ""
        except Exception as e:  # noqa: BLE001 - any decode failure is per-item data
            where = "" if isinstance(self.payloads[i], bytes) else f"{self.payloads[i]}: "
            # drop object addresses ("<_io.BytesIO object at 0x..>") so errors are deterministic
            msg = _ADDR.sub("<bytes>", str(e))
            return i, None, f"{where}{type(e).__name__}: {msg}"[:500]


class _Collate:
    """Batch of items -> (positions, errors, model inputs for the ok items). Runs in workers."""

    def __init__(self, preprocess):
        self.preprocess = preprocess

    def __call__(self, rows):
        pos = [r[0] for r in rows]
        errors = [r[2] for r in rows]
        ok = [r[1] for r in rows if r[1] is not None]
        inputs = None
        if ok:
            try:
                inputs = self.preprocess(ok)
            except Exception:  # one bad item in the batch: isolate it item by item
                inputs, ok_idx = None, [j for j, r in enumerate(rows) if r[1] is not None]
                parts = []
                for j in ok_idx:
                    try:
                        parts.append(self.preprocess([rows[j][1]]))
                    except Exception as e:  # noqa: BLE001
                        errors[j] = f"preprocess {type(e).__name__}: {e}"[:500]
                        parts.append(None)
                good = [p for p in parts if p is not None]
                if good:
                    inputs = {k: torch.cat([p[k] for p in good]) for k in good[0]}
        return pos, errors, inputs


def _part_table(keys: list[str], errors: list[str], feats: np.ndarray, dim: int,
                dtype: str) -> pa.Table:
    """feats: (n, dim) float32 with rows of failed items ignored (stored as null)."""
    ok = np.array([e == "" for e in errors], dtype=bool)
    np_dtype = np.float16 if dtype == "float16" else np.float32
    values = pa.array(feats.astype(np_dtype).reshape(-1))
    feat = pa.FixedSizeListArray.from_arrays(values, dim, mask=pa.array(~ok))
    return pa.table({
        "key": pa.array(keys, pa.string()),
        "status": pa.array(np.where(ok, "ok", "failed"), pa.string()),
        "error": pa.array(errors, pa.string()),
        "feat": feat,
    }, schema=S.feature_table_schema(dim, dtype))


def encode_items(encoder, keys: list[str], payloads: list, upstream_errors: list[str],
                 out_dir: str | Path, *, batch_size: int, num_workers: int,
                 items_per_part: int, worker: tuple[int, int] = (0, 1),
                 write_manifest: bool = True) -> dict:
    """Encode unique items (sorted by key) into ``out_dir`` parts; returns the run report.

    keys: unique item keys (sorted); payloads: bytes or file path per key; upstream_errors:
    "" for an ok item, else the reason it is recorded as failed without decoding.
    worker (w, W): encode only the parts p with p % W == w (a torchrun rank or a dask task;
    the parts do not depend on W, so the merged table is the single-process table byte for
    byte). ``write_manifest=False`` leaves the manifest to a merge step (``features.parts``).
    """
    w, n_workers = worker
    if not 0 <= w < n_workers:
        raise ValueError(f"worker index {w} outside 0..{n_workers - 1}")
    out = Path(out_dir)
    remove_stale_tmp(out)  # temporaries of killed runs (live writers' are kept)
    ident = encoder.identity
    eid = ident.encoder_id()
    reuse_or_reset(out, fingerprint.make(
        "feature-parts", inputs=None,
        params={"identity": asdict(ident), "amp": getattr(encoder, "amp", None),
                "items_per_part": items_per_part}),     # batch size: same bytes (tested)
        f"{ident.modality} feature parts")
    n_parts = max(1, -(-len(keys) // items_per_part))
    pin = encoder.device.type == "cuda"
    t0, n_encoded, n_skipped, parts = time.perf_counter(), 0, 0, []
    for p in progress(range(n_parts), desc=f"{ident.modality} parts", total=n_parts):
        lo, hi = p * items_per_part, min(len(keys), (p + 1) * items_per_part)
        name = f"part-{p:05d}"
        marker = out / f"{name}.done.json"
        keys_sha = sha256_json(keys[lo:hi])
        parts.append(f"{name}.parquet")
        if p % n_workers != w:
            continue                                          # another worker's part
        if _part_reusable(out / f"{name}.parquet", marker, {"keys_sha256": keys_sha,
                                                           "encoder_id": eid, "rows": hi - lo},
                          upstream_errors[lo:hi]):
            n_skipped += hi - lo
            continue
        ds = _Items(payloads[lo:hi], encoder.decode, upstream_errors[lo:hi])
        dl = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=_Collate(encoder.preprocess), pin_memory=pin,
                        persistent_workers=False)
        feats = np.zeros((hi - lo, encoder.dim), np.float32)
        errors = [""] * (hi - lo)
        for pos, errs, inputs in dl:
            for i, e in zip(pos, errs):
                errors[i] = e
            ok_pos = [i for i, e in zip(pos, errs) if not e]
            if ok_pos:
                feats[ok_pos] = encoder.encode(inputs)  # (n_ok, D)
                n_encoded += len(ok_pos)
        table = _part_table(keys[lo:hi], errors, feats, encoder.dim, ident.dtype)
        with atomic_path(out / f"{name}.parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
        n_fail = sum(1 for e in errors if e)
        atomic_write_json(marker, {"keys_sha256": keys_sha, "encoder_id": eid,
                                   "rows": hi - lo, "failed": n_fail})
    seconds = time.perf_counter() - t0
    if not write_manifest:
        return {"modality": ident.modality, "encoder_id": eid, "worker": [w, n_workers],
                "encoded_this_run": n_encoded, "skipped_resumed": n_skipped,
                "seconds": round(seconds, 3),
                "items_per_s": round(n_encoded / seconds, 2) if seconds > 0 else None}
    counts = _count_status(out, parts)
    report = {"modality": ident.modality, "encoder_id": eid, "unique_items": len(keys),
              "ok": counts["ok"], "failed": counts["failed"], "encoded_this_run": n_encoded,
              "skipped_resumed": n_skipped, "seconds": round(seconds, 3),
              "items_per_s": round(n_encoded / seconds, 2) if seconds > 0 else None,
              "failures": counts["examples"]}
    atomic_write_json(out / "manifest.json", {
        "identity": asdict(ident), "encoder_id": eid, "dim": encoder.dim, "parts": parts,
        "rows": len(keys), "ok": counts["ok"], "failed": counts["failed"],
        "schema": "feature_table"})
    return report


def _part_reusable(part: Path, marker: Path, expect: dict, upstream: list[str]) -> bool:
    """The part is done (``io.fingerprint.part_done``: marker, rows) and each item's stored
    error is its upstream error now (upstream "" = not an upstream failure then either)."""
    if part_done(part, marker, expect) is None:
        return False
    try:
        err = pq.read_table(part, columns=["error"])["error"]
    except (OSError, ValueError):
        return False
    up = pa.array(upstream, pa.string())
    ok = pc.if_else(pc.equal(up, ""), pc.invert(pc.starts_with(err, "upstream ")),
                    pc.equal(err, up))
    return bool(pc.all(ok).as_py())


def _count_status(out: Path, parts: list[str]) -> dict:
    t = pa.concat_tables([read_parquet(out / p, columns=["key", "status", "error"])
                          for p in parts])
    failed = t.filter(pc.equal(t["status"], "failed"))
    examples = [{"key": k, "error": e} for k, e in
                zip(failed["key"].to_pylist()[:20], failed["error"].to_pylist()[:20])]
    return {"ok": t.num_rows - failed.num_rows, "failed": failed.num_rows,
            "examples": examples}


def read_feature_table(table_dir: str | Path) -> tuple[pa.Table, dict]:
    """(table sorted by key, manifest). Raises naming the dir when incomplete."""
    d = Path(table_dir)
    mpath = d / "manifest.json"
    if not mpath.exists():
        raise FileNotFoundError(f"{d}: no manifest.json (feature table incomplete; rerun encode)")
    manifest = read_json(mpath)
    tables = [read_parquet(d / p) for p in manifest["parts"]]
    return pa.concat_tables(tables), manifest
