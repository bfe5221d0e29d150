"""Content hashes and stable keys (everything computed once per unique item is keyed by these)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CHUNK = 1 << 20  # 1 MiB read size for file hashing


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of canonical JSON (sorted keys, no whitespace)."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False, default=str).encode())


def short_key(*parts: Any, n: int = 16) -> str:
    """A stable short key from parts, e.g. short_key("tts", text, lang, engine, voice)."""
    return sha256_json(list(parts))[:n]
