"""Symile-MIMIC shards from the cohort: preprocessed arrays, retrieval sets, manifests.

out/symile-mimic/            Parquet shards (schema mimic_samples), splits train/val/test
out/symile-mimic-wds/        WebDataset shards (ecg.npy, cxr.jpg, labs.npy, observed.npy, json)
out/symile-mimic-retrieval/  Parquet (schema mimic_retrieval), splits val/test
out/failures.parquet         hadm_id, split, status, error of every admission (ok or failed)
out/report.json              counts, written last
Every manifest carries flags.mimic_derived = True: publishing refuses them (PhysioNet DUA).
ECG and CXR are decoded once into a row-file cache (out/.arrays-<hash>, kept until the shards
are done) so a killed run resumes without decoding again; rows are written and read by position
(rowfile.py), never memory-mapped, so memory does not grow with the cohort.
"""
from __future__ import annotations

import io
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from symile_data.config import params_hash, to_dict
from symile_data.hashing import sha256_file
from symile_data.io.atomic import atomic_path, atomic_write_json, read_json
from symile_data.io.card import write_root_card
from symile_data.io.fingerprint import dataset_intact
from symile_data.io.openfile import read_parquet
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.wds import write_wds_dataset
from symile_data.mimic.config import CXR_SIZE, ECG_LEADS, ECG_SAMPLES, LAB_COLUMNS, ShardsConfig
from symile_data.mimic.images import encode_jpeg
from symile_data.mimic.preprocess import LabEcdf, cxr_array, ecg_array
from symile_data.mimic.rowfile import RowFile
from symile_data.mimic.splits import SPLITS, retrieval_sets
from symile_data.progress import progress
from symile_data.schema import get, mimic_retrieval_schema

log = logging.getLogger(__name__)
FLAGS = {"mimic_derived": True}
ECG_LEN, CXR_LEN = ECG_SAMPLES * ECG_LEADS, CXR_SIZE * CXR_SIZE


def decode_arrays(cohort: pa.Table, ecg_root: Path, cxr_root: Path, cache: Path, seed: int,
                  threads: int = 2, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Decode every row's ECG and CXR into cache/{ecg,cxr}.npy (memmaps, row order of
    ``cohort``); returns (ok mask, error strings). Failures are recorded, not raised."""
    n = cohort.num_rows
    marker = cache / "done.json"
    if marker.exists():
        st = np.load(cache / "status.npz", allow_pickle=False)
        return st["ok"], st["error"]
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    ecg = RowFile(cache / "ecg.npy", np.float32, n, ECG_LEN, create=True)
    cxr = RowFile(cache / "cxr.npy", np.uint8, n, CXR_LEN, create=True)
    train = np.asarray(cohort["split"].to_numpy(zero_copy_only=False)) == "train"
    u = np.random.default_rng([seed, 5]).random((n, 2))        # train crop offsets, seeded
    ecg_paths = cohort["ecg_path"].to_pylist()
    cxr_paths = cohort["cxr_path"].to_pylist()
    errors = np.full(n, "", dtype=object)

    def one(i: int) -> None:
        try:
            e = ecg_array(ecg_root / ecg_paths[i])
            c = cxr_array(cxr_root / cxr_paths[i], tuple(u[i]) if train[i] else None)
            ecg.write(i, e)
            cxr.write(i, c)
        except ValueError as e:                                  # WfdbError, ImageError
            errors[i] = str(e)

    with ThreadPoolExecutor(threads) as ex:
        for s in progress(range(0, n, chunk), desc="decode ECG + CXR", total=-(-n // chunk)):
            list(ex.map(one, range(s, min(n, s + chunk))))
    for f in (ecg, cxr):
        os.fsync(f.fd)
        f.close()
    ok = errors == ""
    errors = errors.astype(str)
    with atomic_path(cache / "status.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, ok=ok, error=errors)
    atomic_write_json(marker, {"rows": n})
    return ok, errors


class SampleRows:
    """Row source over rows ``idx`` of the cohort: Parquet (take_range) and WDS samples.

    A row is ~342 KB (ECG 240 KB + CXR 100 KB): the Parquet writer takes ``max_take_rows``
    (one row group) at a time, so a 1,000-row shard is never whole in memory."""

    def __init__(self, meta: dict[str, np.ndarray], idx: np.ndarray, cache: Path,
                 pct: np.ndarray, obs: np.ndarray, jpeg_quality: int, max_take_rows: int):
        self.meta, self.idx, self.pct, self.obs = meta, idx, pct, obs
        self.max_take_rows = max_take_rows
        n = len(meta["hadm_id"])
        self.ecg = RowFile(cache / "ecg.npy", np.float32, n, ECG_LEN)
        self.cxr = RowFile(cache / "cxr.npy", np.uint8, n, CXR_LEN)
        self.num_rows = self.num_samples = len(idx)
        self.jpeg_quality = jpeg_quality

    def take_range(self, start: int, stop: int) -> pa.Table:
        i = self.idx[start:stop]

        def fsl(a, width, typ):
            return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1), typ), width)
        return pa.table({
            "key": pa.array(self.meta["hadm_id"][i].astype(str)),
            "subject_id": self.meta["subject_id"][i], "hadm_id": self.meta["hadm_id"][i],
            "split": pa.array(self.meta["split"][i].astype(str)),
            "ecg": fsl(self.ecg.read(i), ECG_LEN, pa.float32()),
            "cxr": fsl(self.cxr.read(i), CXR_LEN, pa.uint8()),
            "labs_percentiles": fsl(self.pct[i], self.pct.shape[1], pa.float32()),
            "labs_observed": fsl(self.obs[i], self.obs.shape[1], pa.int8())})

    def take_samples(self, start: int, stop: int) -> list[dict]:
        out = []
        rows = self.idx[start:stop]
        ecg, cxr = self.ecg.read(rows), self.cxr.read(rows)
        for j, i in enumerate(rows):                             # one sample dict per row
            out.append({"__key__": str(self.meta["hadm_id"][i]),
                        "ecg.npy": _npy(ecg[j].reshape(ECG_SAMPLES, ECG_LEADS)),
                        "cxr.jpg": encode_jpeg(cxr[j].reshape(CXR_SIZE, CXR_SIZE),
                                               self.jpeg_quality),
                        "labs.npy": _npy(self.pct[i]), "observed.npy": _npy(self.obs[i]),
                        "json": ('{"subject_id": %d, "hadm_id": %d, "split": "%s"}' % (
                            self.meta["subject_id"][i], self.meta["hadm_id"][i],
                            self.meta["split"][i])).encode()})
        return out


class _WdsView:
    def __init__(self, rows: SampleRows):
        self.rows, self.num_samples = rows, rows.num_samples

    def take_range(self, start: int, stop: int) -> list[dict]:
        return self.rows.take_samples(start, stop)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _retrieval_table(meta, ok, k: int, seed: int) -> dict[str, pa.Table]:
    from symile_data.schema import mimic_retrieval_schema
    out = {}
    for j, sp in enumerate(("val", "test")):
        idx = np.flatnonzero(ok & (meta["split"] == sp))
        cands, label = retrieval_sets(meta["hadm_id"][idx], k, seed + 1 + j, sp)
        out[sp] = pa.table({
            "split": pa.array(np.full(len(idx), sp)), "query_hadm_id": meta["hadm_id"][idx],
            "candidate_hadm_ids": pa.FixedSizeListArray.from_arrays(
                pa.array(cands.reshape(-1), pa.int64()), k),
            "label": pa.array(label, pa.int8())}, schema=mimic_retrieval_schema(k))
    return out


def _outputs_problem(out: Path, cfg: ShardsConfig) -> str | None:
    """What is missing or damaged among the outputs a finished run listed (None: intact):
    a re-run rebuilds those instead of trusting report.json."""
    names = ["symile-mimic"] * ("parquet" in cfg.formats) + \
        ["symile-mimic-wds"] * ("wds" in cfg.formats) + ["symile-mimic-retrieval"]
    if not (out / "failures.parquet").is_file():
        return f"{out / 'failures.parquet'} is missing"
    return next((p for p in map(dataset_intact, (out / n for n in names)) if p), None)


def build_shards(cohort_dir: str | Path, ecg_root: str | Path, cxr_root: str | Path,
                 out: str | Path, cfg: ShardsConfig) -> dict:
    """Preprocess the cohort and write the shard datasets; returns the report."""
    cohort_path, out = Path(cohort_dir) / "cohort.parquet", Path(out)
    if not cohort_path.is_file():
        raise FileNotFoundError(f"{cohort_path}: cohort not found (run `symile-data mimic "
                                f"cohort` first)")
    h = params_hash(cfg, {"cohort_sha256": sha256_file(cohort_path)})
    if (out / "report.json").exists() and read_json(out / "report.json").get("params_hash") == h:
        problem = _outputs_problem(out, cfg)
        if problem is None:
            return read_json(out / "report.json")
        log.info("%s: finished run of these params, but %s: rebuilding", out, problem)
    (out / "report.json").unlink(missing_ok=True)
    table = read_parquet(cohort_path)
    split = np.asarray(table["split"].to_numpy(zero_copy_only=False)).astype(str)
    code = np.searchsorted(np.asarray(SPLITS), split, sorter=np.argsort(SPLITS))
    table = table.take(np.lexsort((table["hadm_id"].to_numpy(), code)))   # split, hadm_id
    meta = {"hadm_id": table["hadm_id"].to_numpy(), "subject_id": table["subject_id"].to_numpy(),
            "split": np.asarray(table["split"].to_numpy(zero_copy_only=False)).astype(str)}
    for stale in out.glob(".arrays-*"):
        if stale.name != f".arrays-{h}":
            shutil.rmtree(stale)
    cache = out / f".arrays-{h}"
    ok, errors = decode_arrays(table, Path(ecg_root), Path(cxr_root), cache, cfg.seed)
    labs = np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in LAB_COLUMNS])
    ecdf = LabEcdf(labs[ok & (meta["split"] == "train")])
    pct, obs = ecdf.features(labs)
    rows = {sp: SampleRows(meta, np.flatnonzero(ok & (meta["split"] == sp)), cache, pct, obs,
                           cfg.jpeg_quality, cfg.row_group_rows) for sp in SPLITS}
    extra = {"params": to_dict(cfg), "lab_columns": list(LAB_COLUMNS),
             "lab_mean_percentile": ecdf.mean_percentile.tolist(),
             "labs_observed": "1 = observed, 0 = missing (imputed with the train mean)"}
    manifests = {}
    if "parquet" in cfg.formats:
        spec = ShardSpec.from_config(cfg)
        manifests["parquet"] = write_parquet_dataset(
            out / "symile-mimic", rows, get("mimic_samples"), name="symile-mimic",
            params_hash=h, spec=spec, flags=FLAGS, extra=extra)
    if "wds" in cfg.formats:
        manifests["wds"] = write_wds_dataset(
            out / "symile-mimic-wds", {sp: _WdsView(r) for sp, r in rows.items()},
            name="symile-mimic-wds", params_hash=h, samples_per_shard=cfg.samples_per_shard,
            flags=FLAGS, extra=extra)
    write_parquet_dataset(out / "symile-mimic-retrieval",
                          _retrieval_table(meta, ok, cfg.n_candidates, cfg.seed),
                          mimic_retrieval_schema(cfg.n_candidates),
                          name="symile-mimic-retrieval", params_hash=h, flags=FLAGS,
                          extra={"n_candidates": cfg.n_candidates, "seed": cfg.seed})
    write_root_card(out, "Symile-MIMIC shards (PhysioNet DUA: local use only, never published)")
    fail = pa.table({"hadm_id": meta["hadm_id"], "split": meta["split"],
                     "status": np.where(ok, "ok", "failed"),
                     "error": pa.array(np.where(ok, None, errors), pa.string())})
    with atomic_path(out / "failures.parquet") as tmp:
        pq.write_table(fail, tmp)
    report = {"params_hash": h, "cohort_rows": table.num_rows, "ok": int(ok.sum()),
              "failed": int((~ok).sum()), "errors": sorted(set(errors[~ok].tolist()))[:20],
              "rows": {sp: r.num_rows for sp, r in rows.items()},
              "formats": list(cfg.formats), "flags": FLAGS}
    atomic_write_json(out / "report.json", report)
    shutil.rmtree(cache, ignore_errors=True)
    return report
