"""The MIMIC record lists split by subject into bucket files, so the cohort joins one subject
range at a time and its memory is set by the bucket size, not by MIMIC-IV's size.

Every list is read block by block (``readers.*_blocks``) and each block's rows go to bucket
``subject_id % n`` (an IPC file per list and bucket, ``io/buckets.py``). Every window of the
cohort (ECG, labs, CXR) matches events of the admission's own subject, so a bucket holds all
it needs. ``n`` = ceil(admissions / ``per_bucket``): ~8k admissions, ~16k ECG records and
~9k CXR rows per bucket at MIMIC-IV's ratios (430k / 800k / 377k).

Rows keep their file order within a bucket, with their row number in the file (``row``), so
per-bucket results can be merged back into file order. CheXpert rows are bucketed by their own
subject_id: a study's labels are looked up among its subject's (MIMIC-CXR study ids belong to
one subject; the reference joins on study_id alone).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from symile_data.io.buckets import BucketWriter, read_ipc
from symile_data.io.memory import release_unused
from symile_data.mimic.config import HOSP_FILES
from symile_data.mimic.csvstream import MimicInputError, csv_blocks
from symile_data.mimic.readers import (BLOCK_BYTES, admission_blocks, chexpert_blocks,
                                       cxr_blocks, ecg_blocks)

ADMISSIONS_PER_BUCKET = 8192
I64, STR = pa.int64(), pa.string()
SCHEMAS = {
    "adm": pa.schema([("subject_id", I64), ("hadm_id", I64), ("admit_s", I64)]),
    "hadm": pa.schema([("hadm_id", I64), ("row", I64)]),
    "ecg": pa.schema([("row", I64), ("subject_id", I64), ("study_id", I64), ("t_s", I64),
                      ("path", STR)]),
    "cxr": pa.schema([("row", I64), ("dicom_id", STR), ("subject_id", I64),
                      ("study_id", I64), ("t_ms", I64)]),       # frontal (AP/PA) rows only
    "chexpert": pa.schema([("subject_id", I64), ("study_id", I64)]),
}


@dataclass
class Buckets:
    """Bucket files of each list (``paths[list][b]``) and the lists' row counts."""
    n: int
    paths: dict[str, list[Path]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def read(self, name: str, b: int) -> pa.Table:
        return read_ipc(self.paths[name][b])


def _spill(blocks, name: str, folder: Path, n: int, with_row: bool, keep=None) -> tuple:
    """Write every block's rows to bucket subject_id % n; -> (paths, rows read, kept)."""
    rows = 0
    with BucketWriter(folder, name, n, SCHEMAS[name]) as w:
        for row0, t in blocks:
            if with_row:
                t = t.append_column("row", pa.array(np.arange(row0, row0 + t.num_rows)))
            rows += t.num_rows
            if keep is not None:
                t = t.filter(t[keep])
            w.write(t.select(SCHEMAS[name].names), t["subject_id"].to_numpy() % n)
            release_unused()                            # one block's memory at a time
    return w.paths, rows, int(w.rows.sum())


def count_admissions(mimic_iv: str | Path, block_bytes: int = BLOCK_BYTES) -> int:
    path = Path(mimic_iv) / HOSP_FILES["admissions"]
    return sum(t.num_rows for _, t in csv_blocks(path, {"subject_id": I64}, block_bytes,
                                                 what="admissions"))


def check_unique_hadm(paths: list[Path], source: Path) -> None:
    """hadm_id must be unique: each hadm bucket (hadm_id % n) is checked on its own; the error
    names the first repeated row of the file, as a whole-table check would."""
    first_dup = None
    for p in paths:
        t = read_ipc(p)
        h, r = t["hadm_id"].to_numpy(), t["row"].to_numpy()
        order = np.lexsort((r, h))
        h, r = h[order], r[order]
        dup = np.flatnonzero(h[1:] == h[:-1]) + 1          # later occurrences
        if len(dup) and (first_dup is None or r[dup].min() < first_dup[1]):
            i = dup[np.argmin(r[dup])]
            first_dup = (int(h[i]), int(r[i]))
    if first_dup is not None:
        raise MimicInputError(f"{source}: duplicate hadm_id {first_dup[0]}")


def partition_lists(mimic_iv: str | Path, ecg_root: str | Path, cxr_root: str | Path,
                    folder: str | Path, per_bucket: int = ADMISSIONS_PER_BUCKET,
                    block_bytes: int = BLOCK_BYTES) -> Buckets:
    """Admissions, ECG records, frontal CXR rows and CheXpert studies by subject bucket."""
    folder = Path(folder)
    n = max(1, -(-count_admissions(mimic_iv, block_bytes) // per_bucket))
    out = Buckets(n)
    with BucketWriter(folder, "hadm", n, SCHEMAS["hadm"]) as hadm:
        def adm_blocks():
            for row0, t in admission_blocks(mimic_iv, block_bytes):
                hadm.write(pa.table({"hadm_id": t["hadm_id"], "row": np.arange(
                    row0, row0 + t.num_rows)}), t["hadm_id"].to_numpy() % n)
                yield row0, t
        out.paths["adm"], out.rows["adm"], _ = _spill(adm_blocks(), "adm", folder, n, False)
    check_unique_hadm(hadm.paths, Path(mimic_iv) / HOSP_FILES["admissions"])
    out.paths["ecg"], out.rows["ecg"], _ = _spill(ecg_blocks(ecg_root, block_bytes), "ecg",
                                                  folder, n, True)
    out.paths["cxr"], out.rows["cxr"], out.rows["frontal"] = _spill(
        cxr_blocks(cxr_root, block_bytes), "cxr", folder, n, True, keep="frontal")
    out.paths["chexpert"], out.rows["chexpert"], _ = _spill(
        chexpert_blocks(cxr_root, block_bytes), "chexpert", folder, n, False)
    return out
