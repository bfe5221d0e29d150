"""Patient-disjoint splits and seeded retrieval candidate sets (SPEC section 3)."""
from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def _target(size: float, n: int, name: str) -> int:
    k = int(size) if size >= 1 else int(round(size * n))
    if k > n:
        raise ValueError(f"{name}={size} asks for {k} admissions but the cohort has {n}")
    return k


def assign_splits(subject_id: np.ndarray, train_size: float, val_size: float,
                  seed: int) -> np.ndarray:
    """'train' / 'val' / 'test' per admission; every subject lies in exactly one split.

    Subjects are shuffled (seeded) and taken whole until each split reaches its admission
    target (count, or fraction of all admissions); the test split gets the rest.
    """
    subject_id = np.asarray(subject_id)
    n = len(subject_id)
    n_train = _target(train_size, n, "train_size")
    n_val = _target(val_size, n, "val_size")
    if n_train + n_val > n:
        raise ValueError(f"train_size + val_size ({n_train} + {n_val}) exceed the cohort ({n})")
    subj, inv, counts = np.unique(subject_id, return_inverse=True, return_counts=True)
    perm = np.random.default_rng(seed).permutation(len(subj))
    before = np.cumsum(counts[perm]) - counts[perm]          # admissions before this subject
    code = np.where(before < n_train, 0, 2)
    got_train = counts[perm][code == 0].sum()
    code = np.where((code == 2) & (before < got_train + n_val), 1, code)
    subj_code = np.empty(len(subj), np.int64)
    subj_code[perm] = code
    return np.asarray(SPLITS)[subj_code[inv]]


def retrieval_sets(hadm_id: np.ndarray, k: int, seed: int, split: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """For each query admission: k candidate hadm_ids (its own + k-1 distinct others of the
    split, in seeded random order) and the label (position of its own). Shapes (n, k), (n,)."""
    hadm_id = np.asarray(hadm_id, np.int64)
    n = len(hadm_id)
    if n < k:
        raise ValueError(f"split '{split}' has {n} admissions; retrieval needs at least {k}")
    rng = np.random.default_rng(seed)
    m, kk = n - 1, k - 1
    pick = np.empty((n, kk), np.int64)
    for j, t in enumerate(range(m - kk, m)):                 # Floyd's sampling, per column
        r = rng.integers(0, t + 1, n)
        dup = (pick[:, :j] == r[:, None]).any(axis=1)
        pick[:, j] = np.where(dup, t, r)
    pick += pick >= np.arange(n)[:, None]                    # skip the query itself
    idx = np.concatenate([np.arange(n)[:, None], pick], axis=1)
    shuffle = np.argsort(rng.random((n, k)), axis=1)
    idx = np.take_along_axis(idx, shuffle, axis=1)
    label = np.argmax(shuffle == 0, axis=1).astype(np.int8)
    return hadm_id[idx], label
