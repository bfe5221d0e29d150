"""Sharded, resumable, deterministic WebDataset (tar) writer.

Members of one sample are grouped and sorted by extension, samples sorted by key, mtime 0 and
fixed owner, so the same samples give byte-identical tars. Keys are sanitised: no path
separators, no '..', and no '.' (WebDataset splits key from extension at the first dot).
Same naming, markers and manifest as the Parquet writer. Each split also gets a ``wids`` shard
index (``.{split}.wids.json``: url, nsamples, filesize per tar, urls relative to the folder) for
indexed access with ``wids.ShardListDataset``; hidden so that the Hub's split-file patterns
never read it as data.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import webdataset as wds

from symile_data.io import lineage
from symile_data.io.atomic import atomic_path, atomic_write_json
from symile_data.io.fingerprint import reuse_or_reset
from symile_data.io.lock import folder_lock
from symile_data.io.manifest import (MANIFEST, build_manifest, marker_matches, marker_path,
                                     remove_stale, shard_info, shard_name, write_manifest)
from symile_data.progress import progress

_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-]")
_EXT_OK = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


class SampleSource(Protocol):
    num_samples: int

    def take_range(self, start: int, stop: int) -> list[dict[str, Any]]: ...


class ListSource:
    """Adapts an in-memory list of sample dicts."""

    def __init__(self, samples: list[dict[str, Any]]):
        self.samples = samples
        self.num_samples = len(samples)

    def take_range(self, start: int, stop: int) -> list[dict[str, Any]]:
        return self.samples[start:stop]


def sanitize_key(key: str) -> str:
    """Map an arbitrary sample key to ``[A-Za-z0-9_-]+`` (no '/', '..' or '.')."""
    clean = re.sub("_+", "_", _KEY_BAD.sub("_", str(key))).strip("_")
    if not clean:
        raise ValueError(f"sample key {key!r} is empty after sanitising")
    return clean


def _encode(sample: dict[str, Any], where: str) -> dict[str, Any]:
    if "__key__" not in sample:
        raise ValueError(f"{where}: sample without '__key__'")
    out = {"__key__": sanitize_key(sample["__key__"])}
    for ext, value in sample.items():
        if ext.startswith("__"):
            continue
        if not _EXT_OK.match(ext):
            raise ValueError(f"{where}: bad member extension {ext!r}")
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ValueError(f"{where}: member {ext!r} of {sample['__key__']!r} is "
                             f"{type(value).__name__}, expected bytes")
        out[ext] = bytes(value)
    return out


def wids_index_path(out_dir: Path, split: str) -> Path:
    return Path(out_dir) / f".{split}.wids.json"


def write_wids_index(out_dir: Path, split: str, infos: list[dict[str, Any]]) -> None:
    """``wids-shard-index-v1`` of one split (what ``widsindex create`` writes, no md5)."""
    atomic_write_json(wids_index_path(out_dir, split), {
        "__kind__": "wids-shard-index-v1", "wids_version": 1, "name": f"{out_dir.name}-{split}",
        "shardlist": [{"url": i["file"], "nsamples": i["rows"], "filesize": i["bytes"]}
                      for i in infos]})


def write_wds_split(out_dir: Path, split: str, source: SampleSource, samples_per_shard: int,
                    params_hash: str) -> list[dict[str, Any]]:
    if samples_per_shard <= 0:
        raise ValueError(f"samples_per_shard must be > 0, got {samples_per_shard}")
    n = max(1, math.ceil(source.num_samples / samples_per_shard))
    names = [shard_name(split, i, n, "tar") for i in range(n)]
    remove_stale(out_dir, split, "tar", set(names))
    infos = []
    for i in progress(range(n), desc=f"write {out_dir.name}/{split} (tar)", total=n,
                      unit="shard"):
        start = i * samples_per_shard
        stop = min(source.num_samples, start + samples_per_shard)
        shard = out_dir / names[i]
        expect = {"params_hash": params_hash, "row_start": start, "row_stop": stop}
        done = marker_matches(shard, expect)
        if done is not None:
            infos.append({k: done[k] for k in ("file", "rows", "bytes", "sha256")})
            continue
        samples = [_encode(s, shard.name) for s in source.take_range(start, stop)]
        samples.sort(key=lambda s: s["__key__"])
        dup = [k for k, c in Counter(s["__key__"] for s in samples).items() if c > 1]
        if dup:
            raise ValueError(f"{shard.name}: duplicate sample keys after sanitising: "
                             f"{sorted(dup)[:5]}")
        with atomic_path(shard) as tmp:
            with open(tmp, "wb") as f:
                writer = wds.TarWriter(f, user="symile", group="symile", mtime=0.0,
                                       encoder=False)
                for s in samples:
                    writer.write(s)
                writer.close()
        info = shard_info(shard, len(samples), expect)
        atomic_write_json(marker_path(shard), info)
        infos.append({k: info[k] for k in ("file", "rows", "bytes", "sha256")})
    write_wids_index(out_dir, split, infos)
    return infos


def write_wds_dataset(out_dir: str | Path, splits: dict[str, Any], *, name: str,
                      params_hash: str, samples_per_shard: int = 1000,
                      flags: dict[str, Any] | None = None,
                      extra: dict[str, Any] | None = None,
                      fingerprint: dict[str, Any] | None = None,
                      inputs: list[str | Path] | None = None) -> dict[str, Any]:
    """Like ``write_parquet_dataset`` (``fingerprint`` too) for WebDataset tars. ``inputs``:
    the dataset dirs the samples come from (``flags.mimic_derived`` inherited, see io.lineage
    and io.parquet.write_parquet_dataset)."""
    out_dir = Path(out_dir)
    flags, lineage_entries = lineage.inherit(flags, inputs)
    with folder_lock(out_dir):   # one writer; removes temporaries of killed runs
        if fingerprint is not None:
            reuse_or_reset(out_dir, fingerprint, "shards")
        (out_dir / MANIFEST).unlink(missing_ok=True)
        written = {}
        for split, src in splits.items():
            if isinstance(src, list):
                src = ListSource(src)
            written[split] = write_wds_split(out_dir, split, src, samples_per_shard,
                                             params_hash)
        manifest = build_manifest(fmt="webdataset", name=name, schema=None,
                                  params_hash=params_hash, splits=written, flags=flags,
                                  extra=extra, inputs=lineage_entries)
        write_manifest(out_dir, manifest)
    return manifest
