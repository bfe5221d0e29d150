"""Issue 22: a run that cannot fit the memory stops before its first step with one line saying
what it needs (the release profile's MIMIC run was killed by the kernel at 22 GB, exit -9, no
message: ResNet-50 at 320 x 320 keeps ~196 MiB of activations per row, x batch 280); the check
measures, and changes no trained byte."""
import pytest
import torch

from train_helpers import mimic_table, write_dataset
from symile_data.errors import InputError
from symile_data.train import memcheck
from symile_data.train.config import MimicTrainConfig
from symile_data.train.loop import train

CFG = MimicTrainConfig(d=8, epochs=2, batch_size=16, lr=1e-3, logit_scale_init=-2.0,
                       normalize=False, negatives="n_squared", cnn_width=4, cxr_pool=2,
                       ecg_pool=2, cxr_encoder="resnet18", log_every_steps=1)


@pytest.fixture
def mimic_dir(tmp_path):
    return write_dataset(tmp_path / "mimic", {s: mimic_table(n, s, k) for k, (s, n) in
                                              enumerate((("train", 48), ("val", 16)))},
                         row_group_rows=8)


def test_run_that_cannot_fit_stops_first_with_one_line(mimic_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(memcheck, "host_available", lambda: 4 << 20)      # a 4 MiB machine
    with pytest.raises(InputError) as e:
        train(mimic_dir, tmp_path / "run", "mimic", "symile", CFG)
    msg = str(e.value)
    assert "\n" not in msg and "needs ~" in msg and "batch_size 16" in msg
    assert "MiB of activations per row" in msg and "SYMILE_MEMORY_CHECK=off" in msg
    assert not (tmp_path / "run/last.pt").exists() and not (tmp_path / "run/best.pt").exists()

def test_estimate_is_measured_and_grows_with_the_batch(mimic_dir):
    from symile_data.io.reader import ParquetIterable, split_files
    from symile_data.train.factory import build_model
    model, _ = build_model("mimic", CFG, mimic_dir)
    batch = next(iter(ParquetIterable(split_files(mimic_dir, "train"), columns=model.columns,
                                      batch_size=4)))
    dev = torch.device("cpu")
    small = memcheck.estimate(model, batch, CFG, 16, 48, dev)
    big = memcheck.estimate(model, batch, CFG.__class__(**{**CFG.__dict__, "batch_size": 32}),
                            32, 48, dev)
    assert small["per_row"] > 0 and small["per_row"] == big["per_row"]
    assert big["activations"] - small["activations"] == pytest.approx(
        1.25 * 16 * small["per_row"], abs=2)


def test_check_changes_no_trained_byte(mimic_dir, tmp_path, monkeypatch):
    train(mimic_dir, tmp_path / "on", "mimic", "symile", CFG)
    monkeypatch.setenv("SYMILE_MEMORY_CHECK", "off")
    train(mimic_dir, tmp_path / "off", "mimic", "symile", CFG)
    for name in ("best.pt", "metrics.jsonl"):
        assert (tmp_path / "on" / name).read_bytes() == (tmp_path / "off" / name).read_bytes()
