"""labevents.csv.gz -> Parquet, streaming (the real file has ~118M rows), and the cohort labs.

The conversion reads the csv.gz in blocks with pyarrow's streaming CSV reader and appends row
groups to a Parquet file: memory is bounded by the block size, never the whole file. A stamp
``source.json`` in the out's run log (symile_data.runlog, outside the DVC outs) records the
source's and the written file's content identity (io.fingerprint.file_identity: size + hash,
no mtime), so the conversion runs once, and again when either file changed.
Real-file quirks: quoted ``comments`` holding commas and line breaks (``newlines_in_values``),
empty ``valuenum`` (null: the row is no lab value), any ``valueuom`` spelling (not read:
valuenum is taken as given, as the reference did).

The cohort labs are never loaded whole: ``stream_cohort_labs`` scans the Parquet batch by batch
with a pushed-down filter (the 50 itemids, the candidate subjects, the span of their windows) and
keeps only a running earliest value per (admission, lab): memory is one batch plus
(admissions x 50) slots, whatever the file size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from symile_data.io import fingerprint
from symile_data.io.atomic import atomic_path, atomic_write_json, read_json
from symile_data.io.memory import release_unused
from symile_data.mimic.csvstream import ReadGate, csv_blocks
from symile_data.mimic.intervals import window_ranges
from symile_data.mimic.readers import MimicInputError
from symile_data.runlog import log_dir

LAB_COLUMNS = {"labevent_id": pa.int64(), "subject_id": pa.int64(), "hadm_id": pa.int64(),
               "itemid": pa.int64(), "charttime": pa.timestamp("s"),
               "valuenum": pa.float64()}


def convert_labevents(csv_gz: str | Path, out: str | Path,
                      block_bytes: int = 64 << 20, ahead: int = 2) -> Path:
    """Stream ``csv_gz`` into ``out`` (Parquet, LAB_COLUMNS only); skipped when up to date."""
    src, out = Path(csv_gz), Path(out)
    if not src.is_file():
        raise MimicInputError(f"{src}: file not found")
    stamp = fingerprint.make("labevents-parquet", inputs=fingerprint.file_identity(src),
                             params={"columns": list(LAB_COLUMNS)})
    marker = log_dir(out) / "source.json"
    if out.is_file() and marker.exists() and read_json(marker) == {
            **stamp, "output": fingerprint.file_identity(out)}:   # the file it wrote, intact
        return out
    marker.unlink(missing_ok=True)
    schema = pa.schema([(k, v) for k, v in LAB_COLUMNS.items()])
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            for _, block in csv_blocks(src, LAB_COLUMNS, block_bytes, what="labevents",
                                       ahead=ahead, gate=ReadGate):
                w.write_table(block.cast(schema))
                release_unused()                  # no creep over blocks
    atomic_write_json(marker, {**stamp, "output": fingerprint.file_identity(out)})
    return out


LAB_FILTER_COLUMNS = ["labevent_id", "subject_id", "itemid", "charttime", "valuenum"]
BATCH_ROWS = 1 << 20     # labevents rows per scanned batch (~40 MB of the five columns)
READ_ROWS = 1 << 16      # rows decoded at a time before the filter


def _lab_filter(itemids: tuple[int, ...]) -> pc.Expression:
    return (pc.field("itemid").isin(list(itemids)) & pc.field("valuenum").is_valid()
            & pc.field("charttime").is_valid())


def _lab_arrays(t: pa.Table | pa.RecordBatch, itemids: tuple[int, ...]) -> dict[str, np.ndarray]:
    """labevent_id, subject_id, item_idx (index into ``itemids``), t_s (int64 s), valuenum."""
    item = t["itemid"].to_numpy()
    lut = np.asarray(itemids)
    order = np.argsort(lut)
    item_idx = order[np.searchsorted(lut[order], item)].astype(np.int16)
    return {"labevent_id": t["labevent_id"].to_numpy(), "subject_id": t["subject_id"].to_numpy(),
            "item_idx": item_idx, "valuenum": t["valuenum"].to_numpy(),
            # Parquet stores timestamp[s] as ms: normalise to seconds
            "t_s": t["charttime"].cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy() // 1000}


def load_cohort_labs(parquet: str | Path, itemids: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Every row of the given itemids with a non-null valuenum and charttime, as numpy columns
    (whole-table; for tests and small files: the cohort uses ``stream_cohort_labs``)."""
    t = pads.dataset(str(parquet), format="parquet").to_table(columns=LAB_FILTER_COLUMNS,
                                                              filter=_lab_filter(itemids))
    return _lab_arrays(t, itemids)


def _skip(rg_stats: dict, lo: dict) -> bool:
    """True when a row group's min/max statistics exclude every wanted row."""
    for col, (want_lo, want_hi) in lo.items():
        st = rg_stats.get(col)
        if st is not None and st.has_min_max and (st.max < want_lo or st.min > want_hi):
            return True
    return False


def scan_labs(parquet, itemids, subjects: np.ndarray, t_lo: int, t_hi: int,
              batch_rows: int):
    """Record batches (<= batch_rows) of the wanted rows, one row group at a time: row groups
    are skipped by their subject_id / charttime statistics (predicate pushdown), the rest is
    read (five columns) and filtered (itemid, non-null valuenum, subjects, time span)."""
    import datetime as dt
    f = pq.ParquetFile(parquet, buffer_size=1 << 20, pre_buffer=False)
    names = f.schema_arrow.names
    epoch = dt.datetime(1970, 1, 1)
    bounds = {"subject_id": (int(subjects[0]), int(subjects[-1])),
              "charttime": (epoch + dt.timedelta(seconds=t_lo),
                            epoch + dt.timedelta(seconds=t_hi))}
    flt = (_lab_filter(itemids) & pc.field("subject_id").isin(subjects)
           & (pc.field("charttime") >= pa.scalar(t_lo, pa.timestamp("s")))
           & (pc.field("charttime") <= pa.scalar(t_hi, pa.timestamp("s"))))
    for i in range(f.metadata.num_row_groups):
        rg = f.metadata.row_group(i)
        stats = {names[j]: rg.column(j).statistics for j in range(rg.num_columns)
                 if names[j] in bounds}
        if _skip(stats, bounds):
            continue
        # one contiguous table: the filter keeps the reader's small chunks, and every batch
        # costs a pass over the queries
        # decoded READ_ROWS rows at a time and filtered at once: a whole row group of the five
        # columns (~600k rows: ~25 MB decoded plus the reader's pages) is never in memory
        parts = [pa.Table.from_batches([b]).filter(flt) for b in f.iter_batches(
            READ_ROWS, row_groups=[i], columns=LAB_FILTER_COLUMNS, use_threads=False)]
        if not parts:
            continue
        t = pa.concat_tables(parts).combine_chunks()
        del parts
        for batch in t.to_batches(max_chunksize=batch_rows):
            yield batch
        del t
        release_unused()                  # the row group's pages back to the OS


def stream_cohort_labs(parquet: str | Path, itemids: tuple[int, ...], subject_id: np.ndarray,
                       win_lo: np.ndarray, win_hi: np.ndarray,
                       batch_rows: int = BATCH_ROWS) -> np.ndarray:
    """(n, len(itemids)) valuenum of the earliest row per lab with win_lo[q] <= charttime <=
    win_hi[q] (int64 s) for subject_id[q]; ties by labevent_id; NaN when none.

    Only rows of these subjects, these itemids and the overall time span are kept: row groups
    outside the subject / time range are skipped by their statistics, the others are read one at
    a time (five columns) and filtered (``scan_labs``), then folded by ``earliest_labs``.
    """
    if len(subject_id) == 0:
        return np.full((0, len(itemids)), np.nan)
    win_lo, win_hi = np.asarray(win_lo, np.int64), np.asarray(win_hi, np.int64)
    return earliest_labs(scan_labs(parquet, itemids, np.unique(subject_id), int(win_lo.min()),
                                   int(win_hi.max()), batch_rows),
                         itemids, subject_id, win_lo, win_hi)


def earliest_labs(batches, itemids: tuple[int, ...], subject_id: np.ndarray,
                  win_lo: np.ndarray, win_hi: np.ndarray) -> np.ndarray:
    """The answer of ``stream_cohort_labs`` from record batches of lab rows (the five
    LAB_FILTER_COLUMNS; any order, any filter that keeps every wanted row). Each batch is
    reduced to its earliest row per query and merged into a running minimum of (charttime,
    labevent_id): the same answer as sorting all rows at once. Memory: one batch plus
    (n x 50) slots."""
    n, k = len(subject_id), len(itemids)
    out = np.full(n * k, np.nan)
    if n == 0:
        return out.reshape(n, k)
    subj = np.asarray(subject_id, np.int64)
    win_lo, win_hi = np.asarray(win_lo, np.int64), np.asarray(win_hi, np.int64)
    by_subj = np.argsort(subj, kind="stable")
    subj_sorted = subj[by_subj]
    best_t = np.full(n * k, np.iinfo(np.int64).max)
    best_id = np.full(n * k, np.iinfo(np.int64).max)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        b = _lab_arrays(batch, itemids)
        # queries of the admissions whose subject is in this batch only: the join's
        # temporaries follow the batch, not the cohort (~880k (admission, lab) slots at 430k)
        a = _admissions_of(np.unique(b["subject_id"]), subj_sorted, by_subj)
        slot = (np.repeat(a * k, k) + np.tile(np.arange(k), len(a)))       # into (n * k,)
        order, lo, hi = window_ranges(b["subject_id"] * k + b["item_idx"], b["t_s"],
                                      [b["labevent_id"]], np.repeat(subj[a] * k, k)
                                      + np.tile(np.arange(k), len(a)),
                                      np.repeat(win_lo[a], k), np.repeat(win_hi[a], k))
        hit = np.flatnonzero(hi > lo)
        q, first = slot[hit], order[lo[hit]]                 # earliest of this batch per slot
        t, lid = b["t_s"][first], b["labevent_id"][first]
        better = (t < best_t[q]) | ((t == best_t[q]) & (lid < best_id[q]))
        q, first = q[better], first[better]
        best_t[q], best_id[q], out[q] = t[better], lid[better], b["valuenum"][first]
    return out.reshape(n, k)


def _admissions_of(subjects: np.ndarray, subj_sorted: np.ndarray, by_subj: np.ndarray
                   ) -> np.ndarray:
    """Indices (ascending) of the admissions of ``subjects`` (sorted unique)."""
    lo = np.searchsorted(subj_sorted, subjects, "left")
    hi = np.searchsorted(subj_sorted, subjects, "right")
    lens = hi - lo
    run = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
    return np.sort(by_subj[run])
