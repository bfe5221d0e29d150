"""bench/gpu.py: the tiny mode runs on CPU and prints ONE JSON object with every section and
every key docs/gpu.md documents, positive rates, the O(N^2) size the loss refuses listed as
skipped; a spent budget skips a section and says so."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_bench(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu.py"), "--tiny", *args],
                          capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)                    # stdout is exactly one JSON object


def documented_keys() -> list[str]:
    """First-column `keys` of the table under '## Output' in docs/gpu.md, {a,b} expanded."""
    text = (REPO / "docs" / "gpu.md").read_text()
    table = text.split("## Output", 1)[1].split("\n## ", 1)[0]
    keys = []
    for row in re.findall(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE):
        todo = [row]
        while todo:
            k = todo.pop()
            m = re.search(r"\{([^}]+)\}", k)
            if m is None:
                keys.append(k)
            else:
                todo += [k[:m.start()] + alt + k[m.end():] for alt in m.group(1).split(",")]
    return keys


def resolve(obj, path: str) -> list:
    """Values at a dotted path; ``name[]`` walks every element of a non-empty list."""
    vals = [obj]
    for seg in path.split("."):
        many = seg.endswith("[]")
        seg = seg.removesuffix("[]")
        nxt = []
        for v in vals:
            assert isinstance(v, dict) and seg in v, f"{path}: no key {seg!r}"
            if many:
                assert isinstance(v[seg], list) and v[seg], f"{path}: {seg} is no non-empty list"
                nxt += v[seg]
            else:
                nxt.append(v[seg])
        vals = nxt
    return vals


@pytest.fixture(scope="module")
def tiny() -> dict:
    return run_bench()


def test_tiny_has_every_documented_key_and_positive_rates(tiny):
    keys = documented_keys()
    assert len(keys) > 40 and "features.audio.results[].clips_per_s" in keys
    for key in keys:
        for value in resolve(tiny, key):
            if key.endswith("_per_s"):
                assert isinstance(value, float | int) and value > 0, (key, value)
    assert tiny["scale"] == "tiny" and tiny["env"]["device"] == "cpu" and tiny["errors"] == []
    for name in ("image", "audio", "text"):                # 2 autocast dtypes x 2 batch sizes
        got = [(r["amp"], r["batch_size"]) for r in tiny["features"][name]["results"]]
        assert got == [("fp16", 2), ("fp16", 4), ("bf16", 2), ("bf16", 4)], (name, got)
    assert tiny["train"]["mimic"]["negatives"] == "n_squared"      # params-real.yaml's
    assert tiny["train"]["mimic"]["spec"]["cxr_encoder"] == "resnet50"
    assert [r["N"] for r in tiny["loss"]["n"]] == [8, 16, 32]
    assert [r["N"] for r in tiny["loss"]["n_squared"]] == [8, 16]  # 32^3 > max_logits 2^12
    assert [s["what"] for s in tiny["skipped"]] == ["n_squared N=32 d=32"]
    assert "max_logits" in tiny["skipped"][0]["why"]


def test_a_spent_budget_skips_its_section_and_says_so():
    out = run_bench("--sections", "loss", "--budget", "loss.n=0")
    assert "features" not in out and "train" not in out
    assert out["loss"]["n"] is None and len(out["loss"]["n_squared"]) == 2
    assert {"section": "loss.n", "what": "all of loss.n",
            "why": "time budget exhausted"} in out["skipped"]


def test_a_measurement_longer_than_the_budget_left_is_not_started():
    spec = importlib.util.spec_from_file_location("gpu_clock", REPO / "bench" / "gpu_clock.py")
    clock_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(clock_mod)
    clock = clock_mod.Clock({"loss.n": 10.0}, max_s=100.0)
    clock.start("loss.n")
    assert clock.why_not(1.0) is None
    assert clock.why_not(50.0).startswith("estimated 50.0 s >")
    ran = []
    assert clock_mod.attempt(clock, "n N=4096", 50.0, ran.append, 1) is None and ran == []
    assert clock.skipped[-1]["what"] == "n N=4096"
