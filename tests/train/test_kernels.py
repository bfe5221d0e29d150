"""Training gives the same bytes whatever kernels the CPU would pick (issue 21): the stage
scripts pin them (symile_data.kernels, SYMILE_KERNELS=portable by default). Two runs under
different forced kernel settings (ATen capability, MKL code path, thread count: what differs
from one x86-64 CPU to the next) write identical checkpoints and metrics; with
SYMILE_KERNELS=native the same two settings give different bytes, so the pin is what holds."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from train_helpers import mimic_table, write_dataset
from symile_data.kernels import pin_kernels, portable_env

REPO = Path(__file__).resolve().parents[2]
CAP = torch.backends.cpu.get_cpu_capability()     # this CPU's best ATen kernels, e.g. AVX512
# two "CPUs": the best kernels this one has, one thread, MKL's own choice ...
CPU_A = {"ATEN_CPU_CAPABILITY": CAP.lower(), "MKL_CBWR": "AUTO", "OMP_NUM_THREADS": "1",
         "MKL_NUM_THREADS": "1"}
# ... and an older one: scalar ATen kernels, MKL's SSE2 path, two threads
CPU_B = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "2",
         "MKL_NUM_THREADS": "2"}
FILES = ("last.pt", "best.pt", "metrics.jsonl", "done.json")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kernels")
    ds = write_dataset(tmp / "mimic", {"train": mimic_table(48, "train", 0),
                                       "val": mimic_table(16, "val", 1),
                                       "test": mimic_table(16, "test", 2)})
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["mimic_train"].update(epochs=1, batch_size=16, d=16, torch_threads=0,
                                 log_every_steps=1)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp, ds


def _train(setup, name: str, cpu: dict, kernels: str | None) -> dict[str, bytes]:
    tmp, ds = setup
    env = {k: v for k, v in os.environ.items() if k not in portable_env(1)}
    env.update(cpu, PYTHONPATH=str(REPO), SYMILE_DATA_PROGRESS="off")
    env.pop("SYMILE_KERNELS", None)
    if kernels:
        env["SYMILE_KERNELS"] = kernels
    out = tmp / name / "run"
    subprocess.run([sys.executable, str(REPO / "pipelines/mimic_train.py"), "--dataset",
                    str(ds), "--method", "symile", "--out", str(out), "--params",
                    str(tmp / "params.yaml")], env=env, check=True, capture_output=True)
    return {f: (out / f).read_bytes() for f in FILES}


def test_two_kernel_settings_train_identical_bytes(setup):
    # emulated CPUs: bench/cross_cpu.py
    a = _train(setup, "portable-a", CPU_A, None)
    b = _train(setup, "portable-b", CPU_B, None)
    assert [f for f in FILES if a[f] != b[f]] == []


def test_unpinned_kernels_differ_so_the_pin_is_what_holds(setup):
    if CAP == "DEFAULT":
        pytest.skip("this CPU has only the default ATen kernels")
    a = _train(setup, "native-a", CPU_A, "native")
    b = _train(setup, "native-b", CPU_B, "native")
    assert a["last.pt"] != b["last.pt"]


def test_pin_sets_the_environment_only_before_torch_loads(monkeypatch):
    monkeypatch.setenv("SYMILE_KERNELS", "portable")
    assert pin_kernels() == {}                     # torch is loaded in this process
    code = ("import os; from symile_data.kernels import apply_threads, pin_kernels; "
            "pin_kernels(); import torch; apply_threads(); print(os.environ['ATEN_CPU_CAPABILITY'], "
            "torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())")
    env = {**os.environ, "PYTHONPATH": str(REPO), "SYMILE_THREADS": "3",
           "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["default", "DEFAULT", "3"]      # portable overrides what the shell had
    bad = subprocess.run([sys.executable, "-c", code], env={**env, "SYMILE_KERNELS": "fast"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "SYMILE_KERNELS='fast'" in bad.stderr
    line = subprocess.run([sys.executable, str(REPO / "pipelines/xor_data.py"), "--help"],
                          env={**env, "SYMILE_KERNELS": "fast"}, capture_output=True, text=True)
    assert (line.returncode, line.stderr.strip().splitlines()) == (
        2, ["configuration error: SYMILE_KERNELS='fast': expected one of portable, native"])


def test_pin_restarts_once_so_libm_runs_without_fma(tmp_path):
    """glibc picks its FMA variants of pow / exp / log when the process starts: Python's
    ``0.999 ** k`` (AdamW's bias correction) differs in the last bit between an FMA CPU and one
    without. The pin re-executes the script once with GLIBC_TUNABLES set, so it
    computes what a process started without FMA variants computes."""
    body = ("import hashlib, os, sys\n"
            "v = [0.999 ** k for k in range(1, 3000)] + [0.9 ** k for k in range(1, 3000)]\n"
            "print(hashlib.md5(repr(v).encode()).hexdigest(), os.getpid())\n")
    script = tmp_path / "s.py"
    script.write_text("from symile_data.kernels import pin_kernels\npin_kernels()\n" + body)
    env = {k: v for k, v in os.environ.items()
           if k not in portable_env(1) and k not in ("SYMILE_KERNELS", "SYMILE_KERNELS_PINNED")}
    env["PYTHONPATH"] = str(REPO)

    def run(cmd, **extra):
        return subprocess.run(cmd, env={**env, **extra}, capture_output=True, text=True,
                              check=True).stdout.split()[0]
    pinned = run([sys.executable, str(script)])
    no_fma = run([sys.executable, "-c", body], GLIBC_TUNABLES=portable_env(1)["GLIBC_TUNABLES"])
    assert pinned == no_fma
    native = run([sys.executable, str(script)], SYMILE_KERNELS="native")
    if "fma" in Path("/proc/cpuinfo").read_text():
        assert native != pinned        # this CPU has FMA: the pin is what makes them equal

