"""Feature extraction across workers: the unique images and clips split into disjoint parts.

A feature table is cut into parts of ``items_per_part`` keys in key order (features.tables);
the cut does not depend on the number of workers, so worker w of W encodes the parts
p with p % W == w, each written atomically with its done-marker, and a merge step (the
single-process ``encode_m3``, which then finds every part done and skips it) writes the
manifests, the text table, report.json and index.json. The merged tables are byte-identical
to a single-process run (the same parts, the same batches in each part).

Two launchers:
- torchrun: ``torchrun --nproc_per_node 8 -m symile_data.cli features encode ...``; every
  rank encodes its parts on ``cuda:LOCAL_RANK`` (or the CPU), a gloo barrier, rank 0 merges.
- dask distributed: ``encode_m3_on_dask(..., scheduler="tcp://host:8786", workers=W)``
  submits W tasks (each asking for ``resources={"GPU": 1}`` when ``gpu``; start the workers
  with ``dask worker ... --resources GPU=1``), then merges in the calling process.
Every worker must see the same filesystem paths (inputs, models, the output root).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from symile_data import ranks
from symile_data.features.config import FeaturesConfig
from symile_data.features.m3 import (encode_m3, media_encoder, media_items, media_specs,
                                     sample_datasets)
from symile_data.features.tables import encode_items

log = logging.getLogger(__name__)


def encode_media_parts(cfg: FeaturesConfig, images: str | Path, clips: str | Path,
                       samples: str | Path | None, out: str | Path, worker: tuple[int, int]
                       ) -> dict:
    """Encode worker (w, W)'s parts of the used image and audio items; no manifests (the same
    item selection and encoder identity as ``encode_m3``, so its merge finds the parts done).
    ``samples=None`` encodes every item of the media tables (benchmarks; no merge then)."""
    out, reports = Path(out), {}
    datasets = sample_datasets(samples) if samples is not None else None
    for modality, path, key_col, model, rev, bs in media_specs(cfg, images, clips):
        keys, payloads, upstream, _, _, sel = media_items(cfg, modality, path, key_col, datasets)
        enc = media_encoder(cfg, modality, model, rev)
        reports[modality] = encode_items(
            enc, [keys[i] for i in sel], [payloads[i] for i in sel], [upstream[i] for i in sel],
            out / modality / enc.identity.encoder_id(), batch_size=bs,
            num_workers=cfg.num_workers, items_per_part=cfg.items_per_part,
            worker=worker, write_manifest=False)
        del enc
    log.info("worker %d/%d: %s", worker[0], worker[1], reports)
    return reports


def _rank_device(cfg: FeaturesConfig) -> FeaturesConfig:
    """Under torchrun on GPUs every rank takes its own device."""
    if cfg.device in ("auto", "cuda") and torch.cuda.is_available():
        return dataclasses.replace(cfg, device=f"cuda:{ranks.local_rank()}")
    return cfg


def encode_m3_parallel(cfg: FeaturesConfig, images, clips, samples, out) -> dict | None:
    """``encode_m3`` as one process, or split over the ranks of a torchrun job (rank 0
    merges and returns the report; other ranks return None)."""
    if ranks.env_world_size() <= 1:
        return encode_m3(cfg, images, clips, samples, out)
    started, _ = ranks.init_from_env("cpu", backend="gloo")   # barriers only
    try:
        encode_media_parts(_rank_device(cfg), images, clips, samples, out,
                           (ranks.rank(), ranks.world_size()))
        ranks.barrier()
        report = encode_m3(cfg, images, clips, samples, out) if ranks.is_main() else None
    except BaseException:
        if started:
            torch.distributed.destroy_process_group()
        raise
    ranks.shutdown(started)
    return report


def encode_m3_on_dask(cfg: FeaturesConfig, images, clips, samples, out, *, scheduler: str,
                      workers: int, gpu: bool = False) -> dict:
    """Media parts as ``workers`` tasks on a running dask scheduler, then the merge here."""
    from distributed import Client
    paths = [str(Path(p).resolve()) for p in (images, clips, samples, out)]
    with Client(scheduler, timeout="30s") as client:
        futures = [client.submit(encode_media_parts, cfg, *paths, (w, workers), pure=False,
                                 resources={"GPU": 1} if gpu else None, key=f"features-{w}")
                   for w in range(workers)]
        client.gather(futures)
    return encode_m3(cfg, images, clips, samples, out)
