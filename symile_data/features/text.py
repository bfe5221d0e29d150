"""Text "features": XLM-R style token ids per unique text (the text tower is fine-tuned, so
ids and attention masks, not embeddings, are what the reference released).

Stored unpadded (``list<int32>``, with ``<s> ... </s>``, truncated at ``max_length``); the join
pads per shard chunk to the per-split maximum (reference) or a fixed length. One table per
tokenizer identity at ``{root}/text/{encoder_id}/``::

    part-00000.parquet    text, text_key, input_ids list<int32>, n_tokens, truncated
    part-00000.done.json  marker (sha256 of the part's text hashes, encoder id)
    index/hash.bin        uint64 hash per text (ascending over the parts in order)
    index/offsets.bin     int64 (n+1) token offsets;  index/ids.bin  int32 flat token ids
    manifest.json         written last

Scale: the texts are streamed once into 2^k hash buckets on disk (top k bits of the 64-bit
text hash, k from the row count and ``PART_TEXTS``: 50k-100k texts a part), then each bucket is deduplicated, sorted
by hash, tokenised in batches straight into Arrow and written as one part. Memory is one part,
never the whole set (at M3 ``l``, w = 10, nearly all 11M texts are distinct).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from symile_data import schema as S
from symile_data.features.encoders import EncoderIdentity, load_pretrained, resolved_revision
from symile_data.features.keyhash import check_unique, hash_strings, lookup
from symile_data.io.atomic import atomic_path, atomic_write_json, read_json, scratch_dir
from symile_data.io.fingerprint import part_done
from symile_data.io.buckets import BucketWriter, read_ipc
from symile_data.io.lock import remove_stale_tmp
from symile_data.io.memory import release_unused
from symile_data.io.pread import check_rows, read_spans
from symile_data.hashing import sha256_bytes
from symile_data.progress import progress

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
        bt = getattr(self.tokenizer, "backend_tokenizer", None)
        if bt is not None and bt.truncation is None and bt.padding is None \
                and hasattr(bt, "encode_batch_fast"):   # same ids, ~1.7x faster (no offsets)
            full = [e.ids for e in bt.encode_batch_fast(texts, add_special_tokens=True)]
        else:
            full = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        lens = np.fromiter((len(x) for x in full), np.int64, len(full))
        trunc = lens > self.max_length
        if trunc.any():  # keep <s> ... and the final </s>, like truncation=True would
            full = [x if len(x) <= self.max_length else x[: self.max_length - 1] + [x[-1]]
                    for x in full]
        return full, trunc


PART_TEXTS = 100_000  # unique texts per part (50-100k): the unit of memory and of resume


def _bucket_bits(n_rows: int, part_texts: int) -> int:
    """log2 of the number of hash buckets (= parts) for about n_rows texts."""
    return max(0, int(np.ceil(np.log2(max(1, -(-n_rows // part_texts))))))


def _partition(batches: Iterable[pa.Array], bits: int, tmp: Path) -> list[Path]:
    """Spill the (per-batch unique) texts into 2^bits bucket files by the top hash bits
    (``io/buckets.py``: IPC streams, nothing held per batch)."""
    schema = pa.schema([pa.field("text", pa.string())])
    with BucketWriter(tmp, "bucket", 1 << bits, schema, compression="lz4") as w:
        for batch in batches:
            u = pc.unique(batch.cast(pa.string()))
            u = u.filter(pc.is_valid(u))
            b = (hash_strings(u) >> np.uint64(64 - bits)).astype(np.int64) if bits \
                else np.zeros(len(u), np.int64)
            w.write(pa.table({"text": u}, schema=schema), b)
            release_unused()                 # per batch: no creep of freed Arrow buffers
    return w.paths


def _bucket_texts(path: Path) -> tuple[pa.Array, np.ndarray]:
    """(unique texts sorted by hash, their ascending uint64 hashes) of one bucket file."""
    col = read_ipc(path)["text"]
    u = pc.unique(col.combine_chunks()) if len(col) else pa.array([], pa.string())
    h = hash_strings(u)
    order = np.argsort(h, kind="stable")
    texts, h = u.take(pa.array(order)), h[order]
    check_unique(h, texts, str(path))
    return texts, h


def _token_part(tok: "TextTokenizer", texts: pa.Array) -> pa.Table:
    """Tokenise ``texts`` in batches straight into one Arrow table (flat ids + offsets)."""
    ids_parts, lens_parts, trunc_parts, keys = [], [], [], []
    for lo in range(0, len(texts), BATCH):
        batch = texts.slice(lo, BATCH).to_pylist()          # one batch of Python strings
        ids, trunc = tok.tokenize(batch)
        lens_parts.append(np.fromiter(map(len, ids), np.int32, len(ids)))
        ids_parts.append(np.fromiter(itertools.chain.from_iterable(ids), np.int32))
        trunc_parts.append(trunc)
        keys += [sha256_bytes(t.encode())[:16] for t in batch]
    lens = np.concatenate(lens_parts) if lens_parts else np.zeros(0, np.int32)
    offsets = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]).astype(np.int32)
    flat = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int32)
    return pa.table({
        "text": texts, "text_key": pa.array(keys, pa.string()),
        "input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)),
        "n_tokens": pa.array(lens, pa.int32()),
        "truncated": pa.array(np.concatenate(trunc_parts) if trunc_parts
                              else np.zeros(0, bool), pa.bool_()),
    }, schema=S.text_tokens_schema())


def encode_texts(tok: TextTokenizer, batches: Iterable[pa.Array], n_rows: int,
                 out_dir: str | Path, part_texts: int = PART_TEXTS) -> dict:
    """Tokenise the unique texts of ``batches`` (Arrow string arrays; ~n_rows in all) into
    ``out_dir``: parts sorted by text hash, each resumable, plus the lookup index.

    Memory: one batch, then one part (~part_texts texts) at a time; never the whole set.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)  # temporaries of killed runs (live writers' are kept)
    eid = tok.identity.encoder_id()
    bits = _bucket_bits(n_rows, part_texts)
    t0 = time.perf_counter()
    n_texts = n_done = n_trunc = 0
    parts, shas = [], []
    with scratch_dir(out, "text-buckets") as tmp:
        buckets = _partition(batches, bits, Path(tmp))
        for p, bucket in enumerate(progress(buckets, desc="text parts", total=len(buckets))):
            texts, h = _bucket_texts(bucket)
            name, sha = f"part-{p:05d}", sha256_bytes(h.tobytes())
            parts.append(f"{name}.parquet")
            shas.append(sha)
            n_texts += len(texts)
            marker = out / f"{name}.done.json"
            m = part_done(out / parts[-1], marker,     # a damaged part file is rebuilt
                          {"hashes_sha256": sha, "encoder_id": eid, "rows": len(texts)})
            if m is not None:
                n_trunc += m["truncated"]
                continue
            table = _token_part(tok, texts)
            with atomic_path(out / parts[-1]) as tmp_part:
                pq.write_table(table, tmp_part, compression="zstd")
            trunc = int(pc.sum(table["truncated"]).as_py() or 0)
            n_trunc += trunc
            n_done += len(texts)
            atomic_write_json(marker, {"hashes_sha256": sha, "encoder_id": eid,
                                       "rows": len(texts), "truncated": trunc})
            del table, texts, h
            release_unused()                 # one part's memory at a time, not a creep
    for stale in sorted(out.glob("part-*.parquet")):
        if stale.name not in parts:   # a rerun with fewer parts: drop the leftovers
            stale.unlink()
            (out / stale.name.replace(".parquet", ".done.json")).unlink(missing_ok=True)
    keys_sha = sha256_bytes("\n".join(shas).encode())
    index = write_token_index(out, parts)
    seconds = time.perf_counter() - t0
    atomic_write_json(out / "manifest.json", {
        "identity": asdict(tok.identity), "encoder_id": eid, "texts_sha256": keys_sha,
        "rows": n_texts, "parts": parts, "index": index, "truncated": n_trunc,
        "pad_id": tok.pad_id, "max_length": tok.max_length, "schema": "text_tokens"})
    return {"modality": "text", "encoder_id": eid, "unique_items": n_texts, "ok": n_texts,
            "failed": 0, "truncated": n_trunc, "encoded_this_run": n_done,
            "skipped_resumed": n_texts - n_done, "seconds": round(seconds, 3),
            "items_per_s": round(n_done / seconds, 2) if seconds > 0 and n_done else None}


# ---- lookup index: flat arrays on disk, read by the join with positional reads ----
INDEX_DIR = "index"


def write_token_index(out: Path, parts: list[str]) -> dict:
    """Stream the parts into ``index/{hash,offsets,ids}.bin`` (ascending hash = part order,
    since parts are hash buckets by the top bits); returns their lengths."""
    d = out / INDEX_DIR
    d.mkdir(exist_ok=True)
    counts = {"texts": 0, "tokens": 0}
    with atomic_path(d / "hash.bin") as th, atomic_path(d / "offsets.bin") as to, \
            atomic_path(d / "ids.bin") as ti, open(th, "wb") as fh, open(to, "wb") as fo, \
            open(ti, "wb") as fi:
        fo.write(np.zeros(1, np.int64).tobytes())
        for part in parts:
            for batch in pq.ParquetFile(out / part).iter_batches(
                    batch_size=65_536, columns=["text", "input_ids"]):
                ids = batch.column(1)
                lens = ids.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
                fh.write(hash_strings(batch.column(0)).tobytes())
                fo.write((counts["tokens"] + np.cumsum(lens)).astype(np.int64).tobytes())
                fi.write(ids.flatten().to_numpy(zero_copy_only=False)
                         .astype(np.int32).tobytes())
                counts["texts"] += len(lens)
                counts["tokens"] += int(lens.sum())
            release_unused()
    return counts


class TokenIndex:
    """Token lookup of one text table: hash -> row, row -> ids, read from the index files with
    positional reads (``io/pread.py``), in pieces of ``PIECE`` rows.

    Memory per piece: its ids, one block of ``FENCE`` hashes (1 KB) and one offset pair per row,
    whatever the size of the index; the files stay in the page cache, outside the process (a
    memory map made up to 64 KB resident per random lookup: +192 MB at 4M texts, measured). In
    RAM for the table's lifetime: every ``FENCE``-th hash (8 B per 128 texts: 0.7 MB at 11M).
    """
    PIECE = 8192
    FENCE = 128       # one hash in RAM per FENCE texts, to find the block a hash lies in

    def __init__(self, table_dir: str | Path):
        self.dir = Path(table_dir) / INDEX_DIR
        manifest = read_json(Path(table_dir) / "manifest.json")
        self.counts = manifest["index"]
        self.pad_id = int(manifest["pad_id"])
        self.n = int(self.counts["texts"])
        fence, step = [], self.FENCE * 8192          # read in chunks of 8192 fence steps
        with open(self.dir / "hash.bin", "rb") as f:
            for lo in range(0, self.n, step):
                fence.append(np.fromfile(f, np.uint64, min(step, self.n - lo))[::self.FENCE])
        self.fence = np.concatenate(fence) if fence else np.zeros(0, np.uint64)

    def find(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each text hash or -1, its number of tokens or 0)."""
        rows = np.full(len(hashes), -1, np.int64)
        n_tok = np.zeros(len(hashes), np.int64)
        if self.n == 0:
            return rows, n_tok
        for lo in range(0, len(hashes), self.PIECE):
            q = hashes[lo:lo + self.PIECE]
            # each query's block of FENCE hashes; the blocks read in file order are one
            # ascending array, and a hash present lies in its own block
            first = np.maximum(np.searchsorted(self.fence, q, "right") - 1, 0) * self.FENCE
            n_in = np.minimum(first + self.FENCE, self.n) - first
            buf, pos = read_spans(self.dir / "hash.bin", first * 8, n_in * 8)
            at = lookup(buf.view(np.uint64), q)
            r = np.where(at >= 0, first + at - pos // 8, -1)
            ok = r >= 0
            starts, ends = self._offsets(r[ok])
            n_tok[lo:lo + len(q)][ok] = ends - starts
            rows[lo:lo + len(q)] = r
        return rows, n_tok

    def gather(self, rows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, length) int32 ids and int8 mask of index rows (cut like pad_tokens)."""
        rows = check_rows(rows, self.n, self.dir, "text row")
        ids = np.empty((len(rows), length), np.int32)
        mask = np.empty((len(rows), length), np.int8)
        for lo in range(0, len(rows), self.PIECE):
            starts, ends = self._offsets(rows[lo:lo + self.PIECE])
            buf, pos = read_spans(self.dir / "ids.bin", starts * 4, (ends - starts) * 4)
            ids[lo:lo + len(starts)], mask[lo:lo + len(starts)] = _pad_flat(
                buf.view(np.int32), pos // 4, ends - starts, length, self.pad_id)
        return ids, mask

    def _offsets(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first token, end token) of each row: offsets[r], offsets[r + 1]."""
        buf, pos = read_spans(self.dir / "offsets.bin", rows * 8, np.full(len(rows), 16))
        flat = buf.view(np.int64)
        return flat[pos // 8], flat[pos // 8 + 1]


def pad_tokens(input_ids: pa.ListArray | pa.ChunkedArray, length: int, pad_id: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length ids -> (n, length) int32 ids and int8 mask, vectorised.

    Sequences longer than ``length`` keep their first length-1 tokens and their last (</s>).
    """
    arr = input_ids.combine_chunks() if isinstance(input_ids, pa.ChunkedArray) else input_ids
    offsets = arr.offsets.to_numpy()                  # (n+1,)
    flat = arr.values.to_numpy().astype(np.int32)     # (total tokens,) incl. before offset 0
    return _pad_flat(flat, offsets[:-1], np.diff(offsets), length, pad_id)


def _pad_flat(flat: np.ndarray, starts: np.ndarray, lens: np.ndarray, length: int,
              pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows flat[starts[i]:starts[i]+lens[i]] -> padded (n, length) ids and int8 mask."""
    n = len(lens)
    ids = np.full((n, length), pad_id, np.int32)
    keep = np.minimum(lens, length)
    pos = np.arange(length)[None, :]                  # (1, L)
    take = pos < keep[:, None]                        # (n, L) real-token slots
    src = starts[:, None] + pos                       # (n, L) index into flat
    over = lens > length
    src[over, length - 1] = starts[over] + lens[over] - 1   # last slot of a cut one = </s>
    ids[take] = flat[src[take]]
    return ids, take.astype(np.int8)
