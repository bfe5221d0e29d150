"""The released split CSVs of Symile-M3 as an import source (``m3_release.source: csv``).

``{csv_dir}/.csv_files/{config}/{split}.csv`` (the published layout; also accepted:
``{csv_dir}/{config}/`` and ``csv_dir`` = the config's CSV folder, see ``config_dir``), the
reference generator's output with the columns lang, audio_path, audio_filename, cls,
image_path, cls_id, target_text, text. ``image_path`` is relative to the ImageNet extraction
folder (``ILSVRC/Data/CLS-LOC/train/{synset}/{file}.JPEG``), ``audio_path`` to the Common Voice
folder (``cv/{lang}/clips/{file}.mp3``). Each file is read once per import (cached by path);
a missing or unreadable file gives a failed media row naming the path, and the sample rows
that use it keep its key (so the failure reaches the feature report, never a silent drop).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from symile_data.errors import require_csv_columns
from symile_data.m3.release_config import M3ReleaseConfig
from symile_data.m3.release_store import SPLITS

CSV_COLUMNS = ("lang", "audio_path", "audio_filename", "cls", "image_path", "cls_id",
               "target_text", "text")


def config_dir(csv_dir: Path, config: str) -> Path:
    """The folder holding ``{split}.csv`` of ``config``. ``csv_dir`` may be the release root
    (the published layout: Parquet ``{config}/`` folders beside ``.csv_files/{config}/``), its
    ``.csv_files/`` folder, or the config's CSV folder itself; the first candidate that holds a
    ``train.csv`` wins (a root's ``{config}/`` may hold only the Parquet shards)."""
    tried = [csv_dir / ".csv_files" / config, csv_dir / config, csv_dir]
    for d in tried:
        if (d / "train.csv").is_file():
            return d
    raise FileNotFoundError(
        f"{csv_dir}: no split CSVs of {config} (looked for "
        f"{', '.join(str(d / 'train.csv') for d in tried)}); give --csv-dir the release root "
        f"(holding .csv_files/{config}/) or its .csv_files/ folder")


def translations_file(csv_dir: Path) -> Path:
    """``translations.json`` at the release root: ``csv_dir`` itself, or above it when
    ``csv_dir`` is the root's ``.csv_files/`` or ``.csv_files/{config}/`` folder."""
    for d in (csv_dir, *csv_dir.parents[:2]):
        if (d / "translations.json").is_file():
            return d / "translations.json"
    return csv_dir / "translations.json"      # absent: the importer's error names it


def _read(path: str) -> tuple[bytes | None, str | None]:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return None, f"{path}: unreadable: {type(e).__name__}: {e.strerror or e}"
    return (data, None) if data else (None, f"{path}: empty file (0 bytes)")


def _loader(chunk: pd.DataFrame, where: str, roots: dict[str, Path],
            keys: dict[str, str]) -> Callable[[], dict[str, Any]]:
    """Batch loader: columns + media. A path whose key is known (``keys``, filled by the
    importer) is not read again; each new path of the chunk is read once."""
    def load() -> dict[str, Any]:
        out: dict[str, Any] = {"cols": {c: chunk[c].tolist() for c in
                                        ("lang", "text", "cls_id", "target_text")},
                               "where": where, "path_keys": keys}
        for name, col in (("image", "image_path"), ("audio", "audio_path")):
            paths = [str(roots[name] / rel) for rel in chunk[col].astype(str).tolist()]
            new = {p: _read(p) for p in dict.fromkeys(paths) if p not in keys}
            out[name] = [new[p][0] if p in new else None for p in paths]
            out[name + "_err"] = [new[p][1] if p in new else None for p in paths]
            out[name + "_src"] = paths
            out[name + "_known"] = [keys.get(p) for p in paths]
        return out
    return load


def csv_batches(cfg: M3ReleaseConfig, root: Path) -> Iterator[tuple]:
    """(split, part, first row, rows, loader) over the three CSVs in chunks of batch_rows."""
    d = config_dir(root, cfg.config)
    roots = {"image": Path(cfg.imagenet_root), "audio": Path(cfg.common_voice_root)}
    keys: dict[str, str] = {}   # absolute path -> key (unique files only)
    for split in SPLITS:
        path = d / f"{split}.csv"
        require_csv_columns(path, CSV_COLUMNS)
        start = 0
        reader = pd.read_csv(path, usecols=list(CSV_COLUMNS), chunksize=cfg.batch_rows,
                             dtype={"cls_id": "int64"}, keep_default_na=False)
        for part, chunk in enumerate(reader):
            where = f"{path} rows {start + 2}..{start + len(chunk) + 1} (lines)"
            yield split, part, start, len(chunk), _loader(chunk, where, roots, keys)
            start += len(chunk)
