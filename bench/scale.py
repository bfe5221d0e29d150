"""Scale bench (issue 11): every M3 stage at real row counts, wall seconds and peak RSS each.

Generates M3 inputs at a chosen scale -- 1,000 classes x w languages of synthetic words in each
language's script, a small media pool (``--pool-images`` per class, ``--pool-clips`` per
language; disk stays small), synthetic feature tables of the pool at the real dims (1024 /
1280, ``--dims`` shrinks them for disk) -- then runs, per size, each stage in its own
subprocess (peak RSS of that process alone, from ``os.wait4``):

  samples   m3 samples: build_samples (sampling in blocks, Parquet shards)
  text      text tokens: distinct texts streamed into hash-bucket parts + index (tiny
            XLM-R-style tokenizer of the project; its ids are about as long as real ones)
  join      feature join: m3_shards (samples + features + padded tokens, per shard chunk)
  shards    one pass of the training reader over the train shards (shuffle buffer 10k)
  eval      M3 zero-shot on the test split with an untrained d-dim (8192) model

Output (JSON on stdout): per size and stage {rows, wall_s, peak_rss_mb}; per stage the least-
squares fit wall_s, peak_rss_mb ~ a + b * rows (b per million rows), the RSS growth from the
smallest to the largest measured size, and values at sizes that were not run (skipped by
``--max-rows STAGE=N`` for time or disk) predicted from that fit, marked ``extrapolated``.

  nice -n 10 python bench/scale.py --sizes 100000,xs,m,l --w 10 --work /work/scratch/x \\
      --max-rows join=600000,shards=600000,eval=600000
  nice -n 10 python bench/scale.py --sizes 1000:1000:25000,1000:1000:500000 \\
      --stages samples,text,join,eval      (evaluation at l's 500k test queries)

Sizes: xs|s|m|l (``m3/config.py`` SIZES), N (N train rows, N // 20 val and test) or
TRAIN:VAL:TEST. Evaluation reads only the test split and shard reading only the train split,
so ``1000:1000:500000`` measures evaluation at ``l``'s test split without building its 10M
train rows (``--max-rows`` compares against the rows a stage reads: test rows for eval, train
rows for shards, all rows otherwise).
  python bench/scale.py --dataset mimic ...   (MIMIC half: bench/scale_mimic.py)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STAGES = ("samples", "text", "join", "shards", "eval")
# one script per language (code point ranges) for synthetic class names
SCRIPTS = {"en": (0x61, 0x7A), "el": (0x3B1, 0x3C9), "hi": (0x915, 0x939),
           "ja": (0x3041, 0x3093), "uk": (0x430, 0x44F), "ar": (0x627, 0x64A),
           "ko": (0xAC00, 0xAD00), "te": (0xC15, 0xC39), "th": (0xE01, 0xE2E),
           "zh-CN": (0x4E00, 0x4F00)}


def split_rows(size: str) -> tuple[int, int, int]:
    """(train, val, test) rows of a size: xs|s|m|l, N (train rows; val = test = N // 20) or
    TRAIN:VAL:TEST (e.g. ``1000:1000:500000``: ``l``'s test split without its train rows)."""
    from symile_data.m3.config import SIZES
    if size in SIZES:
        return SIZES[size]
    parts = size.split(":")
    try:
        rows = [int(p) for p in parts]
    except ValueError:
        rows = []
    if len(rows) == 3 and min(rows) >= 0 and sum(rows) > 0:
        return rows[0], rows[1], rows[2]
    if len(rows) == 1 and rows[0] > 0:
        return rows[0], rows[0] // 20, rows[0] // 20
    raise ValueError(f"size '{size}': expected xs|s|m|l, train rows N or TRAIN:VAL:TEST")


def stage_rows(stage: str, size: str) -> int:
    """Rows a stage works through: shards read the train split, eval the test split."""
    tr, va, te = split_rows(size)
    return {"shards": tr, "eval": te}.get(stage, tr + va + te)


# ---------------------------------------------------------------- inputs
def make_inputs(work: Path, w: int, pool_images: int, pool_clips: int, dims: tuple[int, int],
                seed: int = 0) -> None:
    """translations.json, m3_images / m3_clips tables and feature tables of the pool."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from symile_data import schema as S
    from symile_data.io.atomic import atomic_write_json
    from symile_data.m3.classes import load_classes
    from symile_data.m3.translations import langs_for_w
    rng = np.random.default_rng(seed)
    classes, langs = load_classes(), langs_for_w(w)
    seen: set[str] = set()

    def word(lang: str) -> str:
        lo, hi = SCRIPTS[lang]
        while True:
            s = "".join(chr(c) for c in rng.integers(lo, hi + 1, rng.integers(3, 8)))
            if s not in seen:
                seen.add(s)
                return s
    table = {name: {"synset_id": syn, "cls_id": i, "en": name,
                    **{lang: word(lang) for lang in langs if lang != "en"}}
             for i, (syn, name) in enumerate(zip(classes.synsets, classes.names))}
    atomic_write_json(work / "translations" / "translations.json", table)
    n_img = len(classes.synsets) * pool_images
    img_keys = [f"{i:032x}" for i in range(n_img)]
    cls = np.repeat(np.arange(len(classes.synsets)), pool_images)
    images = pa.table({"image_key": img_keys, "synset": np.asarray(classes.synsets)[cls],
                       "cls_id": cls.astype(np.int16), "source_path": ["-"] * n_img,
                       "path": ["files/none.jpg"] * n_img, "width": [256] * n_img,
                       "height": [256] * n_img, "status": ["ok"] * n_img,
                       "error": [None] * n_img})
    (work / "images").mkdir(parents=True, exist_ok=True)
    pq.write_table(images.cast(S.m3_images_schema()), work / "images" / "images.parquet")
    n_clip = w * pool_clips
    clip_keys = [f"a{i:031x}" for i in range(n_clip)]
    clips = pa.table({"audio_key": clip_keys, "lang": np.repeat(langs, pool_clips).tolist(),
                      "text": ["s"] * n_clip, "engine": ["bench"] * n_clip,
                      "voice": ["v"] * n_clip, "source_path": [None] * n_clip,
                      "path": ["files/none.wav"] * n_clip, "sample_rate": [16000] * n_clip,
                      "duration_s": [2.0] * n_clip, "status": ["ok"] * n_clip,
                      "error": [None] * n_clip})
    (work / "clips").mkdir(parents=True, exist_ok=True)
    pq.write_table(clips.cast(S.m3_clips_schema()), work / "clips" / "clips.parquet")
    index = {}
    for modality, keys, dim in (("image", img_keys, dims[0]), ("audio", clip_keys, dims[1])):
        d = work / "features" / modality / f"bench{dim}"
        d.mkdir(parents=True, exist_ok=True)
        feat = rng.standard_normal((len(keys), dim), dtype=np.float32).astype(np.float16)
        t = pa.table({"key": keys, "status": ["ok"] * len(keys), "error": [""] * len(keys),
                      "feat": pa.FixedSizeListArray.from_arrays(pa.array(feat.ravel()), dim)})
        pq.write_table(t.cast(S.feature_table_schema(dim, "float16")), d / "part-00000.parquet")
        atomic_write_json(d / "manifest.json", {
            "identity": {"modality": modality, "model": "bench", "dtype": "float16"},
            "encoder_id": f"bench{dim}", "dim": dim, "parts": ["part-00000.parquet"],
            "rows": len(keys), "ok": len(keys), "failed": 0, "schema": "feature_table"})
        index[modality] = f"{modality}/bench{dim}"
    atomic_write_json(work / "features" / "partial_index.json", index)


def tiny_text_model(work: Path) -> str:
    """The project's tiny XLM-R-style model (tokenizer + weights), written once."""
    d = work.parent / "tiny-models"
    if not (d / "xlm-roberta").exists():
        from symile_data.features.tiny_models import write_tiny_models
        write_tiny_models(d, seed=0)
    return str(d / "xlm-roberta")


# ---------------------------------------------------------------- stages (in a subprocess)
def run_stage(stage: str, work: Path, opt: dict) -> dict:
    """Run one stage; returns extra facts to report (rows etc.)."""
    tr, va, te = split_rows(opt["size"])
    if stage == "samples":
        from symile_data.m3.config import M3SamplesConfig
        from symile_data.m3.samples import build_samples
        cfg = M3SamplesConfig(ws=(opt["w"],), sizes=("bench",),
                              custom_sizes={"bench": [tr, va, te]})
        rep = build_samples(work / "samples", cfg, work.parent / "inputs" / "translations",
                            work.parent / "inputs" / "images", work.parent / "inputs" / "clips")
        return {"rows": tr + va + te, "report": rep["datasets"]}
    if stage == "text":
        from symile_data.features.m3 import sample_datasets, tokenize_samples
        from symile_data.features.text import TextTokenizer
        from symile_data.io.atomic import atomic_write_json, read_json
        tok = TextTokenizer(opt["text_model"], None, 512)
        rep, rel = tokenize_samples(tok, sample_datasets(work / "samples"), work / "features")
        index = read_json(work.parent / "inputs" / "features" / "partial_index.json")
        for m in ("image", "audio"):   # the pool's synthetic feature tables, linked in
            link = work / "features" / m
            if not link.exists():
                link.symlink_to(work.parent / "inputs" / "features" / m)
        atomic_write_json(work / "features" / "index.json", {**index, "text": rel})
        n_tok = read_json(work / "features" / rel / "manifest.json")["index"]
        return {"rows": tr + va + te, "unique_texts": rep["unique_items"],
                "mean_tokens": round(n_tok["tokens"] / max(1, n_tok["texts"]), 1)}
    if stage == "join":
        from symile_data.features.config import JoinConfig
        from symile_data.features.join import join_m3
        rep = join_m3(work / "samples", work / "features", work / "shards", JoinConfig())
        return {"rows": tr + va + te, "text_len": rep["datasets"][0]["text_len"],
                "shard_bytes": sum(f.stat().st_size for f in (work / "shards").rglob("*.parquet"))}
    if stage == "shards":
        from symile_data.io.reader import ParquetIterable, split_files
        files = split_files(next((work / "shards").glob("symile-m3-*")), "train")
        n = sum(len(b["key"]) for b in ParquetIterable(files, batch_size=256,
                                                        shuffle_buffer=10_000))
        return {"rows": n}
    if stage == "eval":
        import torch

        from symile_data.train.config import EvalConfig
        from symile_data.train.evaluate import m3_predict_chunks
        from symile_data.train.factory import build_from_spec, model_spec
        from symile_data.train.config import M3TrainConfig
        torch.manual_seed(0)
        ds = next((work / "shards").glob("symile-m3-*"))
        cfg = M3TrainConfig(text_model=opt["text_model"], d=opt["eval_d"])
        model = build_from_spec(model_spec("m3", cfg, ds)).eval()
        n = correct = 0
        ev = EvalConfig(batch_size=opt["eval_batch"])
        for pred, true, _ in m3_predict_chunks(model, "symile", ds, ev, torch.device("cpu")):
            n += len(pred)
            correct += int((pred == true).sum())
        return {"rows": te, "queries": n, "accuracy": correct / max(1, n)}
    raise ValueError(f"unknown stage {stage}")


def measure(stage: str, work: Path, opt: dict) -> dict:
    """Run a stage in a child process; wall seconds and that child's peak RSS."""
    args = [sys.executable, __file__, "--_stage", stage, "--work", str(work),
            "--_opt", json.dumps(opt)]
    env = {**os.environ, "SYMILE_DATA_PROGRESS": "off", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    with open(work / f"{stage}.out", "w+") as fo, open(work / f"{stage}.err", "w+") as fe:
        proc = subprocess.Popen(args, stdout=fo, stderr=fe, env=env)
        _, status, ru = os.wait4(proc.pid, 0)          # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if proc.returncode:
        raise RuntimeError(f"stage {stage} failed:\n{err[-3000:]}")
    facts = json.loads(out.strip().splitlines()[-1])
    facts.pop("_self_rss_kb", None)
    rss = ru.ru_maxrss                                  # KiB on Linux
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(rss / 1024), **facts}


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares y = a + b * rows; b per row."""
    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    if len(set(x)) < 2:
        return float(y.mean()), 0.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def summarise(results: dict, sizes: list[str]) -> dict:
    """Per stage: least-squares fits over the measured sizes, and values at the sizes not run.

    Extrapolation (marked): wall from the linear fit; peak RSS from the largest measured
    size plus the slope between the two largest measured sizes (>= 0), since memory is flat
    once a stage's chunk is full and a fit through smaller, unsaturated sizes would overstate
    it.
    """
    out = {}
    for stage in STAGES:
        pts = sorted(((r[stage]["rows"], r[stage]) for s, r in results.items()
                      if stage in r and not r[stage].get("extrapolated")), key=lambda p: p[0])
        if not pts:
            continue
        aw, bw = fit([(n, m["wall_s"]) for n, m in pts])
        am, bm = fit([(n, m["peak_rss_mb"]) for n, m in pts])
        top = fit([(n, m["peak_rss_mb"]) for n, m in pts[-2:]])[1] if len(pts) > 1 else 0.0
        rss = [m["peak_rss_mb"] for _, m in pts]
        out[stage] = {"measured_sizes": len(pts),
                      "wall_s_per_million_rows": round(bw * 1e6, 2),
                      "wall_s_intercept": round(aw, 2),
                      "rss_mb_per_million_rows": round(bm * 1e6, 2),
                      "rss_mb_per_million_rows_top_two": round(top * 1e6, 2),
                      "rss_growth_smallest_to_largest": round(rss[-1] / rss[0] - 1, 3)}
        for s in sizes:
            if stage not in results.get(s, {}):
                rows = stage_rows(stage, s)
                results.setdefault(s, {})[stage] = {
                    "rows": rows, "wall_s": round(aw + bw * rows, 1),
                    "peak_rss_mb": round(rss[-1] + max(0.0, top) * (rows - pts[-1][0])),
                    "extrapolated": True}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("m3", "mimic"), default="m3")
    ap.add_argument("--sizes", default="100000,xs",
                    help="comma list of xs|s|m|l, N (train rows) or TRAIN:VAL:TEST")
    ap.add_argument("--w", type=int, default=10)
    ap.add_argument("--pool-images", type=int, default=2, help="images per class")
    ap.add_argument("--pool-clips", type=int, default=20, help="clips per language")
    ap.add_argument("--dims", default="1024,1280", help="image,audio feature dims")
    ap.add_argument("--eval-d", type=int, default=8192)
    ap.add_argument("--eval-batch", type=int, default=256,
                    help="m3_eval.batch_size: rows per encoder batch and per query chunk (the "
                         "text tower holds batch x tokens x d floats)")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--max-rows", default="", help="STAGE=N,...: skip (extrapolate) above N")
    ap.add_argument("--work", default="/tmp/symile-bench-scale")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--_stage", help=argparse.SUPPRESS)
    ap.add_argument("--_opt", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args(argv)
    if args.dataset == "mimic":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        try:
            import scale_mimic  # written by the MIMIC half of issue 11
        except ImportError as e:
            sys.exit(f"bench/scale.py --dataset mimic needs bench/scale_mimic.py ({e})")
        return scale_mimic.main(rest)
    work = Path(args.work)
    if args._stage:
        import resource
        facts = run_stage(args._stage, work, json.loads(args._opt))
        facts["_self_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if "pyarrow" in sys.modules:     # Arrow's pool: its high-water mark, what it still holds
            import pyarrow as pa
            pool = pa.default_memory_pool()
            facts["arrow_pool"] = {"backend": pool.backend_name,
                                   "max_mb": round(pool.max_memory() / 2**20),
                                   "end_mb": round(pool.bytes_allocated() / 2**20)}
        print(json.dumps(facts))
        return 0
    sizes = args.sizes.split(",")
    for s in sizes:
        split_rows(s)    # fail fast on a bad size
    stages = [s for s in args.stages.split(",") if s]
    limits = {k: int(v) for k, v in (x.split("=") for x in args.max_rows.split(",") if x)}
    dims = tuple(int(x) for x in args.dims.split(","))
    work.mkdir(parents=True, exist_ok=True)
    make_inputs(work / "inputs", args.w, args.pool_images, args.pool_clips, dims)
    opt = {"w": args.w, "eval_d": args.eval_d, "eval_batch": args.eval_batch,
           "text_model": tiny_text_model(work / "inputs")}
    results: dict = {}
    for size in sizes:
        d = work / f"size-{size}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for stage in stages:
            if stage_rows(stage, size) > limits.get(stage, 1 << 62):
                break   # this and the later stages (which need its output) are extrapolated
            results.setdefault(size, {})[stage] = measure(stage, d, {**opt, "size": size})
            print(json.dumps({size: {stage: results[size][stage]}}), file=sys.stderr)
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    fits = summarise(results, sizes)
    if not args.keep:
        shutil.rmtree(work / "inputs", ignore_errors=True)
    print(json.dumps({"dataset": "m3", "w": args.w, "dims": dims, "eval_d": args.eval_d,
                      "eval_batch": args.eval_batch,
                      "pool": {"images_per_class": args.pool_images,
                               "clips_per_language": args.pool_clips},
                      "sizes": {s: {"train_val_test": split_rows(s), **results.get(s, {})}
                                for s in sizes}, "fit": fits}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
