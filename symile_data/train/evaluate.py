"""Zero-shot evaluation with bootstrap confidence intervals (SPEC sections 2-4).

Each task yields one 0/1 result per query; the bootstrap resamples those cached results
(no re-inference per resample). Scores: Symile = MIP(candidate, queries...), CLIP = sum of
pairwise dot products. Ties are broken at random with a seeded generator.
- XOR: predict b from (a, c) among all 2^d_v bit vectors (chance 1 / 2^d_v).
- M3: predict the image from (audio, text) among all distinct test images (by image_key);
  correct when the retrieved image's class equals the query's class (chance ~ 1 / classes).
- MIMIC: predict the CXR from (ECG, labs) among the stored candidate sets (1 of K).
M3 and MIMIC stream: queries in chunks of ``batch_size``, candidate embeddings in a bounded
store (``train/retrieval.py``), so memory does not grow with the split; the chunks, scores
and tie-break stream are those of the whole-split computation, so the results are the same.
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import Tensor

from symile_data.io.memory import release_unused
from symile_data.io.openfile import parquet_file
from symile_data.io.reader import ParquetIterable, ParquetMapDataset, split_files
from symile_data.train.config import EvalConfig
from symile_data.train.loss import clip_scores, mip_scores
from symile_data.train.retrieval import EmbeddingStore, TieKeys, argmax_streamed
from symile_data.train.loop import autocast, pick_device, to_device

log = logging.getLogger(__name__)
CANDIDATE_BATCH = 65_536     # rows per batch of the candidate scan (key columns only)


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


def _nrows(batch: dict[str, Any]) -> int:
    return len(next(iter(batch.values())))


def _first_per_key(keys: pa.Array, rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Distinct ``keys`` in ascending order, each with the first of its ``rows`` (the rows of
    equal keys are ascending in input order)."""
    order = pc.sort_indices(keys).to_numpy()          # stable: first row of a key first
    ks = keys.take(pa.array(order))
    new = pc.not_equal(ks.slice(1), ks.slice(0, len(ks) - 1)).to_numpy(zero_copy_only=False) \
        if len(ks) > 1 else np.zeros(0, bool)
    first = np.concatenate([[0], 1 + np.flatnonzero(new)]).astype(np.int64) if len(ks) \
        else np.zeros(0, np.int64)
    return ks.take(pa.array(first)), rows[order[first]]


def m3_candidates(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate rows, fully observed mask (rows,), cls_id (rows,)) of a split, streamed.

    Candidates: every distinct fully observed image (by image_key), the first row carrying
    each key, in key order (np.unique's order). Memory: 3 bytes per row, the distinct keys
    and one batch: each batch's keys are merged into the running distinct set (earlier rows
    sort first among equal keys, so the first row of each key survives), never all rows' keys.
    """
    cols = ["image_key", "cls_id", "image_missing", "audio_missing", "text_missing"]
    obs, cls, pos = [], [], 0
    uniq, first = pa.array([], pa.string()), np.zeros(0, np.int64)
    for f in files:
        for b in parquet_file(f).iter_batches(batch_size=CANDIDATE_BATCH, columns=cols):
            t = pa.Table.from_batches([b])
            miss = [t[c].to_numpy(zero_copy_only=False) for c in cols[2:]]
            obs.append(~(miss[0] | miss[1] | miss[2]))
            cls.append(t["cls_id"].to_numpy(zero_copy_only=False))
            k = t["image_key"].combine_chunks().cast(pa.string()).filter(pa.array(obs[-1]))
            uniq, first = _first_per_key(pa.concat_arrays([uniq, k]), np.concatenate(
                [first, pos + np.flatnonzero(obs[-1])]))
            pos += len(obs[-1])
        release_unused()
    observed = np.concatenate(obs) if obs else np.zeros(0, bool)
    return first, observed, np.concatenate(cls) if cls else np.zeros(0, np.int16)


@torch.no_grad()
def _embed(model, modality: str, batch: dict[str, Any], device) -> Tensor:
    with autocast(device):
        return model.encode(modality, to_device(batch, device)).float().cpu()


def m3_predict_chunks(model, loss: str, dataset_dir: Path, cfg: EvalConfig, device,
                      columns: Sequence[str] = ()
                      ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Per query chunk: (retrieved image's cls_id, query's cls_id, {column: values}).

    Streamed: one pass stores the candidates' image embeddings (``EmbeddingStore``: RAM up to
    1 GiB, else on disk), a second streams the queries in chunks of ``cfg.batch_size`` and
    scores each against the candidates (read in bounded chunks). Same batches, chunks and
    tie-breaks as scoring the whole split at once, hence the same results.
    """
    files = split_files(dataset_dir, cfg.split)
    cand_rows, observed, cls = m3_candidates(files)
    slot = np.full(len(observed), -1, np.int64)
    slot[cand_rows] = np.arange(len(cand_rows))
    cand_cls = cls[cand_rows]
    store, pos = None, 0
    for batch in ParquetIterable(files, columns=list(model.columns), batch_size=cfg.batch_size):
        n = _nrows(batch)
        s = slot[pos:pos + n]
        pos += n
        if (s >= 0).any():
            emb = _embed(model, "image", batch, device)
            store = store or EmbeddingStore(len(cand_rows), emb.shape[1])
            store.put(s[s >= 0], emb[torch.from_numpy(s >= 0)])
    fn, keys, bs = score_fn(loss), TieKeys(torch.Generator().manual_seed(cfg.seed)), \
        cfg.batch_size
    cols = list(dict.fromkeys([*model.columns, *columns]))
    buf: dict[str, list] = {"audio": [], "text": [], "row": []}
    vals: dict[str, list] = {c: [] for c in columns}     # query column values (e.g. "text")
    pos = q_done = 0

    def flush(k: int):
        nonlocal q_done
        a, t = torch.cat(buf["audio"]), torch.cat(buf["text"])
        rows = np.concatenate(buf["row"])
        extra = {c: sum(v, []) for c, v in vals.items()}
        pred = argmax_streamed(lambda c: fn(c, [a[:k], t[:k]]), store, k, q_done, keys)
        q_done += k
        release_unused()      # the chunk's freed tensors / row groups go back to the OS
        buf.update(audio=[a[k:]], text=[t[k:]], row=[rows[k:]])
        vals.update({c: [v[k:]] for c, v in extra.items()})
        return cand_cls[pred], cls[rows[:k]], {c: v[:k] for c, v in extra.items()}

    try:
        for batch in ParquetIterable(files, columns=cols, batch_size=bs):
            n = _nrows(batch)
            ob = observed[pos:pos + n]
            if ob.any():
                sel = torch.from_numpy(ob)
                buf["audio"].append(_embed(model, "audio", batch, device)[sel])
                buf["text"].append(_embed(model, "text", batch, device)[sel])
                buf["row"].append(pos + np.flatnonzero(ob))
                for c in columns:
                    vals[c].append([v for v, o in zip(batch[c], ob) if o])
            pos += n
            while sum(len(r) for r in buf["row"]) >= bs:
                yield flush(bs)
        left = sum(len(r) for r in buf["row"])
        if left:
            yield flush(left)
    finally:
        if store is not None:
            store.close()


def m3_predict(model, loss: str, dataset_dir: Path, cfg: EvalConfig, device,
               columns: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(retrieved image's cls_id, query's cls_id, {column: the queries' values}) per query."""
    parts = list(m3_predict_chunks(model, loss, dataset_dir, cfg, device, columns))
    if not parts:
        return np.zeros(0, np.int16), np.zeros(0, np.int16), {c: np.zeros(0, object)
                                                              for c in columns}
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            {c: np.asarray(sum((list(p[2][c]) for p in parts), []), dtype=object)
             for c in columns})


def _mimic_store(model, files: Sequence[Path], cfg: EvalConfig, device
                 ) -> tuple[dict[str, EmbeddingStore], np.ndarray]:
    """Every row's (ecg, labs, cxr) embeddings in stores (RAM or disk), and hadm_id per row."""
    stores: dict[str, EmbeddingStore] = {}
    hadm, pos = [], 0
    n_rows = sum(parquet_file(f).metadata.num_rows for f in files)
    batches = ParquetIterable(files, columns=list(model.columns) + ["hadm_id"],
                              batch_size=cfg.batch_size)
    for batch in batches:
        n = _nrows(batch)
        for m in ("ecg", "labs", "cxr"):
            emb = _embed(model, m, batch, device)
            if m not in stores:
                stores[m] = EmbeddingStore(n_rows, emb.shape[1])
            stores[m].put(np.arange(pos, pos + n), emb)
        hadm.append(np.asarray(batch["hadm_id"]))
        pos += n
    return stores, (np.concatenate(hadm) if hadm else np.zeros(0, np.int64))


def eval_mimic(model, loss: str, dataset_dir: Path, retrieval_dir: Path, cfg: EvalConfig,
               device) -> np.ndarray:
    """Queries in chunks of ``cfg.batch_size``; embeddings stored once (RAM up to 1 GiB)."""
    files = split_files(dataset_dir, cfg.split)
    stores, hadm = _mimic_store(model, files, cfg, device)
    sets = ParquetMapDataset(split_files(retrieval_dir, cfg.split)).read_all(
        ["query_hadm_id", "candidate_hadm_ids", "label"])
    order = np.argsort(hadm, kind="stable")

    def rows_of(ids: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(hadm, ids, sorter=order), 0, len(hadm) - 1)
        rows = order[pos]
        if not np.array_equal(hadm[rows], ids):
            missing = np.setdiff1d(ids, hadm)[:5]
            raise ValueError(f"{retrieval_dir}: hadm_id(s) {missing.tolist()} of the "
                             f"'{cfg.split}' retrieval sets are not in {dataset_dir}")
        return rows

    q = rows_of(sets["query_hadm_id"].numpy())
    c = rows_of(sets["candidate_hadm_ids"].numpy().reshape(-1)).reshape(len(q), -1)  # (Q, K)
    gen = torch.Generator().manual_seed(cfg.seed)
    preds = []
    try:
        for lo in range(0, len(q), cfg.batch_size):   # torch.rand per chunk = one (Q, K) draw
            qs, cs = q[lo:lo + cfg.batch_size], c[lo:lo + cfg.batch_size]
            cand = stores["cxr"].take(cs.reshape(-1)).view(len(qs), cs.shape[1], -1)
            scores = set_scores(loss, cand, [stores["ecg"].take(qs), stores["labs"].take(qs)])
            preds.append(argmax_random_ties(scores, gen))
    finally:
        for st in stores.values():
            st.close()
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
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
