"""``datasets`` features of a WebDataset dataset, as its ``webdataset`` builder infers them.

The builder types a member by extension and the rest from the decoded values of the first
samples; we do the same on the first samples of the first tar (sorted members, so the result
is deterministic) and declare the result in the card. Audio members stay ``binary`` (see
``symile_data.io.card``): the raw bytes, which soundfile (or torchcodec, where it loads) decodes.
"""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

N_SAMPLES = 5          # the builder's NUM_EXAMPLES_FOR_FEATURES_INFERENCE
IMAGE_EXTS = {"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"}


def _decode(ext: str, data: bytes) -> Any:
    if ext == "json":
        return json.loads(data)
    if ext in ("txt", "text"):
        return data.decode("utf-8")
    if ext in ("cls", "cls2", "index", "inx", "id"):
        return int(data)
    if ext == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    return data   # images, audio, anything else: raw bytes


def first_samples(tar: Path, n: int = N_SAMPLES) -> list[dict[str, Any]]:
    """The first ``n`` samples of a tar: {member suffix: decoded value} (key split at the
    first '.', as webdataset does)."""
    samples: dict[str, dict[str, Any]] = {}
    with tarfile.open(tar) as tf:
        for m in tf:
            if not m.isfile() or "." not in m.name:
                continue
            key, suffix = m.name.split(".", 1)
            if key not in samples and len(samples) == n:
                break
            data = tf.extractfile(m).read()   # type: ignore[union-attr]
            samples.setdefault(key, {})[suffix] = _decode(suffix.rsplit(".", 1)[-1].lower(),
                                                          data)
    return list(samples.values())


def wds_features(d: Path, manifest: dict[str, Any]):
    """``datasets.Features`` of the WebDataset dataset in ``d`` (None when it has no sample)."""
    import datasets
    import pyarrow as pa
    from datasets.features.features import cast_to_python_objects
    tar = next((d / s["file"] for info in manifest["splits"].values() for s in info["shards"]
                if s["rows"]), None)
    samples = first_samples(tar) if tar is not None else []
    if not samples:
        return None
    rows = [{k: v for k, v in sorted(s.items())} for s in samples]
    tables = [pa.Table.from_pylist(cast_to_python_objects([r], only_1d_for_numpy=True))
              for r in rows]
    feats = datasets.Features.from_arrow_schema(
        pa.concat_tables(tables, promote_options="default").schema)
    for name in list(feats):
        if name.rsplit(".", 1)[-1].lower() in IMAGE_EXTS:
            feats[name] = datasets.Image()
    # the builder adds the sample key and the tar's path/URL last
    feats["__key__"] = feats["__url__"] = datasets.Value("string")
    return feats
