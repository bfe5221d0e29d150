"""Progress reporting (tqdm), quiet when not a terminal unless asked."""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str, total: int | None = None,
             unit: str = "it") -> Iterable[T]:
    disable = os.environ.get("SYMILE_DATA_PROGRESS", "auto") == "off" or (
        os.environ.get("SYMILE_DATA_PROGRESS", "auto") == "auto" and not sys.stderr.isatty()
        and os.environ.get("CI") == "true")
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable,
                dynamic_ncols=True, mininterval=1.0)
