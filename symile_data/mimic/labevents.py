"""labevents.csv.gz -> Parquet, streaming (the real file has ~118M rows), and the cohort labs.

The conversion reads the csv.gz in blocks with pyarrow's streaming CSV reader and appends row
groups to a Parquet file: memory is bounded by the block size, never the whole file. A stamp
``source.json`` in the out's run log (symile_data.runlog, outside the DVC outs: it holds an
mtime and an absolute path) records the source size and mtime so the conversion runs once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from symile_data.io.atomic import atomic_path, atomic_write_json, read_json
from symile_data.mimic.readers import MimicInputError
from symile_data.runlog import log_dir

LAB_COLUMNS = {"labevent_id": pa.int64(), "subject_id": pa.int64(), "hadm_id": pa.int64(),
               "itemid": pa.int64(), "charttime": pa.timestamp("s"),
               "valuenum": pa.float64()}


def convert_labevents(csv_gz: str | Path, out: str | Path,
                      block_bytes: int = 64 << 20) -> Path:
    """Stream ``csv_gz`` into ``out`` (Parquet, LAB_COLUMNS only); skipped when up to date."""
    src, out = Path(csv_gz), Path(out)
    if not src.is_file():
        raise MimicInputError(f"{src}: file not found")
    st = src.stat()
    stamp = {"source": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "columns": list(LAB_COLUMNS)}
    marker = log_dir(out) / "source.json"
    if out.exists() and marker.exists() and read_json(marker) == stamp:
        return out
    marker.unlink(missing_ok=True)
    schema = pa.schema([(k, v) for k, v in LAB_COLUMNS.items()])
    try:
        reader = pacsv.open_csv(
            src, read_options=pacsv.ReadOptions(block_size=block_bytes),
            convert_options=pacsv.ConvertOptions(column_types=LAB_COLUMNS,
                                                 include_columns=list(LAB_COLUMNS)))
    except (pa.ArrowInvalid, OSError) as e:
        raise MimicInputError(f"{src}: cannot read labevents ({e})") from e
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            try:
                for batch in reader:
                    w.write_table(pa.Table.from_batches([batch]).cast(schema))
            except pa.ArrowInvalid as e:
                raise MimicInputError(f"{src}: bad labevents row ({e})") from e
    atomic_write_json(marker, stamp)
    return out


def load_cohort_labs(parquet: str | Path, itemids: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Rows of the given itemids with a non-null valuenum and charttime, as numpy columns:
    labevent_id, subject_id, item_idx (index into ``itemids``), t_s (int64 s), valuenum."""
    ds = pads.dataset(str(parquet), format="parquet")
    flt = (pc.field("itemid").isin(list(itemids)) & pc.field("valuenum").is_valid()
           & pc.field("charttime").is_valid())
    t = ds.to_table(columns=["labevent_id", "subject_id", "itemid", "charttime", "valuenum"],
                    filter=flt)
    item = t["itemid"].to_numpy()
    lut = np.asarray(itemids)
    order = np.argsort(lut)
    item_idx = order[np.searchsorted(lut[order], item)].astype(np.int16)
    return {"labevent_id": t["labevent_id"].to_numpy(), "subject_id": t["subject_id"].to_numpy(),
            "item_idx": item_idx, "valuenum": t["valuenum"].to_numpy(),
            # Parquet stores timestamp[s] as ms: normalise to seconds
            "t_s": t["charttime"].cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy() // 1000}
