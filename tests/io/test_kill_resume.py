"""A writer process killed with SIGKILL mid-write leaves nothing that reads as complete, and a
re-run finishes with shards byte-identical to an uninterrupted run."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq

from symile_data.io.manifest import shard_of_marker
from symile_data.io.validate import validate_tree

SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from symile_data.io.parquet import ShardSpec, write_parquet_dataset
    from symile_data.schema import xor_schema
    from symile_data.xor import generate_xor

    class Slow:
        # a lazy source that takes a while per shard, so the kill lands mid-dataset
        def __init__(self, table, delay):
            self.table, self.num_rows, self.delay = table, table.num_rows, delay
        def take_range(self, start, stop):
            time.sleep(self.delay)
            return self.table.slice(start, stop - start)

    out, delay = sys.argv[1], float(sys.argv[2])
    t = generate_xor(4000, 5, 0.5, np.random.default_rng(0), "train")
    write_parquet_dataset(out, {"train": Slow(t, delay)}, xor_schema(5), name="k",
                          params_hash="h", spec=ShardSpec(max_rows_per_shard=400,
                                                          row_group_rows=100))
""")


def _run(out, delay):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), str(delay)],
                            env={**os.environ, "SYMILE_DATA_PROGRESS": "off"})


def test_sigkill_mid_write_then_resume(tmp_path):
    killed, ref = tmp_path / "killed", tmp_path / "ref"
    proc = _run(killed, 0.3)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(killed.glob("*.stats.json"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    markers = list(killed.glob("*.stats.json"))
    assert 3 <= len(markers) < 10
    assert not (killed / "manifest.json").exists()
    assert not validate_tree(killed)[0]["ok"]
    # every shard that has a marker is complete and readable
    for m in markers:
        shard = shard_of_marker(m)
        assert pq.read_table(shard).num_rows == 400
    assert _run(killed, 0.0).wait() == 0
    assert _run(ref, 0.0).wait() == 0
    assert validate_tree(killed)[0]["ok"]
    names = sorted(p.name for p in ref.iterdir())
    assert names == sorted(p.name for p in killed.iterdir())   # no temporaries, no lock
    for n in names:
        assert (ref / n).read_bytes() == (killed / n).read_bytes(), n


def test_validate_truncated_and_wrong_schema(tmp_path):
    assert _run(tmp_path, 0.0).wait() == 0
    shards = sorted(tmp_path.glob("train-*.parquet"))
    data = shards[0].read_bytes()
    shards[0].write_bytes(data[: len(data) // 2])
    bad = pa.table({"key": ["x"] * 400, "split": ["train"] * 400})
    pq.write_table(bad, shards[1])
    report = validate_tree(tmp_path)[0]
    text = "\n".join(report["problems"])
    assert f"{shards[0].name}: unreadable Parquet" in text
    assert f"{shards[1].name}: schema differs" in text
    assert f"{shards[1].name}: sha256 differs" in text
