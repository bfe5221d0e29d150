"""Kill the chain with SIGKILL in the middle of a stage, run it again, and compare every shard
with an uninterrupted run: byte-identical (the stages resume / rewrite atomically)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from e2e_chain import REPO

CHAIN = Path(__file__).with_name("e2e_chain.py")
LAST = "m3_missing"          # every shard output exists after this stage (no training here)
SHARD_ROOTS = ("data/xor", "data/m3/samples", "data/m3/shards", "data/m3/samples_miss",
               "data/m3/shards_miss", "data/mimic/shards")


def _chain(work: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, str(CHAIN), str(REPO), str(work), "--until", LAST],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen, timeout: float = 150) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()[-3000:]


def _shards(work: Path) -> dict[str, bytes]:
    """Every shard, marker and manifest of the shard roots, by relative path."""
    out = {}
    for root in SHARD_ROOTS:
        for p in sorted((work / root).rglob("*")):
            if p.is_file() and (p.suffix in (".parquet", ".tar") or p.name == "manifest.json"
                                or p.name.endswith(".stats.json")):
                out[str(p.relative_to(work))] = p.read_bytes()
    return out


def _kill_during(proc: subprocess.Popen, work: Path, stage: str, delay_s: float) -> None:
    started = work / ".chain" / f"{stage}.started"
    deadline = time.monotonic() + 120
    while not started.exists():
        assert proc.poll() is None, f"chain ended before {stage}: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"{stage} never started"
        time.sleep(0.02)
    time.sleep(delay_s)
    assert proc.poll() is None, f"chain finished {stage} within {delay_s} s: kill too late"
    assert not (work / ".chain" / f"{stage}.done").exists(), f"{stage} already finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_chain_resumes_to_identical_shards(toy_workdir: Path, tmp_path: Path):
    ref = tmp_path / "ref"
    ref.mkdir()
    shutil.copy(toy_workdir / "params.yaml", ref / "params.yaml")
    clean = _chain(ref)

    killed = _chain(toy_workdir)
    # mimic_shards decodes every ECG / CXR and writes two datasets: killed well inside it
    _kill_during(killed, toy_workdir, "mimic_shards", delay_s=0.4)
    _finish(clean)
    _finish(_chain(toy_workdir))

    expected = _shards(ref)
    assert len([k for k in expected if k.endswith(".parquet")]) >= 20
    got = _shards(toy_workdir)
    assert sorted(got) == sorted(expected)
    assert [k for k in expected if got[k] != expected[k]] == []
