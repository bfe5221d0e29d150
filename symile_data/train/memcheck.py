"""Before training: the memory a run will need against what the machine has; one line if short.

Why: the reference MIMIC encoders (ResNet-50 on 320 x 320 CXRs, ResNet-18 on 5000 x 12 ECGs)
keep ~196 MiB of activations per row for the backward pass (fp32, measured), so the release
profile's batch of 280 needs ~54 GiB; on a 23 GB CPU-only machine the kernel killed the run
(exit -9, no message) in its first step. The data path is not the cause (streamed row groups;
measured 0.65 GiB anonymous memory for the import, one shuffle window per loader worker).

How (measured, not guessed): one forward of 2 and of 4 real training rows, in training mode
under the run's autocast, with ``saved_tensors_hooks`` summing the distinct storages autograd
keeps for the backward; half the difference is the per-row cost, the rest is fixed (weights
the backward needs). The RNG states and the buffers (BatchNorm running stats) are restored, so the
trained bytes do not change. Estimate (bytes):
  activations  1.25 x (fixed + per_row x batch_size)      (x1.25: the backward's gradients)
  parameters   16 x n_params                               (weights, grads, 2 AdamW moments)
  loss         16 x batch^M (O(N^2) negatives) or 16 x M x batch^2
  loader       (2 windows + 2 batches in flight) x row bytes, per worker (or the main process)
Activations, parameters and loss live on the device (CUDA: free device memory), the loader on
the host (MemAvailable, or the cgroup's limit when lower). ``SYMILE_MEMORY_CHECK=off`` skips it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from symile_data.errors import InputError

GiB = 2 ** 30


class NotEnoughMemory(InputError):
    """The run would not fit; the message says what it needs and what to change."""


def host_available() -> int | None:
    """Bytes the kernel can still give this process: MemAvailable, capped by a cgroup v2
    limit (containers); None when unknown."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            avail = min(avail or 1 << 62, int(limit) - used)
    except (OSError, ValueError):
        pass
    return avail


def device_available(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return host_available()


def saved_bytes(model, batch: dict[str, Any], device: torch.device) -> int:
    """Bytes autograd keeps for the backward of one forward of ``batch`` (distinct storages)."""
    from symile_data.train.loop import autocast, to_device
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        kept[s.data_ptr()] = s.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast(device):
        embs = [model.encode(m, to_device(batch, device)) for m in model.modalities]
    del embs
    return sum(kept.values())


def _rows(batch: dict[str, Any], n: int) -> dict[str, Any]:
    return {k: v[:n] for k, v in batch.items()}


def estimate(model, batch: dict[str, Any], cfg, window: int, rows: int,
             device: torch.device) -> dict[str, int]:
    """Bytes per part of the run (see the module docstring); ``batch`` holds >= 4 rows;
    ``window``: the reader's shuffle window (rows), ``rows``: rows of the training split."""
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):     # 2 rows: BatchNorm needs > 1 in training
        two, four = saved_bytes(model, _rows(batch, 2), device), \
            saved_bytes(model, _rows(batch, 4), device)
    with torch.no_grad():
        for k, v in model.named_buffers():
            v.copy_(buffers[k])
    per_row = max(0, (four - two) // 2)
    b, m = cfg.batch_size, len(model.modalities)
    row_bytes = sum(v[:4].numel() * v.element_size() for v in batch.values()
                    if isinstance(v, torch.Tensor)) // 4
    window = min(window, rows)
    workers = min(max(1, cfg.num_workers), -(-rows // max(1, window)))   # workers with a window
    return {"per_row": per_row,
            "activations": int(1.25 * (two - 2 * per_row + per_row * b)),
            "parameters": 16 * sum(p.numel() for p in model.parameters()),
            "loss": 16 * (b ** m if cfg.negatives == "n_squared" else m * b * b),
            "loader": workers * (2 * window + 2 * b) * row_bytes}


def check_memory(model, batch: dict[str, Any], cfg, window: int, rows: int,
                 device: torch.device, where: str) -> dict[str, int] | None:
    """Raise ``NotEnoughMemory`` (one line) when the run cannot fit; returns the estimate."""
    if os.environ.get("SYMILE_MEMORY_CHECK", "on") == "off" or \
            len(next(iter(batch.values()))) < 4:
        return None
    est = estimate(model, batch, cfg, window, rows, device)
    on_device = est["activations"] + est["parameters"] + est["loss"]
    host = est["loader"] + (0 if device.type == "cuda" else on_device)
    checks = [("host memory", host, host_available())]
    if device.type == "cuda":
        checks.insert(0, (f"{device} memory", on_device, device_available(device)))
    for what, need, have in checks:
        if have is not None and need > have:
            raise NotEnoughMemory(
                f"{where}: needs ~{need / GiB:.1f} GiB of {what}, {have / GiB:.1f} GiB available "
                f"(batch_size {cfg.batch_size} x {est['per_row'] / 2**20:.0f} MiB of activations "
                f"per row = {est['activations'] / GiB:.1f} GiB, parameters + AdamW "
                f"{est['parameters'] / GiB:.1f} GiB, loader {est['loader'] / GiB:.1f} GiB with "
                f"{max(1, cfg.num_workers)} worker(s)); lower batch_size / num_workers / "
                f"shuffle_buffer or the encoder sizes, use a GPU, or the profile's CPU settings "
                f"(docs/release.md); SYMILE_MEMORY_CHECK=off skips this check")
    return est
