"""Training across 2 gloo ranks spawned by the test (what torchrun does on CPU): the gathered
loss and gradients equal one process on the concatenated batch; a 2-rank run trains, only rank
0 writes, and a run stopped mid-epoch resumes to the uninterrupted run's bytes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from dist_workers import (LOSSES, Tiny, gathered_loss_worker, losses_and_grads, spawn,
                          tiny_batch, train_resume_worker)
from symile_data.train.config import XorTrainConfig

ROOT = Path(__file__).resolve().parents[2]
CFG = XorTrainConfig(d=8, epochs=1, batch_size=32, lr=0.1, shuffle_buffer=64,
                     log_every_steps=1, ckpt_every_steps=1)


def test_gathered_loss_and_grads_equal_single_process(tmp_path):
    batch, world = 4, 2
    out = tmp_path / "ranks.pt"
    spawn(gathered_loss_worker, world, batch, str(out))
    ranks = torch.load(out, weights_only=False)
    torch.manual_seed(0)
    model = Tiny().double()
    single = losses_and_grads(model, model, tiny_batch(world * batch), lambda e: e)
    for name in LOSSES:
        loss, grads = ranks[name]
        assert abs(loss - single[name][0]) <= 1e-6, name
        for k, g in single[name][1].items():
            assert torch.allclose(grads[k], g, rtol=0, atol=1e-6), (name, k)


def _same_run(a: Path, b: Path) -> None:
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    for f in ("last.pt", "best.pt", "done.json"):
        assert (a / f).read_bytes().replace(str(a).encode(), b"") == \
            (b / f).read_bytes().replace(str(b).encode(), b""), f


def test_two_ranks_dropout_model_train_resume_only_rank0_writes(tmp_path, tiny_text_model):
    """M3 model (dropout in the text tower) on 2 ranks: an uninterrupted run, and a run
    stopped mid-epoch then resumed, equal byte for byte; rank 1 fails on any write."""
    from test_resume_exact import m3_cfg
    from train_helpers import m3_table, write_dataset
    ds = write_dataset(tmp_path / "m3", {
        "train": m3_table(67, "train", missing_p=0.3, seed=1),      # 67 % 2: one row dropped
        "val": m3_table(16, "val", seed=2), "test": m3_table(8, "test", seed=3)},
        row_group_rows=16)
    cfg = m3_cfg(tiny_text_model, batch_size=8, epochs=1)
    # 33 rows per rank, batches of 8: 5 steps (the last of 1 row per rank); stop at step 3
    spawn(train_resume_worker, 2, str(ds), str(tmp_path), "m3", "symile", cfg, 3)
    done = json.loads((tmp_path / "ref" / "done.json").read_text())
    assert done["world_size"] == 2 and done["global_batch"] == 16 and done["steps"] == 5
    ck = torch.load(tmp_path / "ref" / "last.pt", weights_only=False)
    assert len(ck["rng_ranks"]) == 2                    # every rank's dropout RNG is restored
    assert not torch.equal(ck["rng_ranks"][0]["torch"], ck["rng_ranks"][1]["torch"])
    _same_run(tmp_path / "ref", tmp_path / "run")


def test_torchrun_cli_two_ranks(xor_dir, tmp_path):
    """The same `symile-data train` command, under torchrun --nproc_per_node 2 (gloo)."""
    params = tmp_path / "params.yaml"
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in CFG.__dict__.items()}
    params.write_text(yaml.safe_dump({"xor_train": {**cfg, "epochs": 1}}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SYMILE_DATA_PROGRESS": "off",
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "symile_data.cli", "train", "--dataset-dir", str(xor_dir), "--model",
           "xor", "--loss", "clip", "--out", str(tmp_path / "run"), "--params", str(params)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads((tmp_path / "run" / "done.json").read_text())
    assert done["world_size"] == 2 and done["global_batch"] == 64 and done["steps"] == 4
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 + 1                          # one writer: no duplicated lines
