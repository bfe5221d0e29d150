"""CSV files (plain or .gz) read block by block into Arrow tables, in bounded memory.

The real MIMIC tables are large (labevents ~118M rows, the ECG record list ~800k, CXR metadata
~377k): every reader streams them through ``csv_blocks``, which checks the header first (the
file and the missing columns are named), converts only the wanted columns to the given types
and yields ``(first_row, table)`` per block so a later check can name the row of a bad value.
Quoted values with commas and line breaks parse (``newlines_in_values``).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

from symile_data.errors import require_csv_columns


class MimicInputError(ValueError):
    """Bad MIMIC input: the message names the file (and column / row) and what is wrong."""


class ReadGate:
    """File object over the decompressed CSV for ``pacsv.open_csv`` that keeps its reader at
    most ``ahead`` blocks ahead of the consumer.

    Arrow's streaming CSV reader reads blocks on a background thread into a queue of up to 32
    blocks (ARROW-12090: not configurable). When the consumer (here the zstd Parquet writer) is
    slower than gunzip, e.g. on a loaded machine, that queue fills: measured +130 MB RSS per
    64 MB block consumed at 100k admissions, so the peak grew with the file (989 MB at 100k,
    1,643 MB at 430k under load). Each ``read`` takes a permit; the consumer gives one back per
    batch (``consumed``). The wait has a timeout so a block that yields no batch cannot hang the
    reader. ``stop`` makes further reads return EOF (used on errors so the reader thread ends
    before the interpreter does).
    """

    closed = False

    def __init__(self, stream, ahead: int = 2, wait_s: float = 30.0):
        self.stream, self.wait_s = stream, wait_s
        self.permits = threading.Semaphore(ahead)
        self.reads = self.batches = self.max_lead = 0
        self.stopped = False

    def read(self, n: int = -1) -> bytes:
        self.permits.acquire(timeout=self.wait_s)
        if self.stopped:
            return b""
        self.reads += 1
        self.max_lead = max(self.max_lead, self.reads - self.batches)
        return self.stream.read(n)

    def consumed(self) -> None:
        self.batches += 1
        self.permits.release()

    def stop(self) -> None:
        self.stopped = True
        for _ in range(64):
            self.permits.release()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass




def _finish(reader, gate: ReadGate) -> None:
    """Let the reader's thread see EOF and end (a Python read must not outlive the caller)."""
    if gate.stopped or gate.reads == 0:
        return
    gate.stop()
    try:
        for _ in reader:
            pass
    except (pa.ArrowInvalid, OSError):
        pass


def bad_value(path: Path, columns: dict[str, pa.DataType], block_bytes: int) -> str | None:
    """After Arrow failed to convert a value (its message names neither row nor file): read
    the columns again as text and name the first value that does not parse as its column's
    type: "FILE: row N (line): column C: 'v' is not a double". None if none is found."""
    import pandas as pd
    numeric = [c for c, t in columns.items() if pa.types.is_integer(t) or pa.types.is_floating(t)]
    reader = pacsv.open_csv(
        str(path), read_options=pacsv.ReadOptions(block_size=block_bytes),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in numeric},
                                             include_columns=numeric))
    row = 0
    try:                                 # streamed: one block of text at a time
        for batch in reader:
            for c in numeric:
                text = batch.column(c).to_pandas()
                num = pd.to_numeric(text, errors="coerce")
                bad = (num.isna() & text.notna() & (text.str.strip() != "")).to_numpy().copy()
                if pa.types.is_integer(columns[c]):
                    bad |= (num.notna() & (num != num.round())).to_numpy()
                if bad.any():
                    i = int(bad.argmax())
                    return (f"{path}: row {row + i + 2} (line): column {c}: {text.iloc[i]!r} "
                            f"is not {'an' if str(columns[c])[0] in 'aeiou' else 'a'} "
                            f"{columns[c]}")
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError):   # not a value: the CSV itself is malformed there
        return None
    return None


def csv_blocks(path: str | Path, columns: dict[str, pa.DataType], block_bytes: int, *,
               what: str, ahead: int = 2, gate=ReadGate) -> Iterator[tuple[int, pa.Table]]:
    """(index of the block's first data row, table of ``columns``) per ~block_bytes of CSV.

    Memory: the block being consumed plus at most ``ahead`` read ahead (``ReadGate``).
    """
    path = Path(path)
    require_csv_columns(path, columns, MimicInputError)
    g = gate(pa.input_stream(str(path)), ahead)          # gunzip by the file name
    try:
        reader = pacsv.open_csv(
            g, read_options=pacsv.ReadOptions(block_size=block_bytes),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=columns,
                                                 include_columns=list(columns)))
    except (pa.ArrowInvalid, OSError) as e:
        raise MimicInputError(bad_value(path, columns, block_bytes)
                              or f"{path}: cannot read {what} ({e})") from e
    row = 0
    try:
        for batch in reader:
            g.consumed()
            yield row, pa.Table.from_batches([batch])
            row += batch.num_rows
        if row == 0:          # a header alone: one empty block, so every reader sees columns
            yield 0, reader.schema.empty_table()
    except pa.ArrowInvalid as e:
        raise MimicInputError(bad_value(path, columns, block_bytes)
                              or f"{path}: bad {what} row ({e})") from e
    finally:
        _finish(reader, g)
