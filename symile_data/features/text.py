"""Text "features": XLM-R style token ids per unique text (the text tower is fine-tuned, so
ids and attention masks, not embeddings, are what the reference released).

Stored unpadded (``list<int32>``, with ``<s> ... </s>``, truncated at ``max_length``); the join
pads to the per-split maximum (reference) or a fixed length. One table per tokenizer identity
at ``{root}/text/{encoder_id}/tokens.parquet`` + ``manifest.json`` (written last).
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from symile_data import schema as S
from symile_data.features.encoders import EncoderIdentity, load_pretrained, resolved_revision
from symile_data.io.atomic import atomic_path, atomic_write_json, read_json
from symile_data.io.lock import remove_stale_tmp
from symile_data.hashing import sha256_bytes

BATCH = 4096  # texts per tokenizer call (the fast tokenizer parallelises inside a call)


class TextTokenizer:
    modality = "text"

    def __init__(self, model: str, revision: str | None, max_length: int):
        from transformers import AutoTokenizer
        if max_length < 3:
            raise ValueError(f"text max_length must be >= 3 (<s>, a token, </s>), got {max_length}")
        self.tokenizer = load_pretrained(AutoTokenizer, model, revision)
        if self.tokenizer.pad_token_id is None:
            raise ValueError(f"tokenizer '{model}' has no pad token")
        self.max_length = max_length
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.identity = EncoderIdentity(
            "text", model, resolved_revision(model, revision, self.tokenizer),
            {"tokenizer_class": type(self.tokenizer).__name__, "vocab_size": len(self.tokenizer),
             "max_length": max_length, "add_special_tokens": True, "truncation": True},
            "int32")

    def tokenize(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray]:
        """-> (ids per text, truncated flags). ids include the special tokens."""
        full = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        lens = np.fromiter((len(x) for x in full), np.int64, len(full))
        trunc = lens > self.max_length
        if trunc.any():  # keep <s> ... and the final </s>, like truncation=True would
            full = [x if len(x) <= self.max_length else x[: self.max_length - 1] + [x[-1]]
                    for x in full]
        return full, trunc


def unique_texts(tables: list[pa.Table]) -> list[str]:
    """Sorted unique values of the ``text`` column over tables (vectorised)."""
    if not tables:
        return []
    col = pa.chunked_array([c for t in tables for c in t["text"].chunks], pa.string())
    return sorted(pc.unique(col).to_pylist())


def encode_texts(tok: TextTokenizer, texts: list[str], out_dir: str | Path) -> dict:
    """Tokenize sorted unique ``texts`` into ``out_dir``; skip when already complete."""
    out = Path(out_dir)
    remove_stale_tmp(out)  # temporaries of killed runs (live writers' are kept)
    eid = tok.identity.encoder_id()
    keys_sha = sha256_bytes("\n".join(texts).encode())
    mpath = out / "manifest.json"
    if mpath.exists():
        m = read_json(mpath)
        if m.get("encoder_id") == eid and m.get("texts_sha256") == keys_sha:
            return {"modality": "text", "encoder_id": eid, "unique_items": len(texts),
                    "skipped_resumed": len(texts), "encoded_this_run": 0, "ok": len(texts),
                    "failed": 0, "truncated": m["truncated"], "seconds": 0.0,
                    "items_per_s": None}
    t0 = time.perf_counter()
    ids: list[list[int]] = []
    trunc = []
    for lo in range(0, len(texts), BATCH):
        batch_ids, batch_trunc = tok.tokenize(texts[lo:lo + BATCH])
        ids += batch_ids
        trunc.append(batch_trunc)
    truncated = np.concatenate(trunc) if trunc else np.zeros(0, bool)
    table = pa.table({
        "text": pa.array(texts, pa.string()),
        "text_key": pa.array([sha256_bytes(t.encode())[:16] for t in texts],
                             pa.string()),
        "input_ids": pa.array(ids, pa.list_(pa.int32())),
        "n_tokens": pa.array([len(x) for x in ids], pa.int32()),
        "truncated": pa.array(truncated, pa.bool_()),
    }, schema=S.text_tokens_schema())
    with atomic_path(out / "tokens.parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    seconds = time.perf_counter() - t0
    atomic_write_json(mpath, {"identity": asdict(tok.identity), "encoder_id": eid,
                              "texts_sha256": keys_sha, "rows": len(texts),
                              "truncated": int(truncated.sum()), "pad_id": tok.pad_id,
                              "max_length": tok.max_length, "schema": "text_tokens"})
    return {"modality": "text", "encoder_id": eid, "unique_items": len(texts), "ok": len(texts),
            "failed": 0, "truncated": int(truncated.sum()), "encoded_this_run": len(texts),
            "skipped_resumed": 0, "seconds": round(seconds, 3),
            "items_per_s": round(len(texts) / seconds, 2) if seconds > 0 else None}


def pad_tokens(input_ids: pa.ListArray | pa.ChunkedArray, length: int, pad_id: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length ids -> (n, length) int32 ids and int8 mask, vectorised.

    Sequences longer than ``length`` keep their first length-1 tokens and their last (</s>).
    """
    arr = input_ids.combine_chunks() if isinstance(input_ids, pa.ChunkedArray) else input_ids
    offsets = arr.offsets.to_numpy()                  # (n+1,)
    flat = arr.flatten().to_numpy().astype(np.int32)  # (total tokens,)
    lens = np.diff(offsets)
    n = len(lens)
    ids = np.full((n, length), pad_id, np.int32)
    keep = np.minimum(lens, length)
    pos = np.arange(length)[None, :]                  # (1, L)
    take = pos < keep[:, None]                        # (n, L) real-token slots
    src = offsets[:-1, None] + pos                    # (n, L) index into flat
    over = lens > length
    src[over, length - 1] = offsets[1:][over] - 1     # last slot of a cut sequence = </s>
    ids[take] = flat[src[take]]
    return ids, take.astype(np.int8)
