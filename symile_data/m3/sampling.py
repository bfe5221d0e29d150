"""Vectorised, seeded Symile-M3 sampling (SPEC section 2, disjoint mode).

One row: lang ~ U(w languages), audio ~ U(clips of lang), cls ~ U(classes), image ~ U(images of
cls); text = the class name in lang plus w-1 words from distinct other classes, one per other
language (every language exactly once), shuffled and joined by "_". Missingness: independent
Bernoulli(p) per modality per row on train/val; test is complete.

Rows are generated in fixed blocks of ``block_rows`` with one RNG per block
(SeedSequence([seed, w, split_index, block])), so any row range is reproducible on its own and
the output does not depend on shard sizes. No per-row Python: numpy for the draws, Arrow
kernels for the strings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SamplingInputs:
    """Everything sampling needs, as flat arrays (C classes, w languages)."""
    langs: tuple[str, ...]      # (w,) language codes; index = lang_id
    cls_ids: np.ndarray         # (C,) int16 ImageNet-1k ids of the classes in use
    synsets: pa.Array           # (C,) string
    words: pa.Array             # (C*w,) string; words[c*w + l] = name of class c in langs[l]
    img_offsets: np.ndarray     # (C+1,) int64 CSR offsets of each class's images in image_keys
    image_keys: pa.Array        # (n_images,) string
    clip_offsets: np.ndarray    # (w+1,) int64 CSR offsets of each language's clips in audio_keys
    audio_keys: pa.Array        # (n_clips,) string

    def __post_init__(self):
        w, c = len(self.langs), len(self.cls_ids)
        if w < 2:
            raise ValueError(f"need at least 2 languages, got {self.langs}")
        if c < w:
            raise ValueError(f"need at least w={w} classes for w distinct words, got {c}")
        if len(self.words) != c * w:
            raise ValueError(f"words has {len(self.words)} entries, expected {c}*{w}")
        empty_cls = np.flatnonzero(np.diff(self.img_offsets) == 0)
        if empty_cls.size:
            raise ValueError("no usable image for class(es) "
                             f"{[self.synsets[int(i)].as_py() for i in empty_cls[:10]]}")
        empty_lang = np.flatnonzero(np.diff(self.clip_offsets) == 0)
        if empty_lang.size:
            raise ValueError(f"no usable audio clip for language(s) "
                             f"{[self.langs[int(i)] for i in empty_lang]}")


def _distinct_others(rng: np.random.Generator, cls: np.ndarray, n_cls: int, k: int) -> np.ndarray:
    """(n, k) classes drawn uniformly without replacement from range(n_cls) minus cls[i].

    Floyd's algorithm over the C-1 other classes, vectorised over rows (k steps, each an
    (n, <=k) comparison), then a random column permutation so column order is exchangeable.
    """
    n, m = cls.shape[0], n_cls - 1
    chosen = np.empty((n, k), dtype=np.int64)
    for col, j in enumerate(range(m - k, m)):
        t = rng.integers(0, j + 1, size=n)
        dup = (chosen[:, :col] == t[:, None]).any(axis=1) if col else np.zeros(n, bool)
        chosen[:, col] = np.where(dup, j, t)
    chosen += chosen >= cls[:, None]  # skip the row's own class
    perm = np.argsort(rng.random((n, k)), axis=1)
    return np.take_along_axis(chosen, perm, axis=1)


def sample_block(inp: SamplingInputs, n: int, rng: np.random.Generator,
                 missing_p: float, with_missing: bool) -> dict[str, object]:
    """Draw n rows. Returns numpy arrays / Arrow arrays keyed by column name (no key/split)."""
    w, n_cls = len(inp.langs), len(inp.cls_ids)
    lang = rng.integers(0, w, size=n)
    clip_counts = np.diff(inp.clip_offsets)
    audio_idx = inp.clip_offsets[lang] + rng.integers(0, clip_counts[lang])
    cls = rng.integers(0, n_cls, size=n)
    img_counts = np.diff(inp.img_offsets)
    image_idx = inp.img_offsets[cls] + rng.integers(0, img_counts[cls])
    others = _distinct_others(rng, cls, n_cls, w - 1)                       # (n, w-1)
    other_langs = np.array([[j for j in range(w) if j != l] for l in range(w)],
                           dtype=np.int64).reshape(w, w - 1)[lang]          # (n, w-1)
    word_cls = np.concatenate([cls[:, None], others], axis=1)               # (n, w)
    word_lang = np.concatenate([lang[:, None], other_langs], axis=1)        # (n, w)
    perm = np.argsort(rng.random((n, w)), axis=1)                           # shuffle words
    word_idx = (np.take_along_axis(word_cls, perm, axis=1) * w
                + np.take_along_axis(word_lang, perm, axis=1)).ravel()
    offsets = pa.array(np.arange(0, n * w + 1, w, dtype=np.int32))
    text = pc.binary_join(pa.ListArray.from_arrays(offsets, inp.words.take(pa.array(word_idx))),
                          "_")
    if with_missing:
        miss = rng.random((n, 3)) < missing_p                               # image, text, audio
    else:
        miss = np.zeros((n, 3), dtype=bool)
    return {
        "cls_id": inp.cls_ids[cls].astype(np.int16),
        "synset": inp.synsets.take(pa.array(cls)),
        "lang_id": lang.astype(np.int8),
        "lang": pa.array(np.array(inp.langs, dtype=object)).take(pa.array(lang)),
        "target_word": inp.words.take(pa.array(cls * w + lang)),
        "text": text,
        "image_key": inp.image_keys.take(pa.array(image_idx)),
        "audio_key": inp.audio_keys.take(pa.array(audio_idx)),
        "image_missing": miss[:, 0],
        "text_missing": miss[:, 1],
        "audio_missing": miss[:, 2],
    }


def row_keys(split: str, start: int, stop: int) -> pa.Array:
    """Stable sample keys "{split}-{i:09d}" for rows start..stop-1."""
    idx = pc.cast(pa.array(np.arange(start, stop, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(split, pc.utf8_lpad(idx, 9, "0"), "-")


class SplitSource:
    """Lazy row source for one split: ``num_rows`` and ``take_range(start, stop) -> pa.Table``."""

    def __init__(self, inp: SamplingInputs, split: str, num_rows: int, seed: int,
                 missing_p: float, schema: pa.Schema, block_rows: int = 1_000_000):
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}'; expected one of {SPLITS}")
        if not 0.0 <= missing_p <= 1.0:
            raise ValueError(f"missing_p must be in [0, 1], got {missing_p}")
        self.inp, self.split, self.num_rows, self.seed = inp, split, int(num_rows), int(seed)
        self.missing_p, self.schema, self.block_rows = missing_p, schema, int(block_rows)
        self._cache: tuple[int, pa.Table] | None = None

    def _block(self, b: int) -> pa.Table:
        if self._cache is not None and self._cache[0] == b:
            return self._cache[1]
        start = b * self.block_rows
        n = min(self.block_rows, self.num_rows - start)
        ss = np.random.SeedSequence([self.seed, len(self.inp.langs), SPLITS.index(self.split), b])
        cols = sample_block(self.inp, n, np.random.default_rng(ss), self.missing_p,
                            with_missing=self.split != "test")
        cols = {"key": row_keys(self.split, start, start + n),
                "split": pa.array([self.split] * 1).take(pa.array(np.zeros(n, np.int64))),
                **cols}
        names = [f.name for f in self.schema]
        table = pa.table({k: cols[k] for k in names if k in cols}).cast(
            pa.schema([self.schema.field(k) for k in names if k in cols]))
        self._cache = (b, table)
        return table

    def take_range(self, start: int, stop: int) -> pa.Table:
        if not 0 <= start <= stop <= self.num_rows:
            raise IndexError(f"range {start}:{stop} outside 0:{self.num_rows}")
        parts = []
        for b in range(start // self.block_rows, (max(stop, start + 1) - 1) // self.block_rows + 1):
            lo = max(start, b * self.block_rows) - b * self.block_rows
            hi = min(stop, (b + 1) * self.block_rows) - b * self.block_rows
            parts.append(self._block(b).slice(lo, hi - lo))
        if stop == self.num_rows:
            # the split's last rows: drop the cached block, or every split written so far
            # keeps one (up to ~26 MB each at w = 10; grew the stage from xs to l, issue 11)
            self._cache = None
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]
