"""Fixed-width row files (.npy layout) written and read with pwrite / pread, never mmap.

The shards stage decodes every cohort ECG (240 KB) and CXR (100 KB) once into a cache so a killed
run resumes without decoding again. A memory map would keep every touched page resident in the
process (RSS grows with the cohort: ~4 GB at the real ~11.6k admissions); positional reads and
writes leave the data to the page cache, so the process holds only the rows it works on.
The files are ordinary ``.npy`` files (``np.load`` reads them).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class RowFile:
    """``(n, width)`` array of ``dtype`` in a .npy file; rows read / written by index."""

    def __init__(self, path: str | Path, dtype, n: int, width: int, create: bool = False):
        self.path, self.dtype, self.n, self.width = Path(path), np.dtype(dtype), n, width
        self.fd = -1
        self.row_bytes = self.dtype.itemsize * width
        if create:
            with open(self.path, "wb") as f:
                np.lib.format.write_array_header_1_0(f, {
                    "descr": np.lib.format.dtype_to_descr(self.dtype),
                    "fortran_order": False, "shape": (n, width)})
                f.truncate(f.tell() + n * self.row_bytes)      # sparse until written
        with open(self.path, "rb") as f:
            if np.lib.format.read_magic(f) != (1, 0):
                raise ValueError(f"{self.path}: not a version 1.0 .npy file")
            shape, _, dt = np.lib.format.read_array_header_1_0(f)
            self.offset = f.tell()
        if shape != (n, width) or dt != self.dtype:
            raise ValueError(f"{self.path}: holds {shape} {dt}, expected {(n, width)} "
                             f"{self.dtype}")
        self.fd = os.open(self.path, os.O_RDWR if create else os.O_RDONLY)

    def write(self, i: int, row: np.ndarray) -> None:
        data = np.ascontiguousarray(row, self.dtype).reshape(-1)
        if data.size != self.width:
            raise ValueError(f"{self.path}: row {i} has {data.size} values, expected "
                             f"{self.width}")
        os.pwrite(self.fd, data.tobytes(), self.offset + i * self.row_bytes)

    def read(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), width) copy of rows ``idx``; one pread per run of consecutive rows."""
        idx = np.asarray(idx, np.int64)
        out = np.empty((len(idx), self.width), self.dtype)
        if len(idx) == 0:
            return out
        starts = np.flatnonzero(np.r_[True, np.diff(idx) != 1])
        ends = np.r_[starts[1:], len(idx)]
        view = out.reshape(-1).view(np.uint8)
        for a, b in zip(starts.tolist(), ends.tolist()):
            want = (b - a) * self.row_bytes
            pos = self.offset + int(idx[a]) * self.row_bytes
            dst = view[a * self.row_bytes:a * self.row_bytes + want]
            got = os.preadv(self.fd, [dst], pos)
            if got != want:
                raise ValueError(f"{self.path}: short read at row {idx[a]} ({got} of {want} "
                                 f"bytes)")
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self):
        self.close()
