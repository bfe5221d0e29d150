"""torch.distributed helpers: process group from torchrun's environment, rank queries, and
embeddings gathered over the global batch WITH gradients (open_clip's ``gather_features``).

The same code runs as one plain process (world size 1: every helper is the identity) and under
``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` / ``MASTER_PORT`` in the
environment): NCCL when the device is CUDA, gloo on CPU.

Gradients through the gather: every rank computes the loss L of the whole global batch (the
same value on every rank). The backward of ``gather`` sums the gradient of L with respect to
the gathered tensor over the ranks (all_reduce) and keeps this rank's slice, so rank r holds
R * dL/d(its rows); DistributedDataParallel then AVERAGES parameter gradients over the R
ranks, which gives exactly dL/dtheta of one process on the concatenated R x B rows (and for
parameters used outside the encoders, such as ``logit_scale``, R copies of dL/ds averaged).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from symile_data.ranks import (  # noqa: F401 - re-exported: the training loop's one import
    barrier, env_rank, env_world_size, init_from_env, is_initialized, is_main, local_rank,
    rank, shutdown, world_size)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0; backward: all_reduce(sum) of the gathered gradient, own slice."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather(x: Tensor) -> Tensor:
    """(B, ...) on each rank -> (R * B, ...) in rank order, gradients flowing back to the local
    rows (see the module doc). Identity when not distributed. Every rank must pass the same B."""
    if world_size() == 1:
        return x
    if torch.is_grad_enabled() and x.requires_grad:
        return _GatherWithGrad.apply(x)
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, 0)


def gather_features(embeddings: list[Tensor]) -> list[Tensor]:
    """Each modality's (B, d) embeddings -> the global batch's (R * B, d)."""
    return [gather(e) for e in embeddings]


def all_gather_object(obj: Any) -> list[Any]:
    """One picklable object per rank, in rank order (e.g. every rank's RNG states)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's object on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
