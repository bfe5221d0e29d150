"""bench/clients.py: its checks (docs/publish.md tables parsed, torch.load of every file)
pass on the toy chain's exports and catch a file that departs from the doc."""
from __future__ import annotations

import importlib.util
import json
import shutil
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


MISS = "data/m3/shards_miss/p0.5/symile-m3-2-demo-miss0.5"


def test_checks_pass_then_catch_a_wrong_file(chain, tmp_path):
    out = tmp_path / "m3"
    export_reference(chain / MISS, out)                  # p from the manifest, not passed
    res = bench.check_m3(out, ["en", "el"], chain / MISS, expect_p=True)
    assert res["problems"] == [] and res["files_checked"] == 33
    bad = out / "val" / "audio_val.pt"
    torch.save(torch.load(bad, weights_only=True).half(), bad)
    (out / "test" / "stray.pt").write_bytes(b"")
    problems = bench.check_m3(out, ["en", "el"], chain / MISS, expect_p=True)["problems"]
    assert any(p.startswith("val/audio_val.pt: torch.float16") for p in problems)
    assert "test/stray.pt: not in docs/publish.md" in problems


def test_catches_a_manifest_without_p_and_a_text_model_that_does_not_load(chain, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(chain / MISS, src)
    m = json.loads((src / "manifest.json").read_text())
    del m["extra"]["missing_p"]
    (src / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "m3"
    export_reference(chain / MISS, out)
    meta = json.loads((out / "metadata.json").read_text())
    meta["text_model_id"] = "data/models/tiny/xlmr"           # relative: not from experiments/
    (out / "metadata.json").write_text(json.dumps(meta))
    problems = bench.check_m3(out, ["en", "el"], src, expect_p=True)["problems"]
    assert any("extra.missing_p" in p for p in problems), problems
    assert any("text_model_id" in p and "does not load" in p for p in problems), problems


def test_mimic_retrieval_rows_checked_against_the_source(chain, tmp_path):
    out = tmp_path / "mimic"
    export_reference(chain / "data/mimic/shards", out)
    assert bench.check_mimic(out, chain / "data/mimic/shards")["problems"] == []
    # the first query's first two negatives swapped in every file: still one positive per
    # query and each row self-consistent, but not the source's order
    q = int((torch.load(out / "test" / "label_test.pt", weights_only=True) == 1).sum())
    for name in ("hadm_id", "labs_percentiles", "ecg"):
        path = out / "test" / f"{name}_test.pt"
        t = torch.load(path, weights_only=True)
        t[[q, q + 1]] = t[[q + 1, q]]
        torch.save(t, path)
    problems = bench.check_mimic(out, chain / "data/mimic/shards")["problems"]
    assert "test/hadm_id_test.pt: not the source retrieval rows" in problems
    assert any(p.startswith("test row ") for p in problems)
