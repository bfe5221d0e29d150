"""Training loop on tiny XOR shards: metrics, best checkpoint, done marker, exact resume."""
import json

import pytest
import torch

from symile_data.train.config import XorTrainConfig
from symile_data.train.loop import train

CFG = XorTrainConfig(d=8, epochs=4, batch_size=64, lr=0.1, shuffle_buffer=128,
                     log_every_steps=2, ckpt_every_steps=3)


def _weights(run):
    return torch.load(run / "last.pt", weights_only=False)["model"]


def test_train_writes_outputs_and_skips_when_done(xor_dir, tmp_path):
    run = tmp_path / "run"
    done = train(xor_dir, run, "xor", "symile", CFG)
    assert done["steps"] == 4 * 4 and done["epochs"] == 4
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(x["kind"] == "val" for x in lines) == 4
    assert all(torch.isfinite(torch.tensor(x["loss"])) for x in lines)
    best = torch.load(run / "best.pt", weights_only=False)
    assert best["val_loss"] == done["best_val_loss"] == min(
        x["loss"] for x in lines if x["kind"] == "val")
    mtime = (run / "done.json").stat().st_mtime_ns
    train(xor_dir, run, "xor", "symile", CFG)                 # finished: skipped
    assert (run / "done.json").stat().st_mtime_ns == mtime


def test_same_seed_same_bytes(xor_dir, tmp_path):
    train(xor_dir, tmp_path / "a", "xor", "clip", CFG)
    train(xor_dir, tmp_path / "b", "xor", "clip", CFG)
    for f in ("metrics.jsonl", "done.json"):
        assert (tmp_path / "a" / f).read_bytes().replace(b"/a", b"") == \
            (tmp_path / "b" / f).read_bytes().replace(b"/b", b"")
    for k, v in _weights(tmp_path / "a").items():
        assert torch.equal(v, _weights(tmp_path / "b")[k])
    for f in ("best.pt", "last.pt"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


class Killed(Exception):
    pass


@pytest.mark.parametrize("kill_at", [5, 8])     # mid-epoch (after the step-3 ckpt), epoch end
def test_killed_run_resumes_exactly(xor_dir, tmp_path, kill_at):
    cfg = XorTrainConfig(**{**CFG.__dict__, "grad_accum": 2, "ckpt_every_steps": 1,
                            "log_every_steps": 1})
    ref = tmp_path / "ref"
    train(xor_dir, ref, "xor", "symile", cfg)

    def boom(step):
        if step == kill_at:
            raise Killed

    run = tmp_path / "run"
    with pytest.raises(Killed):
        train(xor_dir, run, "xor", "symile", cfg, on_step=boom)
    assert not (run / "done.json").exists()
    train(xor_dir, run, "xor", "symile", cfg)
    assert (run / "metrics.jsonl").read_text() == (ref / "metrics.jsonl").read_text()
    for k, v in _weights(ref).items():
        assert torch.equal(v, _weights(run)[k]), k


def _killed_after_step3_ckpt(data, run, cfg):
    def boom(step):
        if step == 4:                                         # after the step-3 checkpoint
            raise Killed

    with pytest.raises(Killed):
        train(data, run, "xor", "symile", cfg, on_step=boom)
    assert (run / "last.pt").exists()


def _same_run(a, b):
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    for k, v in _weights(a).items():
        assert torch.equal(v, _weights(b)[k]), k


def test_checkpoint_of_other_params_is_not_resumed(xor_dir, tmp_path, caplog):
    """Issue 21: a run dir of other params is started over (logged), not resumed / refused."""
    run = tmp_path / "run"
    _killed_after_step3_ckpt(xor_dir, run, CFG)
    other = XorTrainConfig(**{**CFG.__dict__, "lr": 0.5})
    train(xor_dir, tmp_path / "clean", "xor", "symile", other)
    with caplog.at_level("WARNING"):
        train(xor_dir, run, "xor", "symile", other)
    assert "training run not reused (params.run_hash changed)" in caplog.text
    _same_run(run, tmp_path / "clean")


def test_checkpoint_of_another_dataset_is_not_resumed(xor_dir, tmp_path, caplog):
    """Issue 21: another dataset with the same name and params hash (two releases imported
    with the same settings) is not resumed from, nor its done.json trusted."""
    import numpy as np
    from symile_data.xor import generate_xor
    from train_helpers import write_dataset
    splits = {s: generate_xor(n, 3, 1.0, np.random.default_rng(10 + k), s)
              for k, (s, n) in enumerate((("train", 256), ("val", 64), ("test", 128)))}
    other = write_dataset(tmp_path / "other" / "xor", splits, extra={"d_v": 3, "p": 1.0})
    run = tmp_path / "run"
    _killed_after_step3_ckpt(xor_dir, run, CFG)
    train(other, tmp_path / "clean", "xor", "symile", CFG)
    with caplog.at_level("WARNING"):
        train(other, run, "xor", "symile", CFG)
    assert "training run not reused (inputs.dataset changed)" in caplog.text
    _same_run(run, tmp_path / "clean")
    train(xor_dir, run, "xor", "symile", CFG)                  # done.json of `other`: redone
    train(xor_dir, tmp_path / "clean2", "xor", "symile", CFG)
    _same_run(run, tmp_path / "clean2")


def test_bad_loss_and_config(xor_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown loss"):
        train(xor_dir, tmp_path / "r", "xor", "triplet", CFG)
    from symile_data.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match="batch_size"):
        from_dict(XorTrainConfig, {"batch_size": 1}, "params.yaml:xor_train")
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(XorTrainConfig, {"learning_rate": 1.0}, "params.yaml:xor_train")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (bf16 autocast path)")
def test_cuda_bf16_autocast_path(xor_dir, tmp_path):
    from symile_data.train.config import EvalConfig
    from symile_data.train.evaluate import evaluate_run
    cfg = XorTrainConfig(**{**CFG.__dict__, "negatives": "n_squared", "epochs": 1})
    done = train(xor_dir, tmp_path / "run", "xor", "symile", cfg, device="cuda")
    assert torch.isfinite(torch.tensor(done["best_val_loss"]))
    metrics, _ = evaluate_run(tmp_path / "run", xor_dir, EvalConfig(), device="cuda")
    assert 0.0 <= metrics["accuracy"] <= 1.0
