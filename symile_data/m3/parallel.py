"""Run per-item work (image decode/resize, TTS) in batches on dask.

scheduler: "local" (a LocalCluster of ``n_workers`` single-threaded processes), "threads"
(dask's threaded scheduler; fine when the work is in subprocesses or releases the GIL),
"synchronous" (inline; tests and debugging) or the address of a running dask scheduler
(e.g. "tcp://10.0.0.5:8786"). Results come back in input order, so outputs are deterministic
whatever the scheduler.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Sequence

from symile_data.progress import progress

log = logging.getLogger(__name__)


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    size = max(1, int(size))
    return [items[i:i + size] for i in range(0, len(items), size)]


def map_batches(fn: Callable[[Sequence[Any]], list[Any]], items: Sequence[Any], *,
                scheduler: str = "local", n_workers: int = 2, batch_size: int = 64,
                desc: str = "work") -> list[Any]:
    """Apply ``fn`` (a picklable top-level function: batch -> list of results) to batches."""
    batches = _batches(items, batch_size)
    if not batches:
        return []
    if scheduler == "synchronous" or (scheduler == "local" and len(batches) == 1):
        # one batch: a cluster's start-up (seconds) would dominate the work
        out = [fn(b) for b in progress(batches, desc=desc, total=len(batches), unit="batch")]
    elif scheduler == "threads":
        import dask
        tasks = [dask.delayed(fn)(b) for b in batches]
        out = list(dask.compute(*tasks, scheduler="threads", num_workers=n_workers))
    else:
        out = _distributed(fn, batches, scheduler, n_workers, desc)
    return [r for batch in out for r in batch]


def _distributed(fn, batches, scheduler: str, n_workers: int, desc: str) -> list[Any]:
    from distributed import Client, LocalCluster, as_completed

    logging.getLogger("distributed").setLevel(logging.WARNING)  # start/stop chatter
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.WARNING)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as e:
            raise RuntimeError(f"cannot reach dask scheduler '{scheduler}': {e}") from e
    try:
        futures = client.map(fn, batches, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(batches)
        for fut in progress(as_completed(futures), desc=desc, total=len(futures), unit="batch"):
            out[index[fut.key]] = fut.result()
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class Throttle:
    """At most one call per ``min_interval_s`` seconds within this process."""

    def __init__(self, min_interval_s: float):
        self.min_interval_s, self._last, self._lock = min_interval_s, 0.0, threading.Lock()

    def wait(self) -> None:
        with self._lock:
            delay = self._last + self.min_interval_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._last = time.monotonic()
