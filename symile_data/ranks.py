"""Ranks of a torchrun job (or of any launcher setting RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT): join the process group, rank queries, barriers. A plain process is
rank 0 of 1 and every helper is a no-op. Used by training (train/dist.py adds the gather of
embeddings) and by feature extraction (features/parts.py).
"""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(minutes=60)    # collectives wait this long (slow rank, val, I/O)


def env_world_size() -> int:
    """WORLD_SIZE set by torchrun (1 when run as a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """RANK set by torchrun (0 when run as a plain process)."""
    return int(os.environ.get("RANK", "0"))


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device: str | None = None, backend: str | None = None
                  ) -> tuple[bool, str | None]:
    """Join the process group torchrun describes in the environment, if any.

    Returns (whether this call initialised the group, the device to use): under torchrun on
    CUDA every process takes ``cuda:LOCAL_RANK`` and NCCL; on CPU gloo. A plain process
    (WORLD_SIZE unset or 1) changes nothing. ``backend`` overrides the choice (feature
    extraction needs only barriers and uses gloo).
    """
    if env_world_size() <= 1 or is_initialized():
        return False, device
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank())
        device = f"cuda:{local_rank()}"
    dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"), timeout=TIMEOUT)
    return True, device


def shutdown(started: bool) -> None:
    """Leave the process group this process started (after a final barrier)."""
    if started and is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if is_initialized():
        dist.barrier()
