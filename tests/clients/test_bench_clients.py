"""bench/clients.py: its checks (docs/publish.md tables parsed, torch.load of every file)
pass on the toy chain's exports and catch a file that departs from the doc."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from symile_data.publish.reference import export_reference

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_clients", REPO / "bench" / "clients.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_doc_tables_parse():
    m3 = [n for names, _, _ in bench.doc_table("**M3**") for n in names]
    assert "lang_{split}.txt" in m3 and "cls_{split}.txt" in m3
    assert "image_missingness_prob{NN}_{split}.pt" in m3 and len(m3) == 12
    mimic = [n for names, _, _ in bench.doc_table("**MIMIC**, per split") for n in names]
    assert "label_hadm_id_{split}.pt" in mimic and len(mimic) == 7
    assert bench.expect_shape("(N, 3, 320, 320)", {"N": 4}) == (4, 3, 320, 320)


def test_checks_pass_then_catch_a_wrong_file(chain, tmp_path):
    out = tmp_path / "m3"
    export_reference(chain / "data/m3/shards_miss/p0.5/symile-m3-2-demo-miss0.5", out,
                     missingness_prob=0.5)
    res = bench.check_m3(out, ["en", "el"], 0.5)
    assert res["problems"] == [] and res["files_checked"] == 33
    bad = out / "val" / "audio_val.pt"
    torch.save(torch.load(bad, weights_only=True).half(), bad)
    (out / "test" / "stray.pt").write_bytes(b"")
    problems = bench.check_m3(out, ["en", "el"], 0.5)["problems"]
    assert any(p.startswith("val/audio_val.pt: torch.float16") for p in problems)
    assert "test/stray.pt: not in docs/publish.md" in problems
