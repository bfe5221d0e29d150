"""The media stages and feature extraction on a real running dask cluster: a `dask scheduler`
and two `dask worker` processes on loopback (random free ports), driven through the
``tcp://`` scheduler option; outputs equal the in-process runs. Workers share this machine's
filesystem, which is what a real cluster must provide (docs/distributed.md)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from symile_data.m3.build import CLIPS_TABLE, IMAGES_TABLE
from symile_data.m3.cli import run_stage      # what pipelines/m3_{images,clips}.py call

REPO = Path(__file__).resolve().parents[2]

START_TIMEOUT_S = 90


@contextlib.contextmanager
def dask_cluster(workdir: Path, n_workers: int = 2):
    """Yield the scheduler address of a fresh loopback cluster; always torn down."""
    from distributed import Client
    sched_file = workdir / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SYMILE_DATA_PROGRESS": "off",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    common = dict(cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    py = [sys.executable, "-m"]
    procs = [subprocess.Popen(py + ["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                    "--port", "0", "--no-dashboard", "--scheduler-file",
                                    str(sched_file)], **common)]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not sched_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError("dask scheduler did not start")
            time.sleep(0.2)
        for i in range(n_workers):
            procs.append(subprocess.Popen(
                py + ["distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
                      "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                      "--no-dashboard", "--name", f"w{i}", "--resources", "GPU=1",
                      "--death-timeout", "60"], **common))
        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT_S)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def _table(path: Path):
    return pq.read_table(path)


def test_media_stages_and_features_on_a_running_cluster(built, tmp_path):
    from symile_data.features.config import FeaturesConfig
    from symile_data.features.m3 import encode_m3
    from symile_data.features.parts import encode_m3_on_dask
    from symile_data.features.tiny_models import write_tiny_models
    p = ["--params", str(built["params"]), "--translations", str(built["translations"])]
    models = write_tiny_models(tmp_path / "models", seed=0)
    cfg = FeaturesConfig(image_model=models["image"], image_revision=None,
                         audio_model=models["audio"], audio_revision=None,
                         text_model=models["text"], text_revision=None, batch_size_image=8,
                         batch_size_audio=4, items_per_part=8, device="cpu")
    with dask_cluster(tmp_path) as address:
        assert address.startswith("tcp://127.0.0.1:")
        assert run_stage("images", p + ["--out", str(tmp_path / "images"),
                                        "--scheduler", address]) == 0
        assert run_stage("clips", p + ["--out", str(tmp_path / "clips"),
                                       "--scheduler", address]) == 0
        media = (tmp_path / "images" / IMAGES_TABLE, tmp_path / "clips" / CLIPS_TABLE)
        encode_m3_on_dask(cfg, *media, built["samples"], tmp_path / "feat", scheduler=address,
                          workers=2, gpu=True)
    for sub, table in (("images", IMAGES_TABLE), ("clips", CLIPS_TABLE)):
        assert _table(tmp_path / sub / table).equals(_table(built[sub] / table)), sub
    encode_m3(cfg, *media, built["samples"], tmp_path / "feat1")
    files = {f.relative_to(tmp_path / "feat1") for f in (tmp_path / "feat1").rglob("*")
             if f.is_file() and f.name != "report.json"}
    assert any(f.suffix == ".parquet" for f in files)
    for f in files:
        assert (tmp_path / "feat" / f).read_bytes() == (tmp_path / "feat1" / f).read_bytes(), f
