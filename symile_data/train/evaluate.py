"""Zero-shot evaluation with bootstrap confidence intervals (SPEC sections 2-4).

Each task yields one 0/1 result per query; the bootstrap resamples those cached results
(no re-inference per resample). Scores: Symile = MIP(candidate, queries...), CLIP = sum of
pairwise dot products. Ties are broken at random with a seeded generator.
- XOR: predict b from (a, c) among all 2^d_v bit vectors (chance 1 / 2^d_v).
- M3: predict the image from (audio, text) among all distinct test images (by image_key);
  correct when the retrieved image's class equals the query's class (chance ~ 1 / classes).
- MIMIC: predict the CXR from (ECG, labs) among the stored candidate sets (1 of K).
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from symile_data.io.reader import ParquetIterable, ParquetMapDataset, split_files
from symile_data.train.config import EvalConfig
from symile_data.train.loss import clip_scores, mip_scores
from symile_data.train.loop import autocast, pick_device, to_device

log = logging.getLogger(__name__)


def bootstrap(correct: np.ndarray, n_resamples: int = 10, seed: int = 0) -> dict[str, Any]:
    """Accuracy and its bootstrap spread over ``n_resamples`` resamples of the queries."""
    correct = np.asarray(correct, dtype=np.float64)
    n = len(correct)
    if n == 0:
        raise ValueError("no queries to evaluate")
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    means = correct[idx].mean(axis=1)                      # (R,)
    return {"accuracy": float(correct.mean()), "n_queries": n, "n_resamples": n_resamples,
            "bootstrap_mean": float(means.mean()),
            "bootstrap_std": float(means.std(ddof=1)) if n_resamples > 1 else 0.0,
            "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]}


def argmax_random_ties(scores: Tensor, generator: torch.Generator) -> Tensor:
    """(Q, C) scores -> (Q,) index of a maximum, uniform among exact ties."""
    keys = torch.rand(scores.shape, generator=generator)
    keys[scores.cpu() < scores.cpu().max(dim=1, keepdim=True).values] = -1.0
    return keys.argmax(dim=1)


def score_fn(loss: str):
    return mip_scores if loss == "symile" else clip_scores


def set_scores(loss: str, candidates: Tensor, queries: Sequence[Tensor]) -> Tensor:
    """Per-query candidate sets: candidates (Q, K, d), queries [(Q, d)] -> (Q, K)."""
    if loss == "symile":
        return (candidates * torch.stack(list(queries)).prod(0).unsqueeze(1)).sum(-1)
    out = (candidates * torch.stack(list(queries)).sum(0).unsqueeze(1)).sum(-1)
    for i, j in itertools.combinations(range(len(queries)), 2):
        out = out + (queries[i] * queries[j]).sum(-1, keepdim=True)
    return out


@torch.no_grad()
def _encode(model, batches, modalities: Sequence[str], device
            ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Stream batches through the encoders; returns ({modality: (rows, d) float32 cpu},
    {column: numpy array / list})."""
    out: dict[str, list] = {m: [] for m in modalities}
    extra: dict[str, list] = {}
    for batch in batches:
        dev_batch = to_device(batch, device)
        with autocast(device):
            for m in modalities:
                out[m].append(model.encode(m, dev_batch).float().cpu())
        for k, v in batch.items():
            extra.setdefault(k, []).append(v)
    cols = {k: (torch.cat(v).numpy() if isinstance(v[0], Tensor) else sum(map(list, v), []))
            for k, v in extra.items()}
    return {m: torch.cat(v) for m, v in out.items()}, cols


def _argmax_chunks(loss: str, candidates: Tensor, queries: Sequence[Tensor], chunk: int,
                   gen: torch.Generator) -> np.ndarray:
    fn = score_fn(loss)
    preds = [argmax_random_ties(fn(candidates, [q[s:s + chunk] for q in queries]), gen)
             for s in range(0, len(queries[0]), chunk)]
    return torch.cat(preds).numpy()


def eval_xor(model, loss: str, dataset_dir: Path, cfg: EvalConfig, device) -> np.ndarray:
    data = ParquetMapDataset(split_files(dataset_dir, cfg.split)).read_all(["a", "b", "c"])
    d_v = data["b"].shape[1]
    bits = torch.tensor(list(itertools.product([0, 1], repeat=d_v)), dtype=torch.int8)
    enc, _ = _encode(model, [data], ("a", "c"), device)
    with torch.no_grad(), autocast(device):
        cand = model.encode("b", to_device({"b": bits}, device)).float().cpu()   # (2^d_v, d)
    gen = torch.Generator().manual_seed(cfg.seed)
    pred = _argmax_chunks(loss, cand, [enc["a"], enc["c"]], cfg.batch_size, gen)
    true = data["b"].long() @ (2 ** torch.arange(d_v - 1, -1, -1))          # row index in bits
    return pred == true.numpy()


def eval_m3(model, loss: str, dataset_dir: Path, cfg: EvalConfig, device) -> np.ndarray:
    pred_cls, true_cls, _ = m3_predict(model, loss, dataset_dir, cfg, device)
    return pred_cls == true_cls


def m3_predict(model, loss: str, dataset_dir: Path, cfg: EvalConfig, device,
               columns: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(retrieved image's cls_id, query's cls_id, {column: the queries' values}) per query."""
    files = split_files(dataset_dir, cfg.split)
    cols = list(dict.fromkeys([*model.columns, "image_key", *columns]))
    batches = ParquetIterable(files, columns=cols, batch_size=cfg.batch_size)
    enc, col = _encode(model, batches, ("image", "audio", "text"), device)
    observed = ~(col["image_missing"] | col["audio_missing"] | col["text_missing"])
    keys = np.asarray(col["image_key"], dtype=object)
    # candidates: every distinct fully observed test image (first row carrying each key)
    _, first = np.unique(keys[observed], return_index=True)
    cand_rows = np.flatnonzero(observed)[first]
    q_rows = np.flatnonzero(observed)
    gen = torch.Generator().manual_seed(cfg.seed)
    pred = _argmax_chunks(loss, enc["image"][cand_rows],
                          [enc["audio"][q_rows], enc["text"][q_rows]], cfg.batch_size, gen)
    return (col["cls_id"][cand_rows][pred], col["cls_id"][q_rows],
            {c: np.asarray(col[c], dtype=object)[q_rows] for c in columns})


def eval_mimic(model, loss: str, dataset_dir: Path, retrieval_dir: Path, cfg: EvalConfig,
               device) -> np.ndarray:
    files = split_files(dataset_dir, cfg.split)
    batches = ParquetIterable(files, columns=list(model.columns) + ["hadm_id"],
                              batch_size=cfg.batch_size)
    enc, col = _encode(model, batches, ("ecg", "labs", "cxr"), device)
    sets = ParquetMapDataset(split_files(retrieval_dir, cfg.split)).read_all(
        ["query_hadm_id", "candidate_hadm_ids", "label"])
    hadm = col["hadm_id"]
    order = np.argsort(hadm, kind="stable")

    def rows_of(ids: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(hadm, ids, sorter=order), 0, len(hadm) - 1)
        rows = order[pos]
        if not np.array_equal(hadm[rows], ids):
            missing = np.setdiff1d(ids, hadm)[:5]
            raise ValueError(f"{retrieval_dir}: hadm_id(s) {missing.tolist()} of the "
                             f"'{cfg.split}' retrieval sets are not in {dataset_dir}")
        return rows

    q = torch.from_numpy(rows_of(sets["query_hadm_id"].numpy()))
    c = torch.from_numpy(rows_of(sets["candidate_hadm_ids"].numpy().reshape(-1))
                         ).view(len(q), -1)                                  # (Q, K)
    scores = set_scores(loss, enc["cxr"][c], [enc["ecg"][q], enc["labs"][q]])
    pred = argmax_random_ties(scores, torch.Generator().manual_seed(cfg.seed))
    return pred.numpy() == sets["label"].long().numpy()


def evaluate_run(run_dir: str | Path, dataset_dir: str | Path, cfg: EvalConfig,
                 retrieval_dir: str | Path | None = None, device: str | None = None
                 ) -> tuple[dict[str, Any], np.ndarray]:
    """Evaluate one trained run; returns (metrics, per-query 0/1 results)."""
    from symile_data.train.factory import load_checkpoint_model
    run_dir, dataset_dir = Path(run_dir), Path(dataset_dir)
    dev = pick_device(device)
    model, payload = load_checkpoint_model(run_dir / f"{cfg.checkpoint}.pt", dev)
    model.to(dev)
    kind, loss = payload["spec"]["kind"], payload["loss"]
    if kind == "xor":
        correct = eval_xor(model, loss, dataset_dir, cfg, dev)
    elif kind == "m3":
        correct = eval_m3(model, loss, dataset_dir, cfg, dev)
    else:
        if retrieval_dir is None:
            raise ValueError("MIMIC evaluation needs the retrieval sets dir (--retrieval)")
        correct = eval_mimic(model, loss, dataset_dir, Path(retrieval_dir), cfg, dev)
    metrics = {"model": kind, "loss": loss, "split": cfg.split, "run_dir": str(run_dir),
               **bootstrap(correct, cfg.bootstrap_resamples, cfg.seed)}
    return metrics, correct
