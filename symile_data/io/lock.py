"""One writer per output folder, and no temporaries of killed runs left behind.

``folder_lock(folder)`` takes an exclusive ``fcntl.flock`` on ``folder/.symile-data.lock``
(hidden: invisible to ``datasets``; holds the pid). A second writer stops at once with
``FolderLocked`` naming the folder and the holder's pid. The lock file is removed when the
holder exits the block (also on an exception), so nothing stale lands in a DVC out; after a
SIGKILL the kernel drops the lock and the next writer reuses and then removes the file.
Re-entrant within a process. Under ``torchrun`` (``WORLD_SIZE`` > 1) only rank 0 locks, since
the ranks of one job write one folder together.

On acquiring, ``remove_stale_tmp`` deletes the temporaries (``.<name>.<pid>.tmp``, see
``io.atomic``) whose writer process is gone: what a killed run left.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from symile_data.errors import InputError

log = logging.getLogger(__name__)

LOCK_NAME = ".symile-data.lock"
_TMP_PID = re.compile(r"\.(\d+)\.tmp$")
_held: dict[Path, int] = {}  # folder -> nesting depth in this process


class FolderLocked(InputError):
    """Another process is writing the folder."""


def _writer_alive(pid: int, tmp: Path) -> bool:
    """Is process ``pid`` alive AND older than ``tmp`` (so possibly its writer)? A pid reused
    by a process started after the file was written is not its writer."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = _start_time(pid)
    if started is None:
        return True  # no procfs: assume alive, never delete live work
    try:
        return started <= tmp.stat().st_mtime + 1.0
    except FileNotFoundError:
        return True


def _start_time(pid: int) -> float | None:
    """Start of process ``pid`` in epoch seconds (Linux procfs), None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])   # field 22: starttime since boot
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def remove_stale_tmp(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Delete ``.*.tmp`` files in ``folder`` whose writer is gone, and ``.<name>.<pid>.tmp``
    scratch folders (``io.atomic.scratch_dir``) whose run is gone; returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        m = _TMP_PID.search(tmp.name)
        try:
            if tmp.is_file() and not (m and _writer_alive(int(m.group(1)), tmp)):
                tmp.unlink()
                removed.append(tmp)
            elif tmp.is_dir() and m and not _writer_alive(int(m.group(1)), tmp):
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
        except FileNotFoundError:
            pass  # its writer finished meanwhile
    if removed:
        log.info("%s: removed %d temporary file(s) of killed runs", folder, len(removed))
    return removed


def check_no_writer(folder: str | Path) -> None:
    """A reader's check, creating nothing: raise ``FolderLocked`` when another process holds
    the write lock of ``folder`` (e.g. publish of a folder still being written)."""
    folder = Path(folder)
    if folder.resolve() in _held:
        return
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise FolderLocked(f"{folder}: a writer (pid {_holder(folder / LOCK_NAME)}) is writing "
                           f"this folder ({LOCK_NAME}); wait for it to finish") from None
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _secondary_rank() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) != 0


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the write lock of ``folder`` (created if missing) for the block."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held or _secondary_rank():
        _held[key] = _held.get(key, 0) + 1
        try:
            yield folder / LOCK_NAME
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise FolderLocked(f"{folder}: another writer (pid {_holder(path)}) is writing "
                               f"this folder ({LOCK_NAME}); wait for it or stop it") from None
        try:  # the holder before us may have removed the file after we opened it: retry
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[key] = 1
        remove_stale_tmp(folder)
        yield path
    finally:
        _held.pop(key, None)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)  # releases the flock
