"""Open a Parquet or torch file we were given, or fail with ONE line naming it.

pyarrow's errors for a truncated / non-Parquet file ("Parquet magic bytes not found in footer")
and torch's for a truncated ``.pt`` ("PytorchStreamReader failed reading zip archive") name no
file, and torch's is a RuntimeError (a traceback, exit 1). Every reader of input files opens
them through these, so a bad file is an ``InputError``: "FILE: not a readable Parquet file
(reason)" (exit 2, symile_data.errors).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from symile_data.errors import InputError


def _first_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


@contextlib.contextmanager
def reading(path: str | Path, kind: str) -> Iterator[None]:
    """Errors of decoding ``path`` inside become "PATH: not a readable KIND (reason)"."""
    try:
        yield
    except (FileNotFoundError, PermissionError, IsADirectoryError, InputError):
        raise                                 # already one line naming the path
    except (pa.ArrowException, OSError, RuntimeError, EOFError, ValueError) as e:
        raise InputError(f"{path}: not a readable {kind} ({_first_line(e)})") from e


def parquet_file(path: str | Path, **kwargs: Any) -> pq.ParquetFile:
    with reading(path, "Parquet file"):
        return pq.ParquetFile(path, **kwargs)


def read_parquet(path: str | Path, **kwargs: Any) -> pa.Table:
    """``pq.read_table`` of one file, or of a list of files (the bad one is named)."""
    if isinstance(path, (list, tuple)):
        for p in path:                        # footers first: a bad file is named
            with reading(p, "Parquet file"):
                pq.read_metadata(p)
        return pq.read_table(path, **kwargs)
    with reading(path, "Parquet file"):
        return pq.read_table(path, **kwargs)


def parquet_schema(path: str | Path) -> pa.Schema:
    with reading(path, "Parquet file"):
        return pq.read_schema(path)


def torch_load(path: str | Path, **kwargs: Any) -> Any:
    """``torch.load`` of a checkpoint / tensor file we read (a truncated one is named)."""
    import torch
    with reading(path, "torch file"):
        return torch.load(path, **kwargs)
