"""Vectorised interval joins: for every query (group, [lo, hi]) the range of matching events.

Events are sorted once by (group, time, tie-breakers) and packed into one int64 key
``rank(group) * stride + (time - tmin)``; each query window becomes two ``np.searchsorted``
calls. The matching events of query q are ``order[lo[q]:hi[q]]`` in time order (ties broken by
the tie-breaker columns), so "earliest" is ``order[lo[q]]``. ``first_valid`` walks these ranges
in rounds (one vectorised step per round over all still-open queries, not a loop over queries),
calling a checker only on candidates, to skip events that fail a per-file check.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def window_ranges(ev_group: np.ndarray, ev_time: np.ndarray, tiebreak: list[np.ndarray],
                  q_group: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray,
                  lo_closed: bool = True, hi_closed: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (order, lo, hi): ``order`` sorts the events; query q matches order[lo:hi]."""
    ev_group, ev_time = np.asarray(ev_group, np.int64), np.asarray(ev_time, np.int64)
    q_group = np.asarray(q_group, np.int64)
    q_lo, q_hi = np.asarray(q_lo, np.int64), np.asarray(q_hi, np.int64)
    order = np.lexsort((*[np.asarray(t) for t in reversed(tiebreak)], ev_time, ev_group))
    n_q = len(q_group)
    if len(order) == 0 or n_q == 0:
        z = np.zeros(n_q, np.int64)
        return order, z, z
    g, t = ev_group[order], ev_time[order]
    groups = np.unique(np.concatenate([g, q_group]))
    tmin = int(min(t.min(), q_lo.min()))
    stride = int(max(t.max(), q_hi.max())) - tmin + 1
    if len(groups) * stride >= 2 ** 62:
        raise OverflowError(f"interval join key overflow: {len(groups)} groups x time span "
                            f"{stride}; use a coarser time unit")
    key = np.searchsorted(groups, g).astype(np.int64) * stride + (t - tmin)
    qbase = np.searchsorted(groups, q_group).astype(np.int64) * stride - tmin
    lo = np.searchsorted(key, qbase + q_lo, side="left" if lo_closed else "right")
    hi = np.searchsorted(key, qbase + q_hi, side="right" if hi_closed else "left")
    return order, lo, np.maximum(hi, lo)


def first_valid(order: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                check: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Index (into the unsorted events) of the earliest event passing ``check``, or -1.

    ``check(event_indices) -> bool array`` is called only on candidates, in rounds: round r
    asks about the r-th candidate of every query whose earlier candidates all failed.
    """
    chosen = np.full(len(lo), -1, np.int64)
    ptr = lo.copy()
    open_q = np.flatnonzero(ptr < hi)
    while len(open_q):
        cand = order[ptr[open_q]]
        ok = np.ones(len(cand), bool) if check is None else np.asarray(check(cand), bool)
        chosen[open_q[ok]] = cand[ok]
        rest = open_q[~ok]
        ptr[rest] += 1
        open_q = rest[ptr[rest] < hi[rest]]
    return chosen
