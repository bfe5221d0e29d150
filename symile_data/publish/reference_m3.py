"""Symile-M3 training shards -> the reference ``save_representations.py`` layout.

Per split ``OUT/{split}/``: image_ (N, D_img), audio_ (N, D_aud), text_input_ids_ (N, L),
text_attention_mask_ (N, L), cls_id_ (N,), idx_ (N,) as .pt; lang_, cls_, words_ as .txt (one
line per row, no trailing newline); ``OUT/metadata.json``. Every tensor is float32, as in the
reference, which accumulated each one with ``torch.cat`` onto ``torch.empty(0)`` (float32); its
loader calls ``.long()`` on the token ids. ``idx`` is the row's position in the split.
With missingness (image/text/audio_missing columns, train and val), also
``{text,image,audio}_missingness_prob{NN}_{split}.pt`` (int32, 1 = missing), NN = "{p:.2f}"[2:].
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from symile_data.io.manifest import read_manifest
from symile_data.io.openfile import parquet_schema
from symile_data.io.reader import split_files
from symile_data.publish.reference import Exporter, fill_rows, find_key, iter_column
from symile_data.publish.reference_meta import encoder_metadata, reference_metadata

log = logging.getLogger(__name__)

MODALITIES = ("text", "image", "audio")
P_KEYS = ("missingness_prob", "missingness_p", "missing_prob", "missing_p", "p_missing")


def class_names() -> np.ndarray | None:
    """English class name per cls_id (the reference's ``cls`` column), when the M3 class table
    is available; None otherwise (the synset is written instead)."""
    try:
        from symile_data.m3.classes import load_classes
        return np.asarray(load_classes().names, dtype=object)
    except (ImportError, OSError, ValueError) as e:
        log.warning("class names unavailable (%s): cls_*.txt gets synset ids", e)
        return None


def width(files: list[Path], column: str) -> int:
    for b in iter_column(files[:1], [column]):
        return int(b[column].shape[1])
    raise ValueError(f"{files[0]}: column {column} has no rows to read a width from")


def missingness_p(p: float | None, manifest: dict[str, Any], where: str) -> float:
    """The Bernoulli p of a missingness variant: ``--missingness-prob``, else the manifest's
    ``extra`` (``missing_p`` as the sampler records it, or a synonym in P_KEYS)."""
    p = p if p is not None else find_key(manifest.get("extra", {}), P_KEYS)
    if p is None:
        raise ValueError(f"{where}: rows are marked missing but the missingness probability is "
                         f"not recorded in the manifest; pass --missingness-prob P")
    if not 0.0 < float(p) < 1.0:
        raise ValueError(f"{where}: missingness probability {p} is not in (0, 1)")
    return float(p)


def export_m3(d: Path, out: Path, *, missingness_prob: float | None = None,
              text_enc_hidden_sz: int | None = None) -> dict[str, Any]:
    m = read_manifest(d)
    ex = Exporter(out, "m3", [d], {"missingness_prob": missingness_prob,
                                   "text_enc_hidden_sz": text_enc_hidden_sz})
    head = encoder_metadata(m, text_enc_hidden_sz, d)   # fails fast, before any tensor
    used_p: list[float] = []
    names = class_names()
    f32 = lambda x: x.astype(np.float32)  # noqa: E731
    dims: dict[str, int] = {}
    sizes = {}
    for split, info in m["splits"].items():
        files, n = split_files(d, split), int(info["rows"])
        sizes[split] = n
        where = f"{d.name}/{split}"
        for name, col in (("image", "image_feat"), ("audio", "audio_feat"),
                          ("text_input_ids", "text_input_ids"),
                          ("text_attention_mask", "text_attention_mask")):
            if n == 0:
                continue
            dims[name] = dim = width(files, col)
            ex.tensor(f"{split}/{name}_{split}.pt",
                      lambda c=col, k=dim: fill_rows(torch.empty(n, k, dtype=torch.float32),
                                                     files, c, f32, f"{where} {c}"))
        ex.tensor(f"{split}/cls_id_{split}.pt",
                  lambda: fill_rows(torch.empty(n, dtype=torch.float32), files, "cls_id", f32,
                                    f"{where} cls_id"))
        ex.tensor(f"{split}/idx_{split}.pt", lambda: torch.arange(n, dtype=torch.float32))
        ex.text(f"{split}/lang_{split}.txt", files, "lang")
        ex.text(f"{split}/words_{split}.txt", files, "text")
        if names is not None:
            ex.text(f"{split}/cls_{split}.txt", files, "cls_id",
                    lambda ids: list(names[np.asarray(ids, dtype=np.int64)]))
        else:
            ex.text(f"{split}/cls_{split}.txt", files, "synset")
        if split != "test":
            p = export_missingness(ex, files, n, split, m, missingness_prob, where)
            if p is not None:
                used_p.append(p)
    meta = reference_metadata(head, m, dims, sizes, used_p[0] if used_p else None)
    ex.json("metadata.json", meta)
    return ex.complete()


def export_missingness(ex: Exporter, files: list[Path], n: int, split: str,
                       manifest: dict[str, Any], p: float | None, where: str) -> float | None:
    """Write the three missingness tensors of ``split``; returns the p used (None: none)."""
    cols = [f"{mod}_missing" for mod in MODALITIES]
    if n == 0 or set(cols) - set(parquet_schema(files[0]).names):
        return None
    flags = torch.zeros(len(cols), n, dtype=torch.int32)   # (3, N), 1 = missing
    pos = 0
    for b in iter_column(files, cols):
        k = len(b[cols[0]])
        for j, c in enumerate(cols):
            flags[j, pos:pos + k] = torch.from_numpy(b[c].astype(np.int32))
        pos += k
    if not bool(flags.any()):
        return None
    p = missingness_p(p, manifest, where)
    tag = f"{p:.2f}"[2:]
    for j, mod in enumerate(MODALITIES):
        ex.tensor(f"{split}/{mod}_missingness_prob{tag}_{split}.pt",
                  lambda j=j: flags[j].clone())
    return p
