"""``symile-data m3 import``: the released Symile-M3 rows into our tables (docs/release.md).

Sources (``M3ReleaseConfig.source``):
  hub      Parquet shards ``{config}/{split}-NNNNN-of-NNNNN.parquet`` of the Hub dataset
           ``arsaporta/symile-m3`` (+ ``translations.json``), through the huggingface_hub cache,
           retried with exponential backoff; offline without a cached copy is one clear error.
  parquet  the same files in a local download folder.
  csv      the generator's split CSVs + local ILSVRC and Common Voice folders (release_csv.py).
Released features: lang, audio (Audio struct<bytes, path>), image (Image struct<bytes, path>),
text, cls, cls_id, target_text. Rows are streamed one row group at a time, in batches of
``batch_rows``; each unique image / clip is decoded and stored once (content-hash key).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator


from symile_data.config import params_hash, to_dict
from symile_data.hashing import short_key
from symile_data.io import fingerprint
from symile_data.io.atomic import atomic_write_json
from symile_data.io.fingerprint import reuse_or_reset
from symile_data.io.openfile import parquet_file
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.m3.build import CLIPS_TABLE, IMAGES_TABLE
from symile_data.m3.classes import load_classes
from symile_data.m3.release_config import M3ReleaseConfig
from symile_data.m3.release_store import (PARTS_DIR, SPLITS, Parts, PartsSource, clip_key,
                                          clip_row, config_w, finish_media, image_key,
                                          image_row, sample_table, write_translations)
from symile_data.m3.translations import langs_for_w
from symile_data.progress import progress
from symile_data.schema import m3_samples_schema

log = logging.getLogger(__name__)
COLUMNS = ("lang", "audio", "image", "text", "cls", "cls_id", "target_text")
# one streamed batch: (split, part index, first row, rows, loader of its columns + media)
Batch = tuple[str, int, int, int, Callable[[], dict[str, Any]]]


class ReleaseError(ValueError):
    """Bad or unreachable release input; the message names the file / repo and the problem."""


def hub_download(repo: str, config: str, revision: str | None, cache_dir: str, retries: int,
                 download: Callable[..., str] | None = None) -> Path:
    """Local snapshot folder of ``{config}/*.parquet`` + translations.json (cached)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from tenacity import (retry, retry_if_not_exception_type, stop_after_attempt,
                          wait_exponential)
    fetch = download or snapshot_download
    permanent = (LocalEntryNotFoundError, PermissionError, ValueError)

    @retry(retry=retry_if_not_exception_type(permanent), stop=stop_after_attempt(retries),
           wait=wait_exponential(multiplier=1, min=1, max=60), reraise=True)
    def once() -> str:
        return fetch(repo_id=repo, repo_type="dataset", revision=revision,
                     cache_dir=cache_dir, allow_patterns=[f"{config}/*.parquet",
                                                          "translations.json"])
    try:
        return Path(once())
    except Exception as e:  # network, auth, offline: one message naming the repo
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = ("HF_HUB_OFFLINE is set and no cached copy exists: download once online or use "
                "source: parquet with a local folder") if offline else \
            "check the network, the repo id and HF_TOKEN for gated access"
        raise ReleaseError(f"could not get {config} of the Hub dataset '{repo}' (revision "
                           f"{revision or 'main'}) after up to {retries} attempt(s): "
                           f"{type(e).__name__}: {e}; {hint}") from e


def split_files(root: Path, config: str, split: str) -> list[Path]:
    files = sorted((root / config).glob(f"{split}-*-of-*.parquet"))
    if not files:
        raise ReleaseError(f"{root / config}: no {split}-NNNNN-of-NNNNN.parquet files")
    return files


def _parquet_loader(path: Path, rg: int, lo: int, hi: int, config: str) -> Callable:
    def load() -> dict[str, Any]:
        t = parquet_file(path).read_row_group(rg, columns=list(COLUMNS)).slice(lo, hi - lo)
        cols = {c: t[c].to_pylist() for c in ("lang", "text", "cls_id", "target_text")}
        where = f"{config}/{path.name} row group {rg} rows {lo}..{hi}"
        media = {}
        for name in ("image", "audio"):
            media[name] = [(m or {}).get("bytes") for m in t[name].to_pylist()]
            media[name + "_src"] = [f"{config}/{path.name}:{rg}:{lo + i}" +
                                    (f" ({m['path']})" if m and m.get("path") else "")
                                    for i, m in enumerate(t[name].to_pylist())]
        return {"cols": cols, "where": where, **media}
    return load


def parquet_batches(root: Path, config: str, batch_rows: int) -> Iterator[Batch]:
    for split in SPLITS:
        part, start = 0, 0
        for f in split_files(root, config, split):
            pf = parquet_file(f)
            missing = sorted(set(COLUMNS) - set(pf.schema_arrow.names))
            if missing:
                raise ReleaseError(f"{f}: missing column(s) {missing}; the release has "
                                   f"{list(COLUMNS)}")
            for rg in range(pf.metadata.num_row_groups):
                n = pf.metadata.row_group(rg).num_rows
                for lo in range(0, n, batch_rows):
                    hi = min(n, lo + batch_rows)
                    yield split, part, start, hi - lo, _parquet_loader(f, rg, lo, hi, config)
                    part, start = part + 1, start + hi - lo


def _media_rows(b: dict[str, Any], name: str, key_of: Callable, row_of: Callable,
                seen: set) -> tuple[list[str], list[dict]]:
    """Keys of a batch's media (one per row) and rows for the keys not seen before.

    Per row the loader gives bytes (``name``), a source (path or file:row), optionally an
    error (``name_err``) and a key already known for that path (``name_known``, CSV)."""
    n = len(b[name])
    errs, known = b.get(name + "_err", [None] * n), b.get(name + "_known", [None] * n)
    path_keys = b.get("path_keys")
    keys, rows = [], []
    for i, (blob, src) in enumerate(zip(b[name], b[name + "_src"])):
        err = errs[i] or (None if blob or known[i] else f"{src}: no bytes in the row")
        key = known[i] or (short_key("unreadable", src, n=32) if err else key_of(blob, i))
        keys.append(key)
        if path_keys is not None:
            path_keys[src] = key
        if key not in seen and not known[i]:
            seen.add(key)
            rows.append(row_of(key, blob, i, src, err))
    return keys, rows


def release_files(cfg: M3ReleaseConfig, root: Path) -> list[Path]:
    """The release files an import reads (media referenced in place excluded)."""
    if cfg.source == "csv":
        from symile_data.m3.release_csv import config_dir
        d = config_dir(root, cfg.config)
        return [d / f"{s}.csv" for s in SPLITS]
    return [f for s in SPLITS for f in split_files(root, cfg.config, s)]


def parts_fingerprint(cfg: M3ReleaseConfig, root: Path) -> dict[str, Any]:
    """What the parts (and the samples made from them) depend on: the release files' content
    identity and the settings that change a part's rows (not retries, caches, shard sizes)."""
    return fingerprint.make(
        "m3-import-parts", inputs=fingerprint.files_identity(root, release_files(cfg, root)),
        params={k: getattr(cfg, k) for k in ("source", "config", "batch_rows",
                                             "imagenet_root", "common_voice_root")})


def import_release(cfg: M3ReleaseConfig, out: str | Path,
                   download: Callable[..., str] | None = None) -> dict[str, Any]:
    """Import one config of the release into ``out`` (layout: release_store docstring)."""
    from symile_data.m3 import release_csv
    out = Path(out)
    (out / "report.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    w, synsets = config_w(cfg.config), load_classes().synsets
    if cfg.source == "csv":
        root = Path(cfg.csv_dir)
        release_csv.config_dir(root, cfg.config)      # no CSVs: say so before anything else
        batches = release_csv.csv_batches(cfg, root)
    else:
        root = (hub_download(cfg.hub_repo, cfg.config, cfg.hub_revision, cfg.cache_dir,
                             cfg.retries, download) if cfg.source == "hub" else Path(cfg.local_dir))
        batches = parquet_batches(root, cfg.config, cfg.batch_rows)
    tr = Path(cfg.translations) if cfg.translations else \
        release_csv.translations_file(root) if cfg.source == "csv" else root / "translations.json"
    if not tr.is_file():
        raise ReleaseError(f"{tr}: translations.json not found (set m3_release.translations, "
                           f"flag --translations)")
    write_translations(tr, out)
    fp = parts_fingerprint(cfg, root)
    reuse_or_reset(out / PARTS_DIR / cfg.config, fp, f"import parts of {cfg.config}")
    img_dir, clip_dir = out / "images", out / "clips"
    in_place = cfg.source == "csv"     # local ILSVRC / Common Voice files are read in place
    seen_img: set[str] = set()
    seen_clip: set[str] = set()
    counts = {s: {"rows": 0, "parts": 0, "skipped": 0} for s in SPLITS}
    for split, i, start, n, load in progress(batches, desc=f"import {cfg.config}"):
        parts, c = Parts(out, cfg.config, split), counts[split]
        c["rows"] += n
        c["parts"] += 1
        if parts.done(i, None if in_place else img_dir, None if in_place else clip_dir):
            c["skipped"] += 1
            continue
        b = load()
        cols = b["cols"]
        syn = [synsets[int(x)] if 0 <= int(x) < len(synsets) else "?" for x in cols["cls_id"]]
        ikeys, irows = _media_rows(
            b, "image", lambda d, j: image_key(d, syn[j]),
            lambda k, d, j, s, e: image_row(k, d, syn[j], int(cols["cls_id"][j]), s,
                                            None if in_place else img_dir, e), seen_img)
        akeys, arows = _media_rows(
            b, "audio", lambda d, j: clip_key(d, cols["lang"][j]),
            lambda k, d, j, s, e: clip_row(k, d, cols["lang"][j], s,
                                           None if in_place else clip_dir, e), seen_clip)
        samples = sample_table(split, start, w, synsets, cols, ikeys, akeys, b["where"])
        parts.write(i, samples, irows, arows)
    media = {"images": finish_media(out, "images", "image_key", img_dir / IMAGES_TABLE,
                                    not in_place),
             "clips": finish_media(out, "clips", "audio_key", clip_dir / CLIPS_TABLE,
                                   not in_place)}
    sources = {s: PartsSource(Parts(out, cfg.config, s).files("samples")) for s in SPLITS}
    h = params_hash(cfg, {"rows": {s: counts[s]["rows"] for s in SPLITS}})
    extra = {"params": to_dict(cfg), "w": w, "languages": list(langs_for_w(w)),
             "release": {"source": cfg.source, "config": cfg.config, "root": str(root)},
             "missing_p": 0.0}
    write_parquet_dataset(out / "samples" / cfg.config, sources, m3_samples_schema(),
                          name=cfg.config, params_hash=h, spec=ShardSpec.from_config(cfg),
                          flags={"mimic_derived": False}, extra=extra, fingerprint=fp)
    wall = time.perf_counter() - t0
    rows = sum(c["rows"] for c in counts.values())
    report = {"config": cfg.config, "source": cfg.source, "splits": counts, **media,
              "seconds": round(wall, 3), "rows_per_s": round(rows / wall, 1) if wall else None}
    atomic_write_json(out / "report.json", report)
    return report
