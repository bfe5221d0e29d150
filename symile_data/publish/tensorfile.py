"""A ``torch.save`` file written row by row, never holding the whole tensor in memory.

The real MIMIC export has tensors larger than memory allows (the train CXR tensor alone is
~12-14 GB: N x 3 x 320 x 320 float32). ``TensorFile`` writes the file's skeleton with
``torch.serialization.skip_data`` (the zip layout of ``torch.save`` with the storage bytes left
empty, storage 64-byte aligned), then writes rows into the storage with ``os.pwrite`` and at the
end patches what depends on the storage bytes: its zip CRC-32 (data descriptor and central
directory, where ``torch.save`` keeps it) and the archive's ``.data/serialization_id``. That id
is 20 digits of a hash of the record names, then 20 digits of ``c10::hash_combine`` folded over
every record's CRC-32 in write order (caffe2/serialize/inline_container.cc); the skeleton's
second half lacks the storage CRC, so it is recomputed. The file is then byte for byte what a
plain ``torch.save`` of the same tensor at the same file name writes (tests/publish/
test_tensorfile.py): plain ``torch.load`` and ``torch.load(mmap=True)`` read it, and a released
file imported and exported back is identical. No page of it is mapped into this process, so
memory is one batch of rows whatever the tensor size.
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
_DESCRIPTOR = b"PK\x07\x08"
_SERIAL_ID = ".data/serialization_id"   # torch.save's archive id record (see the module doc)
_U64 = (1 << 64) - 1
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
            self.infos = z.infolist()
            data = [i for i in self.infos if i.filename.split("/", 1)[-1].startswith("data/")]
        if len(data) != 1 or data[0].file_size != nbytes:
            raise RuntimeError(f"{self.path}: unexpected torch.save layout "
                               f"{[(i.filename, i.file_size) for i in data]}")
        self.record = data[0]
        self.fd = os.open(self.path, os.O_RDWR)
        self.offset = self._data_offset(self.record)

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
        """Patch the storage CRC-32 and the serialization id, then close."""
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
        self._patch_crc(self.record, self.offset, crc)
        self._patch_serialization_id(crc)
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        head = os.pread(self.fd, 30, info.header_offset)
        if head[:4] != _LOCAL:
            raise RuntimeError(f"{self.path}: no local zip header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        return info.header_offset + 30 + name_len + extra_len

    def _patch_crc(self, info: zipfile.ZipInfo, data_at: int, crc: int) -> None:
        """Write ``crc`` where the record keeps it: its data descriptor (flag bit 3: what
        torch.save writes; the local header then holds 0) or else its local header, and its
        central directory entry."""
        packed = struct.pack("<I", crc)
        if info.flag_bits & 0x08:
            at = data_at + info.compress_size
            at += 4 if os.pread(self.fd, 4, at) == _DESCRIPTOR else 0
        else:
            at = info.header_offset + 14
        os.pwrite(self.fd, packed, at)
        size = os.fstat(self.fd).st_size
        tail_at = max(0, size - (1 << 20))               # the central directory is small
        tail = os.pread(self.fd, size - tail_at, tail_at)
        name = info.filename.encode()
        i = tail.find(_CENTRAL)
        while i >= 0:
            n = struct.unpack("<H", tail[i + 28:i + 30])[0]
            if tail[i + 46:i + 46 + n] == name:
                os.pwrite(self.fd, packed, tail_at + i + 16)
                return
            i = tail.find(_CENTRAL, i + 4)
        raise RuntimeError(f"{self.path}: central directory entry {name!r} not found")

    def _patch_serialization_id(self, data_crc: int) -> None:
        """Recompute the id's CRC half with the storage's CRC (torch >= 2.3 writes the id;
        older archives have none)."""
        ids = [i for i in self.infos if i.filename.endswith("/" + _SERIAL_ID)]
        if not ids:
            return
        rec = ids[0]
        at = self._data_offset(rec)
        old = os.pread(self.fd, rec.file_size, at)
        if len(old) != 40 or not old.isdigit():
            raise RuntimeError(f"{self.path}: unexpected serialization id {old!r}")
        combined = 0
        for info in sorted(self.infos, key=lambda i: i.header_offset):
            if info is rec:
                continue
            value = data_crc if info.filename == self.record.filename else info.CRC
            combined = (combined ^ ((value + 0x9E3779B9 + (combined << 6) + (combined >> 2))
                                    & _U64)) & _U64       # c10::hash_combine on size_t
        new = old[:20] + b"%020d" % combined
        os.pwrite(self.fd, new, at)
        self._patch_crc(rec, at, zlib.crc32(new))
