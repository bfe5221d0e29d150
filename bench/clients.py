"""Client check: the reference layout as the reference code would load it.

Builds the toy chain (the dvc.yaml stages in-process, tests/clients/clients_chain.py), exports
the M3 training shards (complete and the p=0.5 missingness variant) and the MIMIC shards with
`symile-data export-reference`, then loads every file with plain ``torch.load`` and checks its
name, dtype and shape against the tables of docs/publish.md (parsed from the doc, so the doc and
the files cannot drift apart), plus what the reference loaders rely on (``metadata.json`` keys
and types, ``.long()`` token ids, language codes, unique admissions, one positive per query).
Prints JSON; exit 1 when a check fails.

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

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "clients"))
from clients_chain import build_chain  # noqa: E402

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


def check_m3(out: Path, langs: list[str], p: float | None) -> dict:
    meta = json.loads((out / "metadata.json").read_text())
    problems = [f"metadata.json: {k} is {meta.get(k)!r}, not {t.__name__}"
                for k, (t, _) in REFERENCE_KEYS.items() if type(meta.get(k)) is not t]
    dims = {"D_img": meta["image_enc_hidden_sz"], "D_aud": meta["audio_enc_hidden_sz"],
            "L": meta["max_token_len"]}
    tag = None if p is None else f"{p:.2f}"[2:]
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
    if p is not None and meta["missingness_prob"] != p:
        problems.append(f"metadata.json: missingness_prob {meta['missingness_prob']} != {p}")
    res["problems"] += problems
    return {**res, "metadata": {k: meta[k] for k in REFERENCE_KEYS}}


def check_mimic(out: Path) -> dict:
    meta = json.loads((out / "metadata.json").read_text())
    splits = {s: int(meta[f"{s.replace('_', ' ')} size"])
              for s in ("train", "val", "val_retrieval", "test")}
    res = check_dir(out, doc_table("**MIMIC**, per split"), splits, {},
                    {"label": {"val_retrieval", "test"}}, None)
    for s in ("train", "val"):                 # SymileMIMICDataModule asserts these
        h = torch.load(out / s / f"hadm_id_{s}.pt", weights_only=True)
        if torch.unique(h).numel() != h.numel():
            res["problems"].append(f"{s}: duplicate hadm_id")
    for s in ("val_retrieval", "test"):
        label = torch.load(out / s / f"label_{s}.pt", weights_only=True)
        if int((label == 1).sum()) * 10 != splits[s]:
            res["problems"].append(f"{s}: {int((label == 1).sum())} positives for {splits[s]} rows")
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
    jobs = {"m3": (work / "data/m3/shards" / name, None),
            # p given explicitly: the joined manifest records missing_p once m3_missing keeps it
            "m3_missing_p0.5": (work / f"data/m3/shards_miss/p0.5/{name}-miss0.5", 0.5),
            "mimic": (work / "data/mimic/shards", None)}
    for kind, (src, p) in jobs.items():
        out = work / "reference" / kind
        t = time.perf_counter()
        record = export_reference(src, out, missingness_prob=p)
        res = check_mimic(out) if kind == "mimic" else check_m3(out, langs, p)
        report["exports"][kind] = {"files": len(record["files"]),
                                   "export_s": round(time.perf_counter() - t, 2), **res}
    report["ok"] = all(not r["problems"] for r in report["exports"].values())
    print(json.dumps(report, indent=1))
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
