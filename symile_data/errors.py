"""What counts as an input error, and how one is shown.

An *input error* is a problem with what the user gave us (a file, a row, a params key, a
folder), not a bug: the command prints ONE line naming the file, row or key and what is wrong,
and exits 2; ``--log-level DEBUG`` adds the traceback. Everything else is a bug and keeps its
traceback. Raise ``InputError`` (or a subclass) for new input problems; the standard library
types below count too, because library code raises them for bad files and values.
"""
from __future__ import annotations

import contextlib
import errno
import re
from pathlib import Path
from typing import Iterator


class InputError(ValueError):
    """Bad input: the message names the file, row or key and says what is wrong."""


# ConfigError and ManifestError are ValueErrors; pyarrow's ArrowInvalid and json's
# JSONDecodeError too. OSError subclasses that mean "this path is wrong", not "disk broke".
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
    PermissionError)

EXIT_INPUT_ERROR = 2

# OSErrors of the environment, not of the code: the disk (or quota) is full, or the file system
# is read-only. One line naming the path being written (``writing``), exit 2.
DISK_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system"}

# numpy >= 2 scalar reprs in a message (``np.int64(139)``, ``np.str_('a')``) -> the value
_NP_SCALAR = re.compile(r"\bnp\.(?:u?int\d*|float\d*|bool_?|str_|bytes_|complex\d*)\((.*?)\)")


def is_input_error(e: BaseException) -> bool:
    return isinstance(e, INPUT_ERRORS) or (isinstance(e, OSError) and e.errno in DISK_ERRNOS)


def disk_full(e: OSError, path: str | Path, what: str = "") -> InputError:
    """``e`` (an OSError of DISK_ERRNOS) as the one-line error naming ``path`` and ``what``."""
    detail = f"{what}; {e.strerror or e}" if what else (e.strerror or str(e))
    return InputError(f"{DISK_ERRNOS[e.errno]} writing {path} ({detail})")


@contextlib.contextmanager
def writing(path: str | Path, what: str = "") -> Iterator[None]:
    """Writes to ``path`` inside: a full disk / quota / read-only file system becomes one
    ``InputError`` "disk full writing PATH (what; reason)"; other errors pass unchanged."""
    try:
        yield
    except OSError as e:
        if e.errno in DISK_ERRNOS:
            raise disk_full(e, path, what) from e
        raise


def one_line(e: BaseException) -> str:
    """``e`` as one line: ``"<kind>: <message>"``, inner newlines folded into ``"; "``."""
    from symile_data.config import ConfigError

    kind = "configuration error" if isinstance(e, ConfigError) else "error"
    msg = "; ".join(p.strip() for p in str(e).splitlines() if p.strip()) or type(e).__name__
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        return f"{kind}: {disk_full(e, e.filename or 'a file (path unknown)')}"
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        msg = f"{e.filename}: {e.strerror}"          # not "[Errno 2] ...: 'x'"
    return f"{kind}: " + _NP_SCALAR.sub(r"\1", msg)


def require_csv_columns(path, columns, error: type[Exception] = InputError) -> list[str]:
    """The header of the CSV at ``path`` after checking the file exists, parses and has every
    name in ``columns``; otherwise ``error`` naming the file and the missing columns."""
    import pandas as pd
    from pathlib import Path
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError, EOFError) as e:
        raise error(f"{path}: unreadable CSV ({e})") from e
    missing = [c for c in columns if c not in header]
    if missing:
        raise error(f"{path}: missing column(s) {missing}; found {header}")
    return header
