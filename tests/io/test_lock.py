"""Writers: one per output folder (a second stops at once naming folder and holder pid), the
lock file never outlives its holder's block, and temporaries of killed runs go on resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from symile_data.io.lock import LOCK_NAME, FolderLocked, folder_lock, remove_stale_tmp
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.wds import write_wds_dataset
from symile_data.schema import xor_schema
from symile_data.stage import Command, run_stage
from symile_data.xor import generate_xor

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "SYMILE_DATA_PROGRESS": "off"}
HOLD = textwrap.dedent("""
    import sys, time
    from symile_data.io.lock import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _holder(folder: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                         env=ENV, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def _xor(d: Path):
    t = generate_xor(90, 3, 0.5, np.random.default_rng(0), "train")
    return write_parquet_dataset(d, {"train": t}, xor_schema(3), name="x", params_hash="h",
                                 spec=ShardSpec(max_rows_per_shard=40))


def test_resume_removes_temporaries_of_killed_runs(tmp_path):
    d = tmp_path / "d"
    _xor(d)
    dead = _dead_pid()
    stale = [d / f".x.{dead}.tmp", d / f".train-00001-of-00003.parquet.{dead}.tmp",
             d / f"..train-00000-of-00003.parquet.stats.json.{dead}.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        busy = d / f".y.{live.pid}.tmp"   # a live writer's temporary stays
        busy.write_bytes(b"being written")
        reused = d / f".z.{live.pid}.tmp"   # older than the live process: its pid was reused
        reused.write_bytes(b"from a killed run")
        os.utime(reused, (time.time() - 3600, time.time() - 3600))
        stale.append(reused)
        before = {p.name: p.read_bytes() for p in d.iterdir() if p.suffix == ".parquet"}
        _xor(d)
        assert not any(p.exists() for p in stale)
        assert busy.exists()
        assert {p.name: p.read_bytes() for p in d.iterdir() if p.suffix == ".parquet"} == before
    finally:
        live.kill()
        live.wait()
    assert remove_stale_tmp(d) == [busy] and not busy.exists()


def test_second_writer_stops_at_once_naming_folder_and_pid(tmp_path):
    d = tmp_path / "d"
    holder = _holder(d)
    try:
        with pytest.raises(FolderLocked, match=rf"{d}: another writer \(pid {holder.pid}\)"):
            _xor(d)
        with pytest.raises(FolderLocked, match=str(d)):
            write_wds_dataset(d, {"train": []}, name="w", params_hash="h")
        assert not (d / "manifest.json").exists() and not list(d.glob("*.parquet"))
        # the stage scripts: one line naming folder and pid, exit 2
        (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
        r = subprocess.run([sys.executable, str(REPO / "pipelines/xor_data.py"), "--out", str(d)],
                           capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=60)
        assert r.returncode == 2
        assert r.stderr.strip() == (f"error: {d}: another writer (pid {holder.pid}) is writing "
                                    f"this folder ({LOCK_NAME}); wait for it or stop it")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # after a SIGKILL the kernel released the lock: the next writer goes ahead and cleans up
    assert (d / LOCK_NAME).exists()
    _xor(d)
    assert not (d / LOCK_NAME).exists()


def test_lock_released_and_removed_on_exit_and_error(tmp_path):
    d = tmp_path / "d"
    with folder_lock(d) as path:
        assert path.read_text().strip() == str(os.getpid())
        with folder_lock(d):          # re-entrant within a process
            pass
        assert path.exists()
    assert not path.exists()
    with pytest.raises(RuntimeError):
        with folder_lock(d):
            raise RuntimeError("boom")
    assert list(d.iterdir()) == []
    _xor(d)
    assert not (d / LOCK_NAME).exists()


def test_stage_locks_its_out_folder_and_cleans_it(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = out / "sub" / f".part-00000.parquet.{_dead_pid()}.tmp"
    stale.write_bytes(b"x")
    seen = []

    def run(args):
        seen.append((Path(args.out) / LOCK_NAME).exists())
        return 0
    cmd = Command("demo", "demo", lambda p: p.add_argument("--out"), run, locks=("out",))
    assert run_stage(cmd, ["--out", str(out)]) == 0
    assert seen == [True] and not stale.exists() and not (out / LOCK_NAME).exists()


def test_scratch_folders_of_dead_runs_go_live_ones_stay(tmp_path):
    """scratch_dir's .<name>.<pid>.tmp folders: removed on exit, and by remove_stale_tmp once
    their run is gone; a live run's folder (here this process's) stays."""
    from symile_data.io.atomic import scratch_dir
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".spill.{dead.pid}.tmp"
    (stale / "sub").mkdir(parents=True)
    with scratch_dir(tmp_path, "spill") as live:
        (live / "bucket-0.arrow").write_bytes(b"rows")
        assert remove_stale_tmp(tmp_path) == [stale]
        assert live.exists() and not stale.exists()
    assert not live.exists()
    with pytest.raises(RuntimeError):
        with scratch_dir(tmp_path, "spill") as live:
            raise RuntimeError("a failing stage")
    assert not live.exists()
