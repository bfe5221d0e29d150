"""Synthetic XOR data of the paper's figure 3 (SPEC section 4), one dataset per p.

a_j, b_j ~ Bernoulli(0.5), j = 1..d_v; i ~ Bernoulli(p); c = a XOR b if i = 1 else a.
Every pair (a, b), (a, c), (b, c) is independent for every p, so only a higher-order objective
can predict b from (a, c).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa

from symile_data.config import params_hash
from symile_data.io.card import write_root_card
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.schema import xor_schema


@dataclasses.dataclass(frozen=True)
class XorDataConfig:
    d_v: int = 5
    ps: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    n_train: int = 10_000
    n_val: int = 1_000
    n_test: int = 5_000
    seed: int = 0
    max_rows_per_shard: int = 5_000
    target_shard_bytes: int = 500_000_000
    row_group_rows: int = 8192

    def validate(self) -> None:
        if self.d_v < 1:
            raise ValueError(f"d_v must be >= 1, got {self.d_v}")
        bad = [p for p in self.ps if not 0.0 <= p <= 1.0]
        if bad:
            raise ValueError(f"ps must lie in [0, 1], got {bad}")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError("n_train, n_val and n_test must be >= 1")


def p_dirname(p: float) -> str:
    return f"p{p:.1f}"


def generate_xor(n: int, d_v: int, p: float, rng: np.random.Generator, split: str) -> pa.Table:
    a = rng.integers(0, 2, size=(n, d_v), dtype=np.int8)          # (n, d_v)
    b = rng.integers(0, 2, size=(n, d_v), dtype=np.int8)
    i = (rng.random(n) < p).astype(np.int8)                         # (n,)
    c = np.where(i[:, None] == 1, a ^ b, a).astype(np.int8)

    def vec(x: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), d_v)

    keys = pa.array([f"xor-{split}-{k:07d}" for k in range(n)])
    return pa.table({"key": keys, "split": pa.array([split] * n), "a": vec(a), "b": vec(b),
                     "c": vec(c), "i": pa.array(i)})


def build_xor_datasets(out_root: str | Path, cfg: XorDataConfig) -> dict[str, dict]:
    """Write one dataset dir per p under ``out_root``; returns {dirname: manifest}."""
    out_root = Path(out_root)
    spec = ShardSpec.from_config(cfg)
    schema = xor_schema(cfg.d_v)
    manifests = {}
    for k, p in enumerate(cfg.ps):
        # one independent stream per (seed, p index, split): adding a p never changes the others
        splits = {}
        for s_idx, (split, n) in enumerate((("train", cfg.n_train), ("val", cfg.n_val),
                                            ("test", cfg.n_test))):
            rng = np.random.default_rng([cfg.seed, k, s_idx])
            splits[split] = generate_xor(n, cfg.d_v, p, rng, split)
        name = p_dirname(p)
        manifests[name] = write_parquet_dataset(
            out_root / name, splits, schema, name=f"symile-xor-{name}",
            params_hash=params_hash(cfg), spec=spec,
            extra={"p": p, "d_v": cfg.d_v, "seed": cfg.seed})
    write_root_card(out_root, "Symile synthetic XOR (one config per p)")
    return manifests
