"""Client check: the reference layout as the reference code would load it.

Builds the toy chain (the dvc.yaml stages in-process, tests/clients/clients_chain.py), exports
the M3 training shards (complete and the p=0.5 missingness variant) and the MIMIC shards with
`symile-data export-reference`, then loads every file with plain ``torch.load`` and checks its
name, dtype and shape against the tables of docs/publish.md (parsed from the doc, so the doc and
the files cannot drift apart), plus what the reference loaders rely on: ``metadata.json`` keys
and types; the missingness p the export took from the source manifest (``extra.missing_p``:
nothing is passed, so a manifest that loses it fails here); ``text_model_id`` loads (config
and model, from another folder, as ``--text_model_id`` in the reference's ``experiments/``) with
the recorded hidden size and a vocabulary that holds every token id; ``.long()`` token ids;
language codes; unique admissions; and the retrieval splits row for row against the source
retrieval sets and samples (queries then each query's negatives, labels, label_hadm_id, labs
and ECG of every row). Prints JSON; exit 1 when a check fails.

Usage: python bench/clients.py [--work DIR] [--keep]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "clients"))
from clients_chain import build_chain  # noqa: E402

from symile_data.io.card import find_configs  # noqa: E402
from symile_data.io.manifest import read_manifest  # noqa: E402
from symile_data.io.reader import split_files  # noqa: E402
from symile_data.publish.reference import export_reference  # noqa: E402
from symile_data.publish.reference_meta import REFERENCE_KEYS  # noqa: E402

ROW = re.compile(r"^\| *([^|]+?) *\| *([^|]+?) *\| *([^|]+?) *\|")


def doc_table(heading: str) -> list[tuple[list[str], str, str]]:
    """Rows (file patterns, shape, dtype) of the docs/publish.md table after ``heading``."""
    lines = (REPO / "docs" / "publish.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 1:]:
        if not line.startswith("|") and rows:
            break
        m = ROW.match(line)
        if not m or m.group(1) in ("file",) or set(m.group(1)) <= set("-"):
            continue
        rows.append((expand(m.group(1)), m.group(2), m.group(3).split(",")[0].split()[0]))
    return rows


def expand(cell: str) -> list[str]:
    """'lang_ / words_ / cls_{split}.txt' -> three names; '{a,b}_x' -> a_x, b_x; 'a, b' -> both."""
    names = []
    for part in cell.split(", "):
        if " / " in part:
            *heads, last = part.split(" / ")
            stem, tail = re.match(r"(\w+_)(.*)", last).groups()
            names += [h + tail for h in heads] + [last]
            continue
        m = re.match(r"\{([^}]*,[^}]*)\}(.*)", part)
        names += [a + m.group(2) for a in m.group(1).split(",")] if m else [part]
    return names


def expect_shape(spec: str, dims: dict[str, int]) -> tuple[int, ...] | None:
    if spec.endswith("lines"):
        return None
    return tuple(int(dims[t]) if t in dims else int(t)
                 for t in re.findall(r"[A-Za-z_]+|\d+", spec))


def check_dir(out: Path, table, splits: dict[str, int], dims: dict[str, int],
              only: dict[str, set[str]], tag: str | None) -> dict:
    """Every file of the table for every split (dtype, shape) and no file outside it."""
    problems, checked = [], 0
    for split, n in splits.items():
        want = set()
        for names, shape, dtype in table:
            for name in names:
                cond = next((c for c in only if c in name), None)
                if cond and split not in only[cond]:
                    continue
                if "{NN}" in name:
                    if tag is None:
                        continue
                    name = name.replace("{NN}", tag)
                rel = f"{split}/{name.replace('{split}', split)}"
                want.add(rel)
                path = out / rel
                if not path.exists():
                    problems.append(f"{rel}: missing")
                    continue
                checked += 1
                if dtype == "text":
                    k = len(path.read_text(encoding="utf-8").split("\n"))
                    if k != n:
                        problems.append(f"{rel}: {k} lines, expected {n}")
                    continue
                t = torch.load(path, weights_only=True)
                exp = expect_shape(shape, {"N": n, **dims})
                if str(t.dtype) != f"torch.{dtype}" or tuple(t.shape) != exp:
                    problems.append(f"{rel}: {t.dtype} {tuple(t.shape)}, docs say {dtype} {exp}")
        extra = {p.relative_to(out).as_posix() for p in (out / split).iterdir()} - want
        problems += [f"{x}: not in docs/publish.md" for x in sorted(extra)]
    return {"files_checked": checked, "problems": problems}


def manifest_p(src: Path) -> float | None:
    """The sampler's missingness p as the joined manifest records it (extra.missing_p)."""
    p = read_manifest(src).get("extra", {}).get("missing_p")
    return None if p is None else float(p)


def check_text_model(meta: dict, out: Path) -> list[str]:
    """``--text_model_id <metadata>`` from another folder: config + weights load, hidden size
    as recorded, every stored token id inside the vocabulary."""
    from transformers import AutoConfig, AutoModel
    model_id, problems = meta["text_model_id"], []
    with tempfile.TemporaryDirectory() as elsewhere, contextlib.chdir(elsewhere):
        try:
            cfg = AutoConfig.from_pretrained(model_id)
            AutoModel.from_pretrained(model_id)
        except (OSError, ValueError) as e:
            return [f"metadata.json: text_model_id {model_id!r} does not load ({e})"]
    if cfg.hidden_size != meta["text_enc_hidden_sz"]:
        problems.append(f"text_enc_hidden_sz {meta['text_enc_hidden_sz']} != hidden_size "
                        f"{cfg.hidden_size} of {model_id}")
    for split in meta["split_sizes"]:
        ids = torch.load(out / split / f"text_input_ids_{split}.pt", weights_only=True)
        if ids.numel() and int(ids.max()) >= cfg.vocab_size:
            problems.append(f"{split}: token id {int(ids.max())} >= vocab {cfg.vocab_size}")
    return problems


def check_m3(out: Path, langs: list[str], src: Path, expect_p: bool = False) -> dict:
    meta = json.loads((out / "metadata.json").read_text())
    problems = [f"metadata.json: {k} is {meta.get(k)!r}, not {t.__name__}"
                for k, (t, _) in REFERENCE_KEYS.items() if type(meta.get(k)) is not t]
    dims = {"D_img": meta["image_enc_hidden_sz"], "D_aud": meta["audio_enc_hidden_sz"],
            "L": meta["max_token_len"]}
    p = manifest_p(src)
    if expect_p and not p:
        problems.append(f"{src}/manifest.json: extra.missing_p is {p!r}; a missingness "
                        "variant must record its p")
    tag = f"{p:.2f}"[2:] if p else None
    res = check_dir(out, doc_table("**M3**"), meta["split_sizes"], dims,
                    {"missingness": {"train", "val"}}, tag)
    for split in meta["split_sizes"]:          # what SymileM3Dataset does on load
        ids = torch.load(out / split / f"text_input_ids_{split}.pt", weights_only=True).long()
        if not torch.equal(ids.float(), torch.load(out / split / f"text_input_ids_{split}.pt",
                                                   weights_only=True)):
            problems.append(f"{split}: token ids not integral")
        lang = (out / split / f"lang_{split}.txt").read_text().splitlines()
        bad = sorted(set(lang) - set(langs))
        if bad:
            problems.append(f"{split}: languages {bad} not in the reference list {langs}")
    if p and meta["missingness_prob"] != p:
        problems.append(f"metadata.json: missingness_prob {meta['missingness_prob']} != {p} "
                        "(the source manifest's)")
    problems += check_text_model(meta, out)
    res["problems"] += problems
    return {**res, "metadata": {k: meta[k] for k in REFERENCE_KEYS}}


def expected_retrieval(rdir: Path, split: str) -> dict[str, np.ndarray]:
    """The reference's long format built from the source rows: queries (label 1), then each
    query's candidates other than itself, in candidate order (label 0)."""
    t = pa.concat_tables(pq.read_table(f) for f in split_files(rdir, split)).to_pydict()
    rows, label_ids, problems = [], [], []
    for q, cands, lab in zip(t["query_hadm_id"], t["candidate_hadm_ids"], t["label"]):
        if cands[lab] != q:
            problems.append(f"{rdir.name}/{split}: query {q} is not candidate {lab}")
        negs = [c for j, c in enumerate(cands) if j != lab]
        rows.append(negs)
        label_ids += [q] * len(negs)
    queries = list(t["query_hadm_id"])
    return {"hadm_id": np.array(queries + [c for r in rows for c in r], np.int64),
            "label": np.array([1] * len(queries) + [0] * len(label_ids), np.int64),
            "label_hadm_id": np.array(queries + label_ids, np.int64), "problems": problems}


def sample_columns(sdir: Path, columns: list[str]) -> dict[int, dict[str, np.ndarray]]:
    """hadm_id -> the source sample's columns (every split)."""
    out = {}
    for split in read_manifest(sdir)["splits"]:
        t = pa.concat_tables(pq.read_table(f, columns=["hadm_id", *columns])
                             for f in split_files(sdir, split)).to_pydict()
        for i, h in enumerate(t["hadm_id"]):
            out[h] = {c: np.asarray(t[c][i]) for c in columns}
    return out


def check_mimic(out: Path, src: Path) -> dict:
    """``src``: the root holding the samples and retrieval datasets the export read."""
    meta = json.loads((out / "metadata.json").read_text())
    splits = {s: int(meta[f"{s.replace('_', ' ')} size"])
              for s in ("train", "val", "val_retrieval", "test")}
    res = check_dir(out, doc_table("**MIMIC**, per split"), splits, {},
                    {"label": {"val_retrieval", "test"}}, None)
    for s in ("train", "val"):                 # SymileMIMICDataModule asserts these
        h = torch.load(out / s / f"hadm_id_{s}.pt", weights_only=True)
        if torch.unique(h).numel() != h.numel():
            res["problems"].append(f"{s}: duplicate hadm_id")
    dirs: dict[str, Path] = {}                  # samples / retrieval dataset dirs
    for d in find_configs(src).values():
        m = read_manifest(d)
        if m["format"] == "parquet":
            cols = pq.read_schema(split_files(d, next(iter(m["splits"])))[0]).names
            dirs["retrieval" if "candidate_hadm_ids" in cols else "samples"] = d
    source = sample_columns(dirs["samples"], ["labs_percentiles", "ecg"])
    for s, rsplit in (("val_retrieval", "val"), ("test", "test")):
        want = expected_retrieval(dirs["retrieval"], rsplit)
        res["problems"] += want.pop("problems")
        for name, arr in want.items():
            got = torch.load(out / s / f"{name}_{s}.pt", weights_only=True).numpy()
            if not np.array_equal(got, arr):
                res["problems"].append(f"{s}/{name}_{s}.pt: not the source retrieval rows")
        labs = torch.load(out / s / f"labs_percentiles_{s}.pt", weights_only=True).numpy()
        ecg = torch.load(out / s / f"ecg_{s}.pt", weights_only=True).numpy()
        for i, h in enumerate(want["hadm_id"]):
            if not (np.array_equal(labs[i], source[int(h)]["labs_percentiles"])
                    and np.array_equal(ecg[i].ravel(), source[int(h)]["ecg"])):
                res["problems"].append(f"{s} row {i}: labs/ECG are not admission {h}'s")
                break
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="work dir (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="symile-clients-"))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):   # stage reports; stdout is our JSON
        build_chain(work)
    report: dict = {"chain_s": round(time.perf_counter() - t0, 1), "exports": {}}
    langs = ["en", "el"]                       # LANGUAGES_2 of the reference (toy chain w=2)
    name = "symile-m3-2-demo"
    jobs = {"m3": work / "data/m3/shards" / name,
            # no p passed: the export must take it from the joined manifest
            "m3_missing_p0.5": work / f"data/m3/shards_miss/p0.5/{name}-miss0.5",
            "mimic": work / "data/mimic/shards"}
    for kind, src in jobs.items():
        out = work / "reference" / kind
        t = time.perf_counter()
        record = export_reference(src, out)
        res = (check_mimic(out, src) if kind == "mimic"
               else check_m3(out, langs, src, expect_p=kind != "m3"))
        report["exports"][kind] = {"files": len(record["files"]),
                                   "export_s": round(time.perf_counter() - t, 2), **res}
    report["ok"] = all(not r["problems"] for r in report["exports"].values())
    print(json.dumps(report, indent=1))
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
