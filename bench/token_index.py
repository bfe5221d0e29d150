"""Probe (issue 11): does the join's token lookup hold more memory when the text index is larger?

Builds a synthetic text index (``features/text.py`` layout: ``index/{hash,offsets,ids}.bin`` +
``manifest.json``) of N texts with 6-14 token ids each, reads it once so its pages are in the
page cache (as after the text stage), then, in a fresh process per size, looks up Q random texts
(``TokenIndex.find``) and gathers their padded ids (``TokenIndex.gather``), the join's calls.
It reports the process's peak resident set during the lookups above the resident set before
them (``VmHWM`` reset through ``/proc/self/clear_refs``), split into anonymous and file pages
where the kernel gives them (``RssFile`` sampled after each piece's lookups).

  nice -n 10 python bench/token_index.py --texts 100000,1000000,4000000 \
      --work /work/scratch/x/ti      (prints JSON)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_index(d: Path, n: int, seed: int = 0) -> None:
    """Synthetic index of ``n`` texts (distinct sorted hashes, 6-14 ids each) under ``d``."""
    rng = np.random.default_rng(seed)
    h = np.unique(rng.integers(0, 2**63, n + n // 100 + 16, dtype=np.int64).astype(np.uint64))
    h = np.sort(rng.choice(h, n, replace=False))
    lens = rng.integers(6, 15, n).astype(np.int64)
    (d / "index").mkdir(parents=True, exist_ok=True)
    h.tofile(d / "index/hash.bin")
    np.concatenate([[0], np.cumsum(lens)]).astype(np.int64).tofile(d / "index/offsets.bin")
    with open(d / "index/ids.bin", "wb") as f:       # in pieces: bounded memory
        for lo in range(0, int(lens.sum()), 1 << 24):
            k = min(1 << 24, int(lens.sum()) - lo)
            rng.integers(5, 250_000, k, dtype=np.int32).tofile(f)
    (d / "manifest.json").write_text(json.dumps(
        {"index": {"texts": n, "tokens": int(lens.sum())}, "pad_id": 1}))


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) // 1024        # MB
    return out


def _sampled(fn, sample):
    def wrapped(*a, **k):
        r = fn(*a, **k)
        sample()
        return r
    return wrapped


def probe(d: Path, queries: int, length: int, seed: int = 1) -> dict:
    """Peak memory of find + gather of ``queries`` random texts of the index under ``d``."""
    from symile_data.features import text as T
    from symile_data.io.memory import release_unused
    n = json.loads((d / "manifest.json").read_text())["index"]["texts"]
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, queries)
    hashes = np.array(np.memmap(d / "index/hash.bin", np.uint64, "r")[rows])   # the queries
    index = T.TokenIndex(d)
    release_unused()                                   # "before": nothing freed kept
    rss_file = []
    sample = lambda: rss_file.append(_status().get("RssFile", 0))  # noqa: E731
    # sample RssFile after each piece's reads, while its pages are mapped (the memory-mapped
    # version: after its gathers / fenced lookups; the pread version: after every read)
    for name in ("gather_tokens", "lookup_fenced", "read_spans"):
        if hasattr(T, name):
            setattr(T, name, _sampled(getattr(T, name), sample))
    before = _status()
    Path("/proc/self/clear_refs").write_text("5")                 # reset VmHWM
    t0 = time.perf_counter()
    found, n_tok = index.find(hashes)
    t1 = time.perf_counter()
    ids, _ = index.gather(found, length)
    t2 = time.perf_counter()
    after = _status()
    assert np.array_equal(found, rows) and (n_tok >= 6).all()
    return {"texts": n, "queries": queries, "rss_before_mb": before["VmRSS"],
            "peak_over_before_mb": after["VmHWM"] - before["VmRSS"],
            "rss_file_before_mb": before.get("RssFile"),
            "rss_file_max_mb": max(rss_file) if rss_file else None,
            "find_s": round(t1 - t0, 3), "gather_s": round(t2 - t1, 3),
            "ids_sha": hashlib.sha256(ids.tobytes()).hexdigest()[:16]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--texts", default="100000,1000000,4000000")
    p.add_argument("--queries", type=int, default=65_536)
    p.add_argument("--length", type=int, default=16)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--probe", type=Path, help=argparse.SUPPRESS)   # child: one probe
    a = p.parse_args(argv)
    if a.probe:
        print(json.dumps(probe(a.probe, a.queries, a.length)))
        return
    out = []
    for n in [int(x) for x in a.texts.split(",")]:
        d = a.work / f"n{n}"
        if not (d / "manifest.json").exists():
            build_index(d, n)
        for f in (d / "index").iterdir():                          # into the page cache
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass
        r = subprocess.run([sys.executable, __file__, "--work", str(a.work), "--probe", str(d),
                            "--queries", str(a.queries), "--length", str(a.length)],
                           capture_output=True, text=True, check=True)
        out.append(json.loads(r.stdout))
        print(json.dumps(out[-1]), file=sys.stderr)
    print(json.dumps({"probe": "token_index", "piece": 8192, "results": out}, indent=1))
    if not os.environ.get("KEEP"):
        shutil.rmtree(a.work, ignore_errors=True)


if __name__ == "__main__":
    main()
