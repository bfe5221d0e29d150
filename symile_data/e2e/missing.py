"""M3 missingness variants: the training dataset re-sampled with Bernoulli(p) missingness.

The M3 sampler draws the missingness flags LAST in each RNG block, so with the same seed and
sizes a variant has exactly the rows (keys, images, clips, texts) of the complete dataset and
differs only in ``image/text/audio_missing`` (train and val; test stays complete). Its rows
therefore join with the features already computed for the complete dataset: no re-encoding.

Layout (one root per p, so that each p is its own DVC output):
  {samples_out}/p{p}/symile-m3-{w}-{size}-miss{p}/   m3_samples Parquet dataset
  {shards_out}/p{p}/symile-m3-{w}-{size}-miss{p}/    m3_train shards (samples + features)
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from symile_data.e2e.config import M3MissingConfig
from symile_data.features.config import JoinConfig
from symile_data.features.join import join_m3
from symile_data.io.lock import folder_lock, remove_stale_tmp
from symile_data.m3.config import M3SamplesConfig
from symile_data.m3.samples import build_samples

log = logging.getLogger(__name__)


def p_dir(p: float) -> str:
    """0.5 -> "p0.5": the folder of one sweep point, spelled as DVC writes ``p${item.p}``
    (Python's str of the float from params.yaml: write ps as decimals, e.g. 1.0)."""
    return f"p{float(p)}"


def build_missing_variant(p: float, cfg: M3MissingConfig, samples_cfg: M3SamplesConfig,
                          join_cfg: JoinConfig, translations: str | Path, images: str | Path,
                          clips: str | Path, features: str | Path, samples_out: str | Path,
                          shards_out: str | Path) -> dict[str, Any]:
    """Sample and join the variant of sweep point ``p``; returns {name, samples, shards}."""
    if p not in cfg.ps:
        raise ValueError(f"p={p} is not in m3_missing.ps {list(cfg.ps)}")
    vcfg = dataclasses.replace(samples_cfg, ws=(cfg.w,), sizes=(cfg.size,), missing_p=float(p),
                               embed_media=False, wds_export=False)
    vcfg.validate()
    name = vcfg.dataset_name(cfg.w, cfg.size)
    s_root, t_root = Path(samples_out) / p_dir(p), Path(shards_out) / p_dir(p)
    with folder_lock(s_root), folder_lock(t_root):    # this sweep point's own folders
        for root in (s_root, t_root):
            remove_stale_tmp(root, recursive=True)
        samples = build_samples(s_root, vcfg, translations, images, clips)
        shards = join_m3(s_root / name, features, t_root, join_cfg)
    log.info("missingness p=%g: %s -> %s", p, s_root / name, t_root / name)
    return {"name": name, "p": p, "samples": samples["datasets"][name],
            "shards": shards["datasets"][0]}
