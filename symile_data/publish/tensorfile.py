"""A ``torch.save`` file written row by row, never holding the whole tensor in memory.

The real MIMIC export has tensors larger than memory allows (the train CXR tensor alone is
~12-14 GB: N x 3 x 320 x 320 float32). ``TensorFile`` writes the file's skeleton with
``torch.serialization.skip_data`` (the zip layout of ``torch.save`` with the storage bytes left
empty, storage 64-byte aligned), then writes rows into the storage with ``os.pwrite`` and patches
the zip CRC-32 of the storage record at the end. The result is an ordinary ``torch.save`` file:
plain ``torch.load`` and ``torch.load(mmap=True)`` read it. No page of it is mapped into this
process, so memory is one batch of rows whatever the tensor size.
"""
from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
CRC_CHUNK = 8 << 20     # bytes read back per step to compute the storage's CRC-32


class TensorFile:
    """``shape`` tensor of ``dtype`` at ``path``; write rows (along dim 0), then ``close()``."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: torch.dtype):
        self.path, self.shape, self.dtype = Path(path), tuple(int(s) for s in shape), dtype
        item = torch.empty(0, dtype=dtype).element_size()
        self.row_bytes, nbytes = math.prod(self.shape[1:]) * item, math.prod(self.shape) * item
        self.np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        self.fd = -1
        if math.prod(self.shape) == 0:                  # nothing to stream: a plain save
            torch.save(torch.empty(self.shape, dtype=dtype), self.path)
            self.record = None
            return
        with FakeTensorMode():
            fake = torch.empty(self.shape, dtype=dtype)
        with torch.serialization.skip_data(materialize_fake_tensors=True):
            torch.save(fake, self.path)
        with zipfile.ZipFile(self.path) as z:
            data = [i for i in z.infolist() if i.filename.split("/", 1)[-1].startswith("data/")]
        if len(data) != 1 or data[0].file_size != nbytes:
            raise RuntimeError(f"{self.path}: unexpected torch.save layout "
                               f"{[(i.filename, i.file_size) for i in data]}")
        self.record = data[0]
        with open(self.path, "rb") as f:
            f.seek(self.record.header_offset)
            head = f.read(30)
        if head[:4] != _LOCAL:
            raise RuntimeError(f"{self.path}: no local zip header for {self.record.filename}")
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        self.offset = self.record.header_offset + 30 + name_len + extra_len
        self.fd = os.open(self.path, os.O_RDWR)

    def write(self, start: int, x: np.ndarray) -> None:
        """Rows start .. start + len(x)."""
        x = np.ascontiguousarray(x, self.np_dtype)
        if start < 0 or start + len(x) > self.shape[0]:
            raise ValueError(f"{self.path}: rows {start}..{start + len(x)} outside "
                             f"{self.shape[0]}")
        os.pwrite(self.fd, memoryview(x.reshape(-1)).cast("B"),   # no copy of the batch
                  self.offset + start * self.row_bytes)

    def write_rows(self, rows: np.ndarray, x: np.ndarray, src: np.ndarray | None = None) -> None:
        """Row rows[j] = x[src[j]] (src default: j; rows in any order, a row of x may go to
        several rows). One write per run of rows consecutive both in the file and in x, each
        from a view of x: x is never copied or gathered (a gather would be a second batch)."""
        rows = np.asarray(rows, np.int64)
        src = np.arange(len(rows)) if src is None else np.asarray(src, np.int64)
        if len(src) != len(rows):
            raise ValueError(f"{self.path}: {len(rows)} rows but {len(src)} source rows")
        order = np.argsort(rows, kind="stable")
        r, s = rows[order], src[order]
        starts = np.flatnonzero(np.r_[True, (np.diff(r) != 1) | (np.diff(s) != 1)])
        for a, b in zip(starts.tolist(), np.r_[starts[1:], len(r)].tolist()):
            self.write(int(r[a]), x[s[a]:s[a] + b - a])

    def close(self) -> None:
        """Patch the storage record's CRC-32 (local and central headers) and close."""
        if self.fd < 0:
            return
        crc, pos, end = 0, self.offset, self.offset + self.record.file_size
        buf = memoryview(bytearray(CRC_CHUNK))       # reused: `pread` would allocate a new
        while pos < end:                             # chunk while the last is still alive
            got = os.preadv(self.fd, [buf[:min(CRC_CHUNK, end - pos)]], pos)
            if got <= 0:
                raise RuntimeError(f"{self.path}: short read at byte {pos} of {end}")
            crc = zlib.crc32(buf[:got], crc)
            pos += got
        packed = struct.pack("<I", crc)
        os.pwrite(self.fd, packed, self.record.header_offset + 14)
        size = os.fstat(self.fd).st_size
        tail_at = max(0, size - (1 << 20))               # the central directory is small
        tail = os.pread(self.fd, size - tail_at, tail_at)
        name = self.record.filename.encode()
        i = tail.find(_CENTRAL)
        while i >= 0:
            n = struct.unpack("<H", tail[i + 28:i + 30])[0]
            if tail[i + 46:i + 46 + n] == name:
                os.pwrite(self.fd, packed, tail_at + i + 16)
                break
            i = tail.find(_CENTRAL, i + 4)
        else:
            raise RuntimeError(f"{self.path}: central directory entry {name!r} not found")
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
