"""Params sections of the end-to-end stages (flat, typed, strict; see symile_data.config)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class M3MissingConfig:
    """Section ``m3_missing``: which M3 dataset the experiments train on and its missingness
    sweep. The training dataset is ``data/m3/shards/symile-m3-{w}-{size}`` (dvc.yaml reads w and
    size too); each p > 0 of ``ps`` gets a variant with the same rows and Bernoulli(p)
    missingness per modality on train / val (test complete), built from the ``m3_samples``
    settings and joined with the same features (``m3_shards`` settings)."""
    w: int = 2
    size: str = "demo"
    ps: tuple[float, ...] = (0.5, 0.75)

    def validate(self) -> None:
        if not self.ps:
            raise ValueError("ps: give at least one p (the DVC matrix cannot be empty)")
        bad = [p for p in self.ps if not 0.0 < p < 1.0]
        if bad:
            raise ValueError(f"ps: {bad} not in (0, 1) (p = 0 is the m3_train run itself)")
        if len(set(self.ps)) != len(self.ps):
            raise ValueError(f"ps: duplicate values in {list(self.ps)}")
        # dvc.yaml spells p as str(p) ("p${item.p}"), the M3 dataset name as f"{p:g}"
        odd = [p for p in self.ps if f"{p:g}" != str(float(p))]
        if odd:
            raise ValueError(f"ps: {odd} need at most 6 significant digits (paths use both "
                             f"str(p) and f'{{p:g}}')")


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Section ``report``: the heading of ``reports/results.md`` (names the data profile)."""
    title: str = "symile-data: end-to-end results (embedded offline demo)"
