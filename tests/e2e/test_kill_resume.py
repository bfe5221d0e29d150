"""Kill the chain with SIGKILL in the middle of a stage (inside a shard write: bytes in the
temporary file, not yet renamed, no done-marker), twice, run it again, and compare every shard
with an uninterrupted run: byte-identical."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from e2e_chain import REPO

CHAIN = Path(__file__).with_name("e2e_chain.py")
LAST = "m3_missing"          # every shard output exists after this stage (no training here)
SHARD_ROOTS = ("data/xor", "data/m3/samples", "data/m3/shards", "data/m3/samples_miss",
               "data/m3/shards_miss", "data/mimic/shards")


def _chain(work: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "E2E_KILL_AT"}
    if kill_at:
        env["E2E_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, str(CHAIN), str(REPO), str(work), "--until", LAST],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=150)


def _shards(work: Path) -> dict[str, bytes]:
    """Every shard, done-marker and manifest of the shard roots, by relative path."""
    out = {}
    for root in SHARD_ROOTS:
        for p in sorted((work / root).rglob("*")):
            if p.is_file() and (p.suffix in (".parquet", ".tar") or p.name == "manifest.json"
                                or p.name.endswith(".stats.json")):
                out[str(p.relative_to(work))] = p.read_bytes()
    return out


def _assert_killed_in(proc: subprocess.CompletedProcess, work: Path, stage: str) -> None:
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    assert (work / ".chain" / f"{stage}.started").exists()
    assert not (work / ".chain" / f"{stage}.done").exists()


def test_killed_chain_resumes_to_identical_shards(toy_workdir: Path, tmp_path: Path):
    ref = tmp_path / "ref"
    ref.mkdir()
    shutil.copy(toy_workdir / "params.yaml", ref / "params.yaml")
    clean = subprocess.Popen([sys.executable, str(CHAIN), str(REPO), str(ref), "--until", LAST],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    work = toy_workdir
    # killed inside mimic_shards' 2nd shard write: symile-mimic/train is done, val is not
    _assert_killed_in(_chain(work, "mimic_shards:2"), work, "mimic_shards")
    partial = work / "data/mimic/shards/symile-mimic"
    assert len(list(partial.glob("*.stats.json"))) == 1
    assert not (partial / "manifest.json").exists()
    # resumed, then killed again in the middle of the missingness variant's shards
    _assert_killed_in(_chain(work, "m3_missing@0.5:4"), work, "m3_missing@0.5")
    done = _chain(work)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    _, err = clean.communicate(timeout=150)
    assert clean.returncode == 0, err.decode()[-3000:]

    expected = _shards(ref)
    assert len([k for k in expected if k.endswith(".parquet")]) >= 20
    got = _shards(work)
    assert sorted(got) == sorted(expected)
    assert [k for k in expected if got[k] != expected[k]] == []
