"""Symile-MIMIC shards -> the reference ``process_and_save_tensors.py`` layout.

Per split ``OUT/{split}/``: cxr_ (N, 3, 320, 320) float32, ImageNet-normalised (the grayscale
image repeated on 3 channels, as PIL ``convert('RGB')`` + ``ToTensor`` + ``Normalize`` gave);
ecg_ (N, 1, 5000, 12) float32; labs_percentiles_ (N, 50) float32; labs_missingness_ (N, 50)
int64 with 1 = observed (the reference's meaning, = our labs_observed); hadm_id_ (N,) int64.

Splits: train and val are the admissions of those splits. The retrieval splits use the
reference's long format: ``val_retrieval`` (from the val candidate sets) and ``test`` (from the
test candidate sets) hold first one row per query (its own admission, label 1), then for each
query in order its 9 negative candidates (label 0), with label_hadm_id_ = the query's hadm_id.
Each row carries its own admission's CXR, ECG and labs.

Every tensor is written row by row into its file (Exporter.tensor_file): memory is one output
batch of ~32 MB plus the decode of one source row group, whatever the split or shard size (the
real train CXR tensor is ~12 GB); retrieval rows are written from views of the converted batch.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from symile_data.io.manifest import read_manifest
from symile_data.io.openfile import parquet_schema, read_parquet
from symile_data.io.reader import split_files, table_to_arrays
from symile_data.publish.reference import (Exporter, TensorFile, batch_rows_for, iter_column,
                                           stream_rows)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
ECG_LEADS = 12


def cxr_to_reference(x: np.ndarray) -> np.ndarray:
    """(n, S*S) uint8 grayscale -> (n, 3, S, S) float32, (x/255 - mean[c]) / std[c]."""
    s = math.isqrt(x.shape[1])
    g = x.reshape(len(x), s, s).astype(np.float32)      # (n, S, S): the one temporary
    g /= np.float32(255)
    out = np.empty((len(x), 3, s, s), np.float32)
    for c in range(3):                                   # no (n, 3, S, S) temporaries
        np.subtract(g, IMAGENET_MEAN[c], out=out[:, c])
        out[:, c] /= IMAGENET_STD[c]
    return out


def ecg_to_reference(x: np.ndarray) -> np.ndarray:
    """(n, T*12) row-major -> (n, 1, T, 12) float32."""
    x = x.reshape(len(x), 1, x.shape[1] // ECG_LEADS, ECG_LEADS)
    return x.astype(np.float32, copy=False)      # a view when already float32 (no 64 MB copy)


# name -> (source column, converter, torch dtype, per-row shape from the column width D)
COLUMNS: dict[str, tuple[str, Callable, torch.dtype, Callable[[int], tuple]]] = {
    "cxr": ("cxr", cxr_to_reference, torch.float32, lambda d: (3, math.isqrt(d), math.isqrt(d))),
    "ecg": ("ecg", ecg_to_reference, torch.float32, lambda d: (1, d // ECG_LEADS, ECG_LEADS)),
    "labs_percentiles": ("labs_percentiles", lambda x: x.astype(np.float32), torch.float32,
                         lambda d: (d,)),
    "labs_missingness": ("labs_observed", lambda x: x.astype(np.int64), torch.int64,
                         lambda d: (d,)),
    "hadm_id": ("hadm_id", lambda x: x.astype(np.int64), torch.int64, lambda d: ()),
}


def retrieval_rows(rdir: Path, split: str) -> dict[str, np.ndarray]:
    """Reference long format of one retrieval split: row_ids, label_hadm_id, label (R,)."""
    t = read_parquet(split_files(rdir, split), columns=["query_hadm_id", "candidate_hadm_ids",
                                                         "label"])
    a = table_to_arrays(t)
    query = a["query_hadm_id"].astype(np.int64)               # (Q,)
    cand = a["candidate_hadm_ids"].astype(np.int64)           # (Q, K)
    label = a["label"].astype(np.int64)                       # (Q,) index of the true CXR
    q, k = cand.shape
    bad = np.flatnonzero((label < 0) | (label >= k))
    if len(bad):
        raise ValueError(f"{rdir.name}/{split} row {bad[0]}: label {label[bad[0]]} not in [0, {k})")
    wrong = np.flatnonzero(cand[np.arange(q), label] != query)
    if len(wrong):
        i = wrong[0]
        raise ValueError(f"{rdir.name}/{split} row {i}: candidate {label[i]} is "
                         f"{cand[i, label[i]]}, not the query's hadm_id {query[i]}")
    negatives = cand[np.arange(k)[None, :] != label[:, None]].reshape(q, k - 1)
    return {"row_ids": np.concatenate([query, negatives.ravel()]),
            "label_hadm_id": np.concatenate([query, np.repeat(query, k - 1)]),
            "label": np.concatenate([np.ones(q, np.int64), np.zeros(q * (k - 1), np.int64)])}


def source_positions(files: list[Path], row_ids: np.ndarray, where: str) -> np.ndarray:
    """Row position in the samples split of every output row's hadm_id (R,)."""
    ids = np.concatenate([b["hadm_id"] for b in iter_column(files, ["hadm_id"])] or
                         [np.zeros(0, np.int64)])
    index = pd.Index(ids)
    if not index.is_unique:
        raise ValueError(f"{where}: duplicate hadm_id {index[index.duplicated()][0]} in samples")
    pos = index.get_indexer(row_ids)
    if (pos < 0).any():
        raise ValueError(f"{where}: candidate hadm_id {row_ids[pos < 0][0]} is not an admission "
                         f"of this split ({int((pos < 0).sum())} row(s) unmatched)")
    return pos


def gather_rows(out: TensorFile, files: list[Path], column: str, convert: Callable,
                src_pos: np.ndarray) -> None:
    """out[r] = convert(samples[src_pos[r]]), streaming the samples once in row order: each
    source batch is converted once (one output batch at most) and every output row that uses
    one of its rows (a row recurs up to 10 times) is written from a view of it, no gather."""
    order = np.argsort(src_pos, kind="stable")
    sorted_pos = src_pos[order]
    start = 0
    for b in iter_column(files, [column], batch_rows_for(out)):
        k = len(b[column])
        lo, hi = np.searchsorted(sorted_pos, [start, start + k])
        if hi > lo:
            out.write_rows(order[lo:hi], convert(b[column]), sorted_pos[lo:hi] - start)
        start += k


def export_mimic(sdir: Path, rdir: Path, out: Path) -> dict[str, Any]:
    sm, rm = read_manifest(sdir), read_manifest(rdir)
    ex = Exporter(out, "mimic", [sdir, rdir], {})     # refuses unlabelled MIMIC sources
    ex.record["mimic_derived"] = True   # PhysioNet DUA: local use only, never to a hub
    widths = {c: int(parquet_schema(split_files(sdir, next(iter(sm["splits"])))[0])
                     .field(c).type.list_size) for c in ("cxr", "ecg", "labs_percentiles",
                                                          "labs_observed")}
    width = lambda col: widths.get(col, 0)  # noqa: E731
    retrieval_names = {s: (s if s == "test" else f"{s}_retrieval") for s in rm["splits"]}
    missing = sorted(set(retrieval_names) - set(sm["splits"]))
    if missing:
        raise ValueError(f"{rdir}: retrieval split(s) {missing} have no samples split in {sdir}")
    sizes: dict[str, int] = {}
    for split, info in sm["splits"].items():       # plain splits (train, val)
        if split in retrieval_names.values():
            continue
        files, n = split_files(sdir, split), int(info["rows"])
        sizes[split] = n
        for name, (col, conv, dtype, shape) in COLUMNS.items():
            ex.tensor_file(f"{split}/{name}_{split}.pt", (n, *shape(width(col))), dtype,
                           lambda tf, c=col, f=conv: stream_rows(tf, files, c, f,
                                                                 f"{sdir.name}/{split} {c}"))
    for rsplit, name in retrieval_names.items():   # long-format retrieval splits
        files = split_files(sdir, rsplit)
        rows = retrieval_rows(rdir, rsplit)
        r = len(rows["row_ids"])
        sizes[name] = r
        pos = source_positions(files, rows["row_ids"], f"{sdir.name}/{rsplit}")
        for key, (col, conv, dtype, shape) in COLUMNS.items():
            ex.tensor_file(f"{name}/{key}_{name}.pt", (r, *shape(width(col))), dtype,
                           lambda tf, c=col, f=conv: gather_rows(tf, files, c, f, pos))
        ex.tensor(f"{name}/label_hadm_id_{name}.pt",
                  lambda: torch.from_numpy(rows["label_hadm_id"].copy()))
        ex.tensor(f"{name}/label_{name}.pt", lambda: torch.from_numpy(rows["label"].copy()))
    side = math.isqrt(widths["cxr"])
    meta = {f"{s.replace('_', ' ')} size": n for s, n in sizes.items()}
    meta.update({"cxr_scale": side, "cxr_crop": side,
                 "source": {"samples": sm["name"], "retrieval": rm["name"],
                            "params_hash": sm["params_hash"]}})
    ex.json("metadata.json", meta)
    return ex.complete()
