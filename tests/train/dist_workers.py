"""Run a function in R gloo processes spawned from a test (the environment torchrun sets)."""
from __future__ import annotations

import os
import socket

import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn, world: int, port: int, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), OMP_NUM_THREADS="1",
                      SYMILE_DATA_PROGRESS="off")
    torch.set_num_threads(1)
    fn(rank, world, *args)


def spawn(fn, world: int, *args) -> None:
    """fn(rank, world, *args) in ``world`` fresh processes; re-raises a rank's error."""
    torch.multiprocessing.start_processes(_entry, args=(fn, world, free_port(), args),
                                          nprocs=world, join=True, start_method="spawn")


class Tiny(torch.nn.Module):
    """Three Linear encoders, one per modality, and a learned logit scale."""

    def __init__(self, d_in: int = 5, d: int = 6):
        super().__init__()
        self.enc = torch.nn.ModuleList(torch.nn.Linear(d_in, d) for _ in range(3))
        self.logit_scale = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x):                       # x: (B, 3, d_in) -> 3 x (B, d)
        return [e(x[:, m]) for m, e in enumerate(self.enc)]


def tiny_batch(rows: int) -> torch.Tensor:
    return torch.randn(rows, 3, 5, generator=torch.Generator().manual_seed(1),
                       dtype=torch.float64)


LOSSES = ("symile_n", "symile_n2", "clip")


def losses_and_grads(model, net, x, gather) -> dict:
    """{loss name: (loss, {param: grad})} with embeddings of ``net(x)`` passed to ``gather``."""
    from symile_data.train.loss import clip_loss, symile_loss
    fns = {"symile_n": lambda e, s, g: symile_loss(e, s, "n", g),
           "symile_n2": lambda e, s, g: symile_loss(e, s, "n_squared", g),
           "clip": lambda e, s, g: clip_loss(e, s)}
    out = {}
    for name in LOSSES:
        model.zero_grad(set_to_none=True)
        gen = torch.Generator().manual_seed(7)  # the same O(N) permutations on every rank
        loss = fns[name](gather(net(x)), model.logit_scale, gen)
        loss.backward()
        out[name] = (float(loss.detach()), {k: p.grad.clone() for k, p in model.named_parameters()})
    return out


def gathered_loss_worker(rank: int, world: int, batch: int, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel
    from symile_data.train import dist
    started, _ = dist.init_from_env("cpu")
    torch.manual_seed(0)
    model = Tiny().double()
    net = DistributedDataParallel(model)
    x = tiny_batch(world * batch)[rank * batch:(rank + 1) * batch]
    res = losses_and_grads(model, net, x, dist.gather_features)
    if rank == 0:
        torch.save(res, out)
    dist.shutdown(started)


class Stop(Exception):
    pass


def _forbid_writes() -> None:
    """Make every write of the training loop fail on this rank."""
    import builtins
    from symile_data.train import loop

    def refuse(*a, **k):
        raise AssertionError("a rank other than 0 wrote a training output")

    def guarded_open(f, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            refuse()
        return builtins.open(f, mode, *a, **k)

    loop._save, loop.atomic_write_json, loop.open = refuse, refuse, guarded_open


def train_resume_worker(rank: int, world: int, dataset: str, root: str, kind: str,
                        loss: str, cfg, stop_at: int) -> None:
    """Uninterrupted run ``root/ref``; run ``root/run`` stopped at step ``stop_at`` on every
    rank, then resumed. Ranks other than 0 may write nothing."""
    from symile_data.train import dist
    from symile_data.train.loop import train
    started, _ = dist.init_from_env("cpu")
    if rank:
        _forbid_writes()
    train(dataset, f"{root}/ref", kind, loss, cfg)

    def stop(step):
        if step == stop_at:
            raise Stop

    try:
        train(dataset, f"{root}/run", kind, loss, cfg, on_step=stop)
        raise AssertionError("the run was not stopped")
    except Stop:
        pass
    train(dataset, f"{root}/run", kind, loss, cfg)
    dist.shutdown(started)
