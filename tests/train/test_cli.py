"""CLI subcommands and DVC stage scripts on tiny XOR data, reading params.yaml sections."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from symile_data.cli import main as cli_main
from train_helpers import write_dataset

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"negatives": "n", "d": 8, "epochs": 2, "batch_size": 64, "grad_accum": 1, "lr": 0.1,
         "weight_decay": 0.01, "logit_scale_init": -0.3, "normalize": True, "seed": 0,
         "shuffle_buffer": 64, "num_workers": 0, "max_logits": 1 << 20,
         "ckpt_every_steps": 0, "val_every_epochs": 1, "log_every_steps": 1,
         "torch_threads": 1}
EVAL = {"split": "test", "batch_size": 64, "bootstrap_resamples": 10, "seed": 0,
        "checkpoint": "best"}


def _stage(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "pipelines" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def params(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"xor_train": {**TRAIN, "ps": [0.0, 1.0],
                                               "methods": ["symile", "clip"]},
                                 "xor_eval": EVAL}))
    return p


def test_train_and_evaluate_commands(xor_dir, tmp_path, params, capsys):
    run, out = tmp_path / "run", tmp_path / "eval"
    assert cli_main(["train", "--dataset-dir", str(xor_dir), "--model", "xor", "--loss",
                     "symile", "--out", str(run), "--params", str(params)]) == 0
    assert (run / "done.json").exists() and (run / "best.pt").exists()
    assert cli_main(["evaluate", "--run-dir", str(run), "--dataset-dir", str(xor_dir),
                     "--model", "xor", "--out", str(out), "--params", str(params)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_queries"] == 128 and m["n_resamples"] == 10 and m["loss"] == "symile"
    assert np.load(out / "per_query.npy").mean() == pytest.approx(m["accuracy"])
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"xor_train": {**TRAIN, "ps": [1.0], "methods": ["symile"],
                                                 "lr_typo": 1}}))
    capsys.readouterr()
    assert cli_main(["train", "--dataset-dir", str(xor_dir), "--model", "xor", "--loss",
                     "symile", "--out", str(run), "--params", str(bad)]) != 0
    assert "lr_typo" in capsys.readouterr().err


def test_xor_stages_end_to_end(tmp_path, params):
    from symile_data.xor import generate_xor
    data = tmp_path / "data"
    for k, p in enumerate((0.0, 1.0)):
        splits = {s: generate_xor(n, 3, p, np.random.default_rng([k, j]), s)
                  for j, (s, n) in enumerate((("train", 128), ("val", 64), ("test", 64)))}
        write_dataset(data / f"p{p:.1f}", splits, extra={"d_v": 3, "p": p})
    models = tmp_path / "models"
    for p in ("0.0", "1.0"):
        for method in ("symile", "clip"):
            assert _stage("xor_train").main(["--data", str(data), "--models", str(models),
                                             "--p", p, "--method", method,
                                             "--params", str(params)]) == 0
    assert sorted(x.name for x in models.iterdir()) == [
        "clip-p0.0", "clip-p1.0", "symile-p0.0", "symile-p1.0"]
    metrics = tmp_path / "reports" / "metrics.json"
    assert _stage("xor_eval").main(["--data", str(data), "--models", str(models), "--out",
                                    str(metrics), "--params", str(params)]) == 0
    report = json.loads(metrics.read_text())
    assert report["chance"] == 1 / 8 and len(report["runs"]) == 4
    assert (metrics.parent / "per_query" / "symile-p1.0.npy").exists()
    png = tmp_path / "xor.png"
    assert _stage("xor_plot").main(["--metrics", str(metrics), "--out", str(png)]) == 0
    first = png.read_bytes()
    assert first[:4] == b"\x89PNG"
    _stage("xor_plot").main(["--metrics", str(metrics), "--out", str(png)])
    assert png.read_bytes() == first                       # deterministic figure
    from symile_data.train.xor_experiment import table_markdown
    assert table_markdown(report).startswith("| p | symile | clip |")


def _hold_lock(folder: Path):
    """Another process holding the write lock of ``folder``, as a running train does."""
    import os
    import subprocess
    import sys
    code = ("import sys, time\nfrom symile_data.io.lock import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_second_writer_of_one_out_stops_naming_the_lock(xor_dir, tmp_path, params, capsys,
                                                        command):
    """Two trains (or evaluations) on one --out: the second stops at once with one line
    naming the folder, the lock and the holder; nothing of it lands in the folder (both used
    to exit 0 and leave one folder with both runs' metrics)."""
    run, out = tmp_path / "run", tmp_path / "out"
    if command == "evaluate":
        assert cli_main(["train", "--dataset-dir", str(xor_dir), "--model", "xor", "--loss",
                         "symile", "--out", str(run), "--params", str(params)]) == 0
    argv = {"train": ["train", "--dataset-dir", str(xor_dir), "--model", "xor", "--loss",
                      "clip", "--out", str(out), "--params", str(params)],
            "evaluate": ["evaluate", "--run-dir", str(run), "--dataset-dir", str(xor_dir),
                         "--model", "xor", "--out", str(out), "--params", str(params)]}[command]
    holder = _hold_lock(out)
    try:
        capsys.readouterr()
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(out) in err and ".symile-data.lock" in err, err
        assert f"pid {holder.pid}" in err
        assert sorted(p.name for p in out.iterdir()) == [".symile-data.lock"]
    finally:
        holder.kill()
        holder.wait()
    assert cli_main(argv) == 0                   # once the holder is gone, the run goes on
