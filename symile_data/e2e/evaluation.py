"""Zero-shot evaluation of every trained M3 / MIMIC run of the pipeline -> one metrics JSON.

M3 runs also get the *in-text* accuracy: the share of queries whose retrieved image shows one of
the w classes named in the query's text. Pairwise CLIP can find those w candidates from text
alone but cannot tell which one the audio's language selects, so its accuracy is bounded near
in-text / w; Symile can use the (audio, text) pair jointly and go beyond it (SPEC section 2).

Output JSON: {"kind", "split", "runs": [{"run", "run_dir", "method", "p", "dataset", "accuracy",
"bootstrap_mean", "bootstrap_std", "ci95", "n_queries", ["in_text_accuracy", "w",
"clip_bound"], "best_epoch"}]}; per-query 0/1 results go to ``{out_dir}/per_query/{run}.npy``.
Nothing run-varying is in them (DVC hashes both): training times stay in the runs' logs
(symile_data.runlog), where the report reads them through ``run_dir``.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from symile_data.io.atomic import atomic_write_json, atomic_write_npy, read_json
from symile_data.m3.build import load_resolved
from symile_data.train.config import EvalConfig
from symile_data.train.evaluate import bootstrap, evaluate_run, m3_predict_chunks
from symile_data.train.factory import load_checkpoint_model
from symile_data.train.loop import pick_device

log = logging.getLogger(__name__)
MISS_RE = re.compile(r"-miss([0-9.eE+-]+)$")


def missing_p(dataset_name: str) -> float:
    """"symile-m3-2-demo-miss0.5" -> 0.5; a name without the suffix -> 0.0."""
    m = MISS_RE.search(dataset_name)
    return float(m.group(1)) if m else 0.0


def word_classes(translations_dir: str | Path) -> tuple[pa.Array, np.ndarray]:
    """(every class-name string of every language, its cls_id) from the resolved table."""
    rows = load_resolved(translations_dir)
    langs = [k for k in rows[0] if k not in ("cls_id", "synset_id")]
    words = [r[lang] for r in rows for lang in langs]
    cls = np.repeat(np.array([r["cls_id"] for r in rows], dtype=np.int64), len(langs))
    return pa.array(words, pa.string()), cls


def in_text(pred_cls: np.ndarray, texts: Sequence[str], words: pa.Array, word_cls: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """((Q,) bool: the retrieved class is one of the classes named in the query text, (Q,) number
    of words) for "_"-joined texts. Vectorised: split, look every word up, compare, any()."""
    parts = pc.split_pattern(pa.array(list(texts), pa.string()), "_")
    flat = pc.list_flatten(parts)
    found = pc.index_in(flat, value_set=words)                  # null = unknown word
    if found.null_count:
        bad = flat.filter(pc.is_null(found))[:5].to_pylist()
        raise ValueError(f"query words {bad} are not class names of the translation table")
    lens = pc.list_value_length(parts).to_numpy()
    hit = word_cls[found.to_numpy().astype(np.int64)] == np.repeat(pred_cls, lens)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    return np.add.reduceat(hit.astype(np.int64), starts) > 0, lens


def _save_per_query(out_dir: Path, run: str, correct: np.ndarray) -> None:
    atomic_write_npy(out_dir / "per_query" / f"{run}.npy", correct.astype(np.int8))


def _run_info(run_dir: Path) -> dict[str, Any]:
    done = read_json(run_dir / "done.json")
    return {"run": f"{run_dir.parent.name}/{run_dir.name}", "run_dir": str(run_dir),
            "method": done["loss"],
            "dataset": Path(done["dataset_dir"]).name, "dataset_dir": done["dataset_dir"],
            "p": missing_p(Path(done["dataset_dir"]).name), "best_epoch": done["best_epoch"],
            "epochs": done["epochs"]}


def _runs(run_dirs: Sequence[str | Path]) -> list[Path]:
    runs = [Path(r) for r in run_dirs]
    missing = [str(r) for r in runs if not (r / "done.json").exists()]
    if missing:
        raise FileNotFoundError(f"unfinished or missing training run(s) {missing}: no done.json")
    return runs


def evaluate_m3_runs(run_dirs: Sequence[str | Path], translations_dir: str | Path,
                     cfg: EvalConfig, out_json: str | Path, device: str | None = None
                     ) -> dict[str, Any]:
    """Evaluate M3 runs (each on the dataset it was trained on) with in-text accuracy."""
    out_json = Path(out_json)
    words, word_cls = word_classes(translations_dir)
    dev = pick_device(device)
    runs = []
    for run_dir in _runs(run_dirs):
        info = _run_info(run_dir)
        model, payload = load_checkpoint_model(run_dir / f"{cfg.checkpoint}.pt", dev)
        correct, inside, w = [], [], 0
        for pred, true, cols in m3_predict_chunks(model.to(dev), payload["loss"],
                                                  Path(info["dataset_dir"]), cfg, dev,
                                                  columns=("text",)):   # streamed per chunk
            hit, n_words = in_text(pred, cols["text"], words, word_cls)
            correct.append(pred == true)
            inside.append(hit)
            w = max(w, int(n_words.max()))
        correct = np.concatenate(correct) if correct else np.zeros(0, bool)
        inside = np.concatenate(inside) if inside else np.zeros(0, bool)
        boot = bootstrap(correct, cfg.bootstrap_resamples, cfg.seed)
        runs.append({**info, **boot, "w": w, "in_text_accuracy": float(inside.mean()),
                     "clip_bound": float(inside.mean()) / w})
        _save_per_query(out_json.parent, run_dir.name, correct)
        log.info("%s: accuracy %.4f (95%% interval %.3f-%.3f), in-text %.4f", info["run"],
                 boot["accuracy"], *boot["ci95"], inside.mean())
    report = {"kind": "m3", "split": cfg.split, "chance": 1.0 / len(np.unique(word_cls)),
              "runs": runs}
    atomic_write_json(out_json, report)
    return report


def evaluate_mimic_runs(run_dirs: Sequence[str | Path], retrieval_dir: str | Path,
                        cfg: EvalConfig, out_json: str | Path, device: str | None = None
                        ) -> dict[str, Any]:
    """Evaluate MIMIC runs on the stored retrieval sets (1 of K candidates)."""
    out_json = Path(out_json)
    k = read_json(Path(retrieval_dir) / "manifest.json").get("extra", {}).get("n_candidates")
    runs = []
    for run_dir in _runs(run_dirs):
        info = _run_info(run_dir)
        metrics, correct = evaluate_run(run_dir, info["dataset_dir"], cfg,
                                        retrieval_dir=retrieval_dir, device=device)
        runs.append({**info, **{key: v for key, v in metrics.items()
                                if key not in ("run_dir", "model", "loss", "split")},
                     "n_candidates": k})
        _save_per_query(out_json.parent, run_dir.name, correct)
        log.info("%s: accuracy %.4f (95%% interval %.3f-%.3f)", info["run"],
                 metrics["accuracy"], *metrics["ci95"])
    report = {"kind": "mimic", "split": cfg.split, "chance": 1.0 / k if k else None,
              "runs": runs}
    atomic_write_json(out_json, report)
    return report
