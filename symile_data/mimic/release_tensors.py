"""Import the released Symile-MIMIC tensors into our shards (``mimic_samples``) and retrieval
sets (``mimic_retrieval``), so a user with only the PhysioNet release trains and evaluates.

Release layout (PhysioNet ``symile-mimic`` 1.0.0, written by the reference scripts): the CSVs
``train.csv``, ``val.csv``, ``val_retrieval.csv``, ``test.csv`` and ``labs_means.json`` at the
root; per split ``{split}/{name}_{split}.pt`` (also found under ``data_pt/`` or, as ``.npy``,
under ``data_npy/``) with name in cxr (N, 3, 320, 320) float32 ImageNet-normalised, ecg
(N, 1, 5000, 12) float32 in [-1, 1], labs_percentiles (N, 50) float32 (missing = train mean),
labs_missingness (N, 50) int64 **1 = observed**, hadm_id (N,), and for the retrieval splits
``val_retrieval`` / ``test`` label_hadm_id (N,) and label (N,) in the long format: first one row
per query (label 1, label_hadm_id = its hadm_id), then each query's negatives (label 0).

Conversions (exact, checked): CXR ``u8 = round((x * std[c] + mean[c]) * 255)`` per channel,
clipped to 0..255; the release's three channels come from one grayscale image, so they agree;
re-normalising ``u8`` must give back ``x`` to 1e-5, else the row is counted in
``report.cxr_inexact_rows`` (kept, channel mean). ECG reshaped (5000, 12) row-major;
labs_observed = labs_missingness (same meaning). subject_id comes from the split CSVs.
Splits: train, val (admissions), test = the test queries; retrieval sets from val_retrieval and
test (candidates = the query + its negatives, the query at a seeded position). Memory: tensors
are memory-mapped and read one shard of rows at a time.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from symile_data.io import fingerprint
from symile_data.io.atomic import atomic_write_json
from symile_data.io.openfile import torch_load
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.schema import mimic_retrieval_schema, mimic_samples_schema

log = logging.getLogger(__name__)

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
NAMES = ("cxr", "ecg", "labs_percentiles", "labs_missingness", "hadm_id")
RETRIEVAL_NAMES = ("label_hadm_id", "label")
FLAGS = {"mimic_derived": True}
TOL = 1e-5
CXR_CHUNK = 64      # rows of (3, 320, 320) float32 converted at once (~80 MB of temporaries)


class ReleaseInputError(ValueError):
    """A release file is missing or inconsistent; the message names it."""


def tensor_path(root: Path, split: str, name: str) -> Path:
    for sub, ext in (("", "pt"), ("data_pt/", "pt"), ("data_npy/", "npy"), ("", "npy")):
        p = root / f"{sub}{split}" / f"{name}_{split}.{ext}"
        if p.is_file():
            return p
    raise ReleaseInputError(f"{root}: {split}/{name}_{split}.pt (or data_pt/, data_npy/ .npy) "
                            f"not found")


def load_tensor(path: Path) -> np.ndarray:
    """Memory-mapped array of a .pt (torch zip format) or .npy file."""
    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r")
    import torch
    t = torch_load(path, map_location="cpu", mmap=True, weights_only=True)
    if not isinstance(t, torch.Tensor):
        raise ReleaseInputError(f"{path}: not a tensor ({type(t).__name__})")
    return t.numpy()


def cxr_to_uint8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, S, S) normalised float -> ((n, S*S) uint8, (n,) bool exact)."""
    x = np.asarray(x, np.float32)
    u = np.clip(np.rint((x * STD + MEAN) * np.float32(255)), 0, 255)            # (n, 3, S, S)
    back = (u / np.float32(255) - MEAN) / STD
    exact = (np.abs(back - x).reshape(len(x), -1).max(axis=1) <= TOL) & \
        (u == u[:, :1]).reshape(len(x), -1).all(axis=1)
    gray = np.rint(u.mean(axis=1)).astype(np.uint8)
    return gray.reshape(len(x), -1), exact


class ReleaseSplit:
    """RowSource over rows ``rows`` of one released split (mimic_samples rows)."""

    def __init__(self, arrays: dict[str, np.ndarray], rows: np.ndarray, subject: np.ndarray,
                 split: str):
        self.a, self.rows, self.subject, self.split = arrays, rows, subject, split
        self.num_rows = len(rows)
        # hadm_ids of rows whose CXR is not exact in uint8: a set, since the writer may read a
        # range twice (size probe, then the shard), and a row counts once
        self.inexact_hadm: set[int] = set()

    @property
    def inexact(self) -> int:
        return len(self.inexact_hadm)

    def take_range(self, start: int, stop: int) -> pa.Table:
        i = self.rows[start:stop]
        a = {k: np.asarray(v[i]) for k, v in self.a.items() if k != "cxr"}
        parts = [cxr_to_uint8(self.a["cxr"][i[c:c + CXR_CHUNK]])   # bounded float temporaries
                 for c in range(0, len(i), CXR_CHUNK)]
        cxr = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 0), np.uint8)
        exact = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, bool)
        n = len(i)

        def fsl(x: np.ndarray, typ: pa.DataType) -> pa.Array:
            flat = x.reshape(n, -1)
            return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), typ),
                                                     flat.shape[1])
        hadm = a["hadm_id"].astype(np.int64)
        self.inexact_hadm.update(hadm[~exact].tolist())
        return pa.table({
            "key": pa.array(hadm.astype(str)), "subject_id": self.subject[start:stop],
            "hadm_id": hadm, "split": pa.array([self.split] * n),
            "ecg": fsl(a["ecg"].astype(np.float32), pa.float32()),
            "cxr": fsl(cxr, pa.uint8()),
            "labs_percentiles": fsl(a["labs_percentiles"].astype(np.float32), pa.float32()),
            "labs_observed": fsl(a["labs_missingness"].astype(np.int8), pa.int8())})


def _subjects(root: Path) -> pd.Series:
    """hadm_id -> subject_id from the released split CSVs."""
    frames = []
    for name in ("train.csv", "val.csv", "test.csv"):
        path = root / name
        if not path.is_file():
            raise ReleaseInputError(f"{path}: split CSV not found (needed for subject_id)")
        frames.append(pd.read_csv(path, usecols=["subject_id", "hadm_id"]))
    df = pd.concat(frames).drop_duplicates("hadm_id")
    return pd.Series(df["subject_id"].to_numpy(np.int64), index=df["hadm_id"].to_numpy(np.int64))


def long_to_sets(hadm: np.ndarray, label_hadm: np.ndarray, label: np.ndarray, seed: int,
                 where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long format -> (query rows (Q,), candidates (Q, K) hadm_ids, label (Q,) position)."""
    q = np.flatnonzero((label == 1) & (label_hadm == hadm))
    queries = hadm[q]
    neg = np.flatnonzero(label == 0)
    order = pd.Index(queries).get_indexer(label_hadm[neg])
    if (order < 0).any():
        raise ReleaseInputError(f"{where}: negative rows for label_hadm_id "
                                f"{label_hadm[neg][order < 0][0]} that is no query")
    counts = np.bincount(order, minlength=len(q))
    if len(q) == 0 or (counts != counts[0]).any():
        raise ReleaseInputError(f"{where}: every query needs the same number of negatives; "
                                f"found {sorted(set(counts.tolist()))}")
    k = int(counts[0]) + 1
    negs = hadm[neg[np.argsort(order, kind="stable")]].reshape(len(q), k - 1)  # release order
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, k, len(q))
    cand = np.empty((len(q), k), np.int64)
    slot = np.arange(k)[None, :] != pos[:, None]
    cand[slot] = negs.reshape(-1)
    cand[np.arange(len(q)), pos] = queries
    return q, cand, pos.astype(np.int8)


def release_files(root: Path) -> list[Path]:
    """Every release file ``import_tensors`` reads."""
    files = [tensor_path(root, t, n) for t in ("train", "val", "test") for n in NAMES]
    files += [tensor_path(root, t, n) for t, names in (("test", RETRIEVAL_NAMES),
                                                        ("val_retrieval", ("hadm_id",
                                                                           *RETRIEVAL_NAMES)))
              for n in names]
    return files + [root / n for n in ("train.csv", "val.csv", "test.csv", "labs_means.json")
                    if (root / n).is_file()]


def import_tensors(release: str | Path, out: str | Path, seed: int = 0,
                   spec: ShardSpec | None = None) -> dict[str, Any]:
    """Write ``out/symile-mimic`` and ``out/symile-mimic-retrieval`` from the release."""
    root, out = Path(release), Path(out)
    (out / "report.json").unlink(missing_ok=True)
    spec = spec or ShardSpec(max_rows_per_shard=1000, row_group_rows=64)
    subjects = _subjects(root)
    sources: dict[str, ReleaseSplit] = {}
    retrieval: dict[str, pa.Table] = {}
    for j, (split, tensors) in enumerate((("train", "train"), ("val", "val"),
                                          ("test", "test"))):
        arrays = {n: load_tensor(tensor_path(root, tensors, n)) for n in NAMES}
        n = {k: len(v) for k, v in arrays.items()}
        if len(set(n.values())) != 1:
            raise ReleaseInputError(f"{root}/{tensors}: row counts differ between files {n}")
        hadm = np.asarray(arrays["hadm_id"], np.int64)
        rows = np.arange(len(hadm))
        if split == "test":
            rows, _, _ = _retrieval(root, "test", hadm, seed + 2, retrieval)
        sub = subjects.reindex(hadm[rows])
        if sub.isna().any():
            raise ReleaseInputError(f"{root}: hadm_id {int(sub.index[sub.isna()][0])} of "
                                    f"{tensors}/ is in none of train/val/test.csv")
        sources[split] = ReleaseSplit(arrays, rows, sub.to_numpy(np.int64), split)
    val_hadm = np.asarray(load_tensor(tensor_path(root, "val_retrieval", "hadm_id")), np.int64)
    _retrieval(root, "val_retrieval", val_hadm, seed + 1, retrieval)
    means_path = root / "labs_means.json"
    extra: dict[str, Any] = {"release": str(root), "seed": seed,
                             "labs_observed": "1 = observed, 0 = missing (the release's "
                                              "labs_missingness, same meaning)"}
    if means_path.is_file():
        import json
        extra["labs_means"] = json.loads(means_path.read_text())
    h = f"release-{seed}"
    # params_hash names no release: the fingerprint (the release files read) does, so the
    # shards of another release in ``out`` are dropped, not resumed
    fp = fingerprint.make("mimic-import-release",
                          inputs=fingerprint.files_identity(root, release_files(root)),
                          params={"seed": seed, "spec": asdict(spec)})
    write_parquet_dataset(out / "symile-mimic", sources, mimic_samples_schema(),
                          name="symile-mimic", params_hash=h, spec=spec, flags=FLAGS, extra=extra,
                          fingerprint=fp)
    k = next(iter(retrieval.values())).schema.field("candidate_hadm_ids").type.list_size
    write_parquet_dataset(out / "symile-mimic-retrieval", retrieval, mimic_retrieval_schema(k),
                          name="symile-mimic-retrieval", params_hash=h, flags=FLAGS,
                          extra={"n_candidates": k, "seed": seed, "release": str(root)},
                          fingerprint=fp)
    for split, src in sources.items():
        if src.inexact:
            shown = sorted(src.inexact_hadm)
            log.warning("%s/%s: %d CXR row(s) not exact as uint8 (> %g after re-normalising, or "
                        "channels differ), kept as the channel mean: hadm_id %s%s", root, split,
                        src.inexact, TOL, ", ".join(map(str, shown[:20])),
                        " ..." if len(shown) > 20 else "")
    report = {"rows": {s: src.num_rows for s, src in sources.items()},
              "retrieval_queries": {s: t.num_rows for s, t in retrieval.items()},
              "n_candidates": k, "cxr_inexact_rows": sum(s.inexact for s in sources.values()),
              "cxr_side": math.isqrt(int(np.prod(sources["train"].a["cxr"].shape[2:]))),
              "flags": FLAGS}
    atomic_write_json(out / "report.json", report)
    return report


def _retrieval(root: Path, tensors: str, hadm: np.ndarray, seed: int,
               into: dict[str, pa.Table]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    split = "val" if tensors == "val_retrieval" else "test"
    lab_h = np.asarray(load_tensor(tensor_path(root, tensors, "label_hadm_id")), np.int64)
    lab = np.asarray(load_tensor(tensor_path(root, tensors, "label")), np.int64)
    if not len(lab_h) == len(lab) == len(hadm):
        raise ReleaseInputError(f"{root}/{tensors}: hadm_id, label_hadm_id, label lengths "
                                f"{len(hadm)}, {len(lab_h)}, {len(lab)} differ")
    q, cand, pos = long_to_sets(hadm, lab_h, lab, seed, f"{root}/{tensors}")
    k = cand.shape[1]
    into[split] = pa.table({
        "split": pa.array([split] * len(q)), "query_hadm_id": hadm[q],
        "candidate_hadm_ids": pa.FixedSizeListArray.from_arrays(pa.array(cand.reshape(-1)), k),
        "label": pa.array(pos, pa.int8())}, schema=mimic_retrieval_schema(k))
    return q, cand, pos
