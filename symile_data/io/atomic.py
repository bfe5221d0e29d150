"""Complete-or-absent file writes: write to a temporary sibling, fsync, rename; and private
scratch folders for a run's spill files. Both are named ``.<name>.<pid>.tmp``: after a killed
run, ``io.lock.remove_stale_tmp`` removes what it left (its pid is gone), never a live run's."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from symile_data.errors import InputError, writing


def _tmp_for(path: Path) -> Path:
    # pid in the name so two writers never share a temporary file
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str = "") -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed to ``path``, on error removed. A full
    disk while writing it is one InputError naming ``path`` (and ``what``, if given)."""
    path = Path(path)
    tmp = _tmp_for(path)
    try:
        with writing(path, what):
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            if tmp.exists():
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def scratch_dir(folder: str | Path, name: str) -> Iterator[Path]:
    """A fresh folder ``folder/.{name}.{pid}.tmp`` for spill files, removed on exit (also on an
    error); one a killed run left is removed by ``remove_stale_tmp(folder)``."""
    import shutil
    path = _tmp_for(Path(folder) / name)
    shutil.rmtree(path, ignore_errors=True)
    try:
        with writing(path, "scratch files"):
            path.mkdir(parents=True)
            yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON document at ``path``; one InputError naming the file when it is not JSON."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from e


def atomic_write_npy(path: str | Path, array: Any) -> None:
    """One numpy array as .npy (no pickle), complete or absent."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)
