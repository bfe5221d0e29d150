"""Training loop: AdamW, bf16 autocast on CUDA (fp32 on CPU), gradient accumulation, exact
resume, best checkpoint by validation loss, JSON-lines metrics.

Outputs in ``out_dir``:
  last.pt        model, optimiser, step / epoch / micro-batch position, every RNG state, the
                 loss generator and the byte length of metrics.jsonl at that point
  best.pt        model weights of the epoch with the lowest validation loss (+ spec, epoch)
  metrics.jsonl  {"kind": "train"|"val", "epoch", "step", "loss", "logit_scale", ...}
  done.json      written last: params hash, best epoch / val loss, steps (the done marker)
  timing.json    NOT here: wall-clock s + device go to logs/<out_dir>/ (symile_data.runlog)
A killed run restarts from last.pt: the reader is seeded per (seed, epoch), so skipping the
micro-batches already consumed in the epoch reproduces the uninterrupted run exactly. The data
loaders draw their seeds from their own generators, never from the global torch generator,
so restoring the global RNG state (dropout and other model randomness) stays exact mid-epoch.

Under torchrun (see dist.py and docs/distributed.md) the model is wrapped in
DistributedDataParallel, every rank reads an equal share of each epoch, the embeddings are
gathered over the global batch (R x batch_size rows) before the loss, validation is
distributed the same way, every rank's RNG states go into last.pt, and only rank 0 writes.
"""
from __future__ import annotations

import io
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from symile_data.config import params_hash, to_dict
from symile_data.io import fingerprint
from symile_data.io.fingerprint import reuse_or_reset
from symile_data.io.atomic import atomic_write_bytes, atomic_write_json, read_json
from symile_data.io.manifest import read_manifest
from symile_data.io.openfile import torch_load
from symile_data.io.reader import ParquetIterable, split_files
from symile_data.kernels import apply_threads
from symile_data.progress import progress
from symile_data.runlog import write_run_log
from symile_data.train import dist
from symile_data.train.config import LOSSES, TrainConfig
from symile_data.train.factory import build_model
from symile_data.train.loss import loss_fn
from symile_data.train.memcheck import check_memory

log = logging.getLogger(__name__)


def pick_device(device: str | None = None) -> torch.device:
    apply_threads()  # torch compute starts here: the pinned thread count (symile_data.kernels)
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 autocast on CUDA, plain fp32 elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
            for k, v in batch.items()}


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, payload: dict) -> None:
    # via memory: torch.save names the zip records after the file, and the temporary file name
    # carries the pid, so saving to it directly would make the bytes differ run to run
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


RUN_FILES = ("last.pt", "best.pt", "done.json", "metrics.jsonl")  # what a run writes in out


def run_hash(kind: str, loss: str, cfg: TrainConfig, dataset_dir: Path,
             world_size: int = 1) -> str:
    data = read_manifest(dataset_dir)
    # experiment-level keys (the XOR matrix) do not change a run
    knobs = {k: v for k, v in to_dict(cfg).items()
             if k not in ("ps", "methods", "torch_threads", "num_workers")}
    if world_size > 1:        # R ranks: a global batch of R x batch_size rows, another run
        knobs["world_size"] = world_size
    return params_hash(knobs, {"model": kind, "loss": loss,
                             "dataset": data.get("params_hash"), "name": data.get("name")})


def _rows(batch: dict) -> int:
    return len(next(iter(batch.values())))


@torch.no_grad()
def validation_loss(model, loader, compute, device, seed: int) -> float:
    """Mean loss over the val split; O(N) negatives from a fixed generator (comparable).
    Distributed: each rank encodes its share, the loss sees the gathered global batch."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    total, rows = 0.0, 0
    for batch in loader:
        n = _rows(batch) * dist.world_size()                 # the same on every rank
        if n < 2:
            continue
        with autocast(device):
            embs = dist.gather_features(model(to_device(batch, device)))
            loss = compute(embs, model.logit_scale, gen)
        total += float(loss) * n
        rows += n
    model.train()
    if rows == 0:
        raise ValueError("validation split has no batch of >= 2 rows")
    return total / rows


def _memory_check(model, cfg: TrainConfig, dataset_dir: Path, dev: torch.device,
                  out_dir: Path) -> None:
    """Stop with one line when the run would not fit the memory (``train/memcheck.py``)."""
    ds = ParquetIterable(split_files(dataset_dir, "train"), columns=model.columns,
                         batch_size=4, rank=0, world=1)
    probe = next(iter(ds), None)
    if probe is None:
        return
    window = cfg.batch_size * max(1, -(-cfg.shuffle_buffer // cfg.batch_size))  # reader's
    est = check_memory(model, probe, cfg, window, ds.num_rows // dist.world_size(), dev,
                       str(out_dir))
    if est:
        log.info("%s: memory estimate (bytes) %s", out_dir, est)


def train(dataset_dir: str | Path, out_dir: str | Path, kind: str, loss: str,
          cfg: TrainConfig, device: str | None = None,
          on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train ``kind`` with ``loss`` on ``dataset_dir``; resumable; returns done.json's dict.

    Under torchrun (WORLD_SIZE > 1 in the environment) this joins the process group (NCCL on
    CUDA, gloo on CPU) unless the caller already has, and leaves it at the end."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    started, device = dist.init_from_env(device)
    try:
        done = _train(Path(dataset_dir), Path(out_dir), kind, loss, cfg, device, on_step)
    except BaseException:
        if started:                # no final barrier: the other ranks may be gone already
            torch.distributed.destroy_process_group()
        raise
    dist.shutdown(started)
    return done


def _train(dataset_dir: Path, out_dir: Path, kind: str, loss: str, cfg: TrainConfig,
           device: str | None, on_step: Callable[[int], None] | None) -> dict[str, Any]:
    rank, world, main = dist.rank(), dist.world_size(), dist.is_main()
    h = run_hash(kind, loss, cfg, dataset_dir, world)
    done_path, last_path = out_dir / "done.json", out_dir / "last.pt"
    # the run hash names the dataset by its manifest's name + params hash, which two imports
    # of different releases share: the fingerprint adds the shards' content, and a run dir of
    # another dataset / params / method is emptied (logged), never resumed or trusted
    fp = fingerprint.make("train-run", params={"run_hash": h},
                          inputs={"dataset": fingerprint.dataset_identity(dataset_dir)})
    if main:
        reuse_or_reset(out_dir, fp, "training run", only=RUN_FILES)
    dist.barrier()
    if done_path.exists() and read_json(done_path).get("params_hash") == h:
        log.info("%s: already trained with these params, skipping", out_dir)
        return read_json(done_path)
    dev = pick_device(device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model, spec = build_model(kind, cfg, dataset_dir)       # the same weights on every rank
    model.to(dev).train()
    _memory_check(model, cfg, dataset_dir, dev, out_dir)    # before any step: fits, or one line
    # the global generators again, AFTER the build: a first from_pretrained may draw from
    # python's generator while importing (so a fresh process and a warm one would differ);
    # seeded by (seed, rank) so every rank has its own dropout masks
    run_seed = int(np.random.SeedSequence([cfg.seed, rank]).generate_state(1)[0])
    torch.manual_seed(run_seed)
    np.random.seed(run_seed)
    random.seed(run_seed)
    net = model
    if world > 1:
        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda"
                                      else None)
    # fused: one kernel with IEEE sqrt on every CPU; the default per-op step takes the square
    # root through MKL VML, whose float32 result differed between this CPU and emulated ones
    # (bench/cross_cpu.py), so checkpoints were not the same bytes everywhere
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=True)
    # O(N) negative permutations over the global batch: the same seed, so the same draws, on
    # every rank (each rank computes the loss of the whole gathered batch)
    gen = torch.Generator().manual_seed(cfg.seed)
    compute = loss_fn(loss, cfg.negatives, normalize=False, max_logits=cfg.max_logits)
    st = {"epoch": 0, "micro": 0, "step": 0, "best_val": math.inf, "best_epoch": -1,
          "metrics_bytes": 0, "running": 0.0, "seen": 0}     # running/seen: loss since last log
    metrics_path = out_dir / "metrics.jsonl"
    if last_path.exists():
        ck = torch_load(last_path, map_location=dev, weights_only=False)
        if ck["params_hash"] != h:             # the fingerprint said same run: a foreign file
            raise ValueError(f"{last_path}: checkpoint of other params ({ck['params_hash']} != "
                             f"{h}); remove {out_dir} to start over")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["loss_generator"])
        _set_rng_state(ck.get("rng_ranks", [ck["rng"]])[rank])
        st = ck["state"]
        log.info("%s: resuming at epoch %d, step %d", out_dir, st["epoch"], st["step"])
    if main:
        with open(metrics_path, "a+b") as f:                 # drop lines after the checkpoint
            f.truncate(st["metrics_bytes"])

    def loader_of(ds: ParquetIterable, salt: int) -> DataLoader:
        # its own generator: creating the iterator must not draw from the global torch RNG,
        # or a resumed run's dropout masks would shift (the loader is built after the restore)
        return DataLoader(ds, batch_size=None, num_workers=cfg.num_workers,
                          persistent_workers=False,
                          generator=torch.Generator().manual_seed(cfg.seed + salt))

    train_ds = ParquetIterable(split_files(dataset_dir, "train"), columns=model.columns,
                               batch_size=cfg.batch_size, shuffle_buffer=cfg.shuffle_buffer,
                               seed=cfg.seed)
    val_loader = loader_of(ParquetIterable(split_files(dataset_dir, "val"),
                                           columns=model.columns, batch_size=cfg.batch_size), 2)
    per_epoch = len(train_ds)                               # the same on every rank

    def log_line(obj: dict) -> None:
        if main:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(obj, sort_keys=True) + "\n")

    def checkpoint() -> None:
        rngs = dist.all_gather_object(_rng_state())         # collective: every rank's states
        if not main:
            return
        st["metrics_bytes"] = metrics_path.stat().st_size
        payload = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                   "loss_generator": gen.get_state(), "rng": rngs[0], "state": dict(st),
                   "params_hash": h, "spec": spec, "loss": loss}
        if world > 1:
            payload["rng_ranks"] = rngs
        _save(last_path, payload)

    t0 = time.perf_counter()
    while st["epoch"] < cfg.epochs:
        epoch = st["epoch"]
        train_ds.set_epoch(epoch)
        loader = loader_of(train_ds, 1)
        opt.zero_grad(set_to_none=True)
        batches = progress(loader, f"{out_dir.name} epoch {epoch}", total=per_epoch,
                           unit="batch") if main else loader
        for micro, batch in enumerate(batches):
            if micro < st["micro"]:
                continue                                     # consumed before the restart
            if _rows(batch) * world >= 2:                   # the global batch
                with autocast(dev):
                    embs = dist.gather_features(net(to_device(batch, dev)))
                    value = compute(embs, model.logit_scale, gen)
                (value / cfg.grad_accum).backward()
                st["running"] += float(value.detach())
                st["seen"] += 1
            st["micro"] = micro + 1
            if st["micro"] % cfg.grad_accum and st["micro"] < per_epoch:
                continue
            opt.step()
            opt.zero_grad(set_to_none=True)
            st["step"] += 1
            if st["step"] % cfg.log_every_steps == 0 and st["seen"]:
                log_line({"kind": "train", "epoch": epoch, "step": st["step"],
                          "loss": st["running"] / st["seen"],
                          "logit_scale": float(model.logit_scale.detach())})
                st["running"], st["seen"] = 0.0, 0
            if on_step is not None:
                on_step(st["step"])
            if cfg.ckpt_every_steps and st["step"] % cfg.ckpt_every_steps == 0:
                checkpoint()
        st["epoch"], st["micro"] = epoch + 1, 0
        if (epoch + 1) % cfg.val_every_epochs == 0 or epoch + 1 == cfg.epochs:
            val = validation_loss(model, val_loader, compute, dev, cfg.seed + 1)
            log_line({"kind": "val", "epoch": epoch, "step": st["step"], "loss": val,
                      "logit_scale": float(model.logit_scale.detach())})
            if val < st["best_val"]:                         # the same val on every rank
                st["best_val"], st["best_epoch"] = val, epoch
                if main:
                        _save(out_dir / "best.pt", {"model": model.state_dict(), "spec": spec,
                                                "epoch": epoch, "val_loss": val, "loss": loss,
                                                "params_hash": h})
        checkpoint()
    done = {"params_hash": h, "model": kind, "loss": loss, "config": to_dict(cfg),
            "spec": spec, "steps": st["step"], "epochs": st["epoch"],
            "best_epoch": st["best_epoch"], "best_val_loss": st["best_val"],
            "dataset_dir": str(dataset_dir), "world_size": world,
            "global_batch": cfg.batch_size * world}
    if not main:
        return done                                          # rank 0 alone writes
    write_run_log(out_dir, {"wall_s": time.perf_counter() - t0, "device": str(dev)})
    atomic_write_json(done_path, done)
    return done
