"""Issue 13 item 3: a run stopped mid-epoch, with dropout in the model, resumes to the
uninterrupted run's final checkpoint byte for byte (single process; 2 ranks: test_dist.py)."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from train_helpers import m3_table, write_dataset
from symile_data.train.config import M3TrainConfig
from symile_data.train.loop import train


class Stop(Exception):
    pass


@pytest.fixture
def m3_dir(tmp_path):
    return write_dataset(tmp_path / "m3", {
        "train": m3_table(96, "train", missing_p=0.3, seed=1),
        "val": m3_table(16, "val", missing_p=0.3, seed=2), "test": m3_table(16, "test", seed=3)},
        row_group_rows=16)


def m3_cfg(text_model, **kw):
    base = dict(text_model=str(text_model), d=8, d_indicator=2, epochs=2, batch_size=16,
                lr=1e-2, weight_decay=0.0, logit_scale_init=-1.0, normalize=False,
                shuffle_buffer=32, ckpt_every_steps=2, log_every_steps=1)
    return M3TrainConfig(**{**base, **kw})


def _same_run(a, b):
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    for f in ("last.pt", "best.pt", "done.json"):
        assert (a / f).read_bytes().replace(str(a).encode(), b"") == \
            (b / f).read_bytes().replace(str(b).encode(), b""), f


def test_dropout_model_resumes_mid_epoch_byte_identical(m3_dir, tmp_path, tiny_text_model):
    cfg = m3_cfg(tiny_text_model)
    from symile_data.train.factory import build_model
    model, _ = build_model("m3", cfg, m3_dir)
    assert any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
    ref = tmp_path / "ref"
    train(m3_dir, ref, "m3", "symile", cfg)

    def stop(step):
        if step == 3:                          # epoch 0 has 6 steps; checkpoint at step 2
            raise Stop

    run = tmp_path / "run"
    with pytest.raises(Stop):
        train(m3_dir, run, "m3", "symile", cfg, on_step=stop)
    assert torch.load(run / "last.pt", weights_only=False)["state"]["micro"] == 2
    train(m3_dir, run, "m3", "symile", cfg)
    _same_run(ref, run)


def test_sigkill_mid_epoch_then_resume(m3_dir, tmp_path, tiny_text_model):
    """A real SIGKILL in a subprocess right after the step-4 checkpoint (mid epoch 0)."""
    cfg = m3_cfg(tiny_text_model, epochs=1)
    ref = tmp_path / "ref"
    train(m3_dir, ref, "m3", "clip", cfg)
    run = tmp_path / "run"
    code = textwrap.dedent(f"""
        import os, signal, torch
        torch.set_num_threads(1)
        from symile_data.train.config import M3TrainConfig
        from symile_data.train.loop import train
        cfg = M3TrainConfig(**{cfg.__dict__!r})
        def die(step):
            if step == 5:                      # last checkpoint at step 4
                os.kill(os.getpid(), signal.SIGKILL)
        train({str(m3_dir)!r}, {str(run)!r}, "m3", "clip", cfg, on_step=die)
        """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SYMILE_DATA_PROGRESS": "off"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "done.json").exists()
    assert torch.load(run / "last.pt", weights_only=False)["state"]["step"] == 4
    train(m3_dir, run, "m3", "clip", cfg)
    _same_run(ref, run)
