"""The Symile objective, the pairwise CLIP baseline and zero-shot scores (SPEC section 1).

Tensors only. ``embeddings`` is a list of M >= 2 tensors of shape (N, d), row i of every tensor
being one positive tuple. ``logit_scale`` is a learned scalar used as ``exp(logit_scale)``
(no clamp).

Negatives (``negatives``):
- ``"n"``: for each anchor and each non-anchor modality one random permutation of the batch
  (drawn from ``generator`` in the order anchor 0..M-1, then the other modalities in index
  order); column j is the tuple of permuted rows, the diagonal holds the true positive MIP.
  For M = 2 this is InfoNCE over a permuted copy of the other modality (the positive overwrites
  the diagonal, so one negative may be dropped and another repeated).
- ``"n_squared"``: every combination of the other modalities' rows, N^(M-1) columns, the aligned
  tuple (i, ..., i) as the positive. All M anchors' logits are slices of one score tensor
  T[i0, ..., i_{M-1}] = MIP(x0[i0], ..., x_{M-1}[i_{M-1}]), so T (N^M entries) is computed
  once, in chunks whose (chunk, N^(M-2), d) products are rebuilt in the backward pass
  (a custom autograd function) instead of kept: memory O(N^M + chunk * N^(M-2) * d) instead of
  the reference's O(N^(M-1) * d) per anchor. Past ``max_logits`` entries it refuses.
  For M = 2 this is exactly the symmetric InfoNCE (mean of the two directions).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

NEGATIVES = ("n", "n_squared")
DEFAULT_MAX_LOGITS = 2 ** 28          # entries of the O(N^2) score tensor (1 GiB in fp32)
DEFAULT_CHUNK_ELEMENTS = 2 ** 24      # entries of one (chunk, N^(M-2), d) product


class LossInputError(ValueError):
    """Embeddings or options that cannot give a meaningful loss."""


def _check(embeddings: Sequence[Tensor], logit_scale: Tensor | None = None,
           min_m: int = 2) -> list[Tensor]:
    embs = list(embeddings)
    if len(embs) < min_m:
        raise LossInputError(f"need at least {min_m} modalities, got M = {len(embs)}")
    for m, e in enumerate(embs):
        if not isinstance(e, Tensor) or e.dim() != 2:
            shape = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
            raise LossInputError(f"embedding {m} must be an (N, d) tensor, got {shape}")
    n, d = embs[0].shape
    for m, e in enumerate(embs[1:], start=1):
        if e.shape[0] != n:
            raise LossInputError(f"batch sizes differ: embedding 0 has N = {n}, "
                                 f"embedding {m} has N = {e.shape[0]}")
        if e.shape[1] != d:
            raise LossInputError(f"embedding dimensions differ: embedding 0 has d = {d}, "
                                 f"embedding {m} has d = {e.shape[1]}")
    if n < 1:
        raise LossInputError("empty batch (N = 0)")
    if logit_scale is not None and (not isinstance(logit_scale, Tensor)
                                    or logit_scale.numel() != 1):
        raise LossInputError("logit_scale must be a one-element tensor")
    return embs


def _finite(x: Tensor, what: str) -> Tensor:
    """Raise on NaN / inf (checked on the (N, d) inputs and on the scalar loss, which any
    non-finite logit reaches, instead of on every O(N^2) logits matrix)."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise FloatingPointError(f"{what}: {bad} non-finite value(s) (NaN/inf in the "
                                 f"embeddings, logit_scale or logits); refusing to return a loss")
    return x


def _maybe_normalize(embs: list[Tensor], normalize: bool) -> list[Tensor]:
    return [F.normalize(e, dim=-1) for e in embs] if normalize else embs


def _ce_diag(logits: Tensor) -> Tensor:
    """Cross-entropy of an (N, C) logits matrix with target i for row i (C >= N)."""
    target = torch.arange(logits.shape[0], device=logits.device)
    if logits.dtype in (torch.float16, torch.bfloat16):   # softmax in fp32 under autocast
        logits = logits.float()
    return F.cross_entropy(logits, target)


def _mip_rows(embs: Sequence[Tensor]) -> Tensor:
    """Row-wise MIP of aligned rows: (N,), without an (M, N, d) stack."""
    prod = embs[0]
    for e in embs[1:]:
        prod = prod * e
    return prod.sum(-1)


def _symile_n(embs: list[Tensor], scale: Tensor, generator: torch.Generator | None) -> Tensor:
    n = embs[0].shape[0]
    positive = _mip_rows(embs)                            # (N,) MIP of aligned tuples
    losses = []
    for m, anchor in enumerate(embs):
        neg = None                                        # (N, d) product of permuted rows
        for ell, other in enumerate(embs):
            if ell == m:
                continue
            perm = torch.randperm(n, generator=generator, device="cpu").to(other.device)
            neg = other[perm] if neg is None else neg * other[perm]
        logits = anchor @ neg.T                           # (N, N)
        logits.diagonal().copy_(positive)                 # the true positive on the diagonal
        losses.append(_ce_diag(scale * logits))
    return torch.stack(losses).mean()


def _factor_product(first: Tensor, mids: Sequence[Tensor]) -> Tensor:
    """(c, d) rows of modality 0 times every combination of the middle modalities' rows:
    (c, N, ..., N, d) with M - 2 axes of N."""
    prod = first
    for other in mids:                                    # grow (c, N, ..., N, d)
        n, d = other.shape
        prod = prod.unsqueeze(-2) * other.reshape((1,) * (prod.dim() - 1) + (n, d))
    return prod


class _MIPChunk(torch.autograd.Function):
    """T rows for a chunk of modality 0: P @ last.T with P = _factor_product(first, mids).

    Only the inputs are saved; backward rebuilds P (elementwise, no matmul) and uses two
    matmuls (grad of P and of ``last``), so a chunk costs 3 (chunk * N^(M-1) * d) matmul
    flops in all instead of 4 with generic activation checkpointing.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")      # backward under the forward's autocast
    def forward(ctx, last: Tensor, first: Tensor, *mids: Tensor) -> Tensor:
        ctx.save_for_backward(last, first, *mids)
        return _factor_product(first, mids) @ last.T     # (c, N, ..., N)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor):
        last, first, *mids = ctx.saved_tensors
        with torch.enable_grad():
            factors = [t.detach().requires_grad_() for t in (first, *mids)]
            prod = _factor_product(factors[0], factors[1:])           # (c, N.., d)
            grad_prod = grad @ last                                   # (c, N.., d)
            grad_last = grad.reshape(-1, last.shape[0]).T @ prod.detach().reshape(
                -1, last.shape[1])                                    # (N, d)
            grads = torch.autograd.grad(prod, factors, grad_prod)
        return (grad_last, *grads)


def mip_tensor(embeddings: Sequence[Tensor], chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
               max_logits: int = DEFAULT_MAX_LOGITS) -> Tensor:
    """T[i0, ..., i_{M-1}] = sum_k prod_m x_m[i_m, k], shape (N,) * M, chunked over axis 0."""
    embs = _check(embeddings)
    n, d = embs[0].shape
    m = len(embs)
    total = n ** m
    if total > max_logits:
        raise LossInputError(
            f"O(N^2) negatives with N = {n}, M = {m} need a score tensor of N^M = {total:,} "
            f"entries, above max_logits = {max_logits:,}; use negatives='n', a smaller batch, "
            f"or raise max_logits")
    if m == 2:
        return embs[0] @ embs[1].T
    per_row = n ** (m - 2) * d
    chunk = max(1, chunk_elements // per_row)
    need_grad = torch.is_grad_enabled() and any(e.requires_grad for e in embs)
    parts = []
    for s in range(0, n, chunk):
        rows = embs[0][s:s + chunk]
        if need_grad:
            parts.append(_MIPChunk.apply(embs[-1], rows, *embs[1:-1]))
        else:
            parts.append(_factor_product(rows, embs[1:-1]) @ embs[-1].T)
    return torch.cat(parts, 0)


def _symile_n_squared(embs: list[Tensor], scale: Tensor, max_logits: int,
                      chunk_elements: int) -> Tensor:
    n, m = embs[0].shape[0], len(embs)
    t = mip_tensor(embs, chunk_elements, max_logits)
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    logits = scale * t
    # flat index of the aligned tuple (i, ..., i): i * (1 + N + ... + N^(M-1))
    stride = sum(n ** k for k in range(m))
    diag = logits.reshape(-1)[torch.arange(n, device=t.device) * stride]   # (N,)
    losses = []
    for a in range(m):
        lse = torch.logsumexp(logits.movedim(a, 0).reshape(n, -1), dim=1)   # (N,)
        losses.append((lse - diag).mean())
    return torch.stack(losses).mean()


def symile_loss(embeddings: Sequence[Tensor], logit_scale: Tensor, negatives: str = "n",
                generator: torch.Generator | None = None, normalize: bool = False,
                max_logits: int = DEFAULT_MAX_LOGITS,
                chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> Tensor:
    """Mean over the M anchors of the row-wise cross-entropy (SPEC section 1); scalar."""
    if negatives not in NEGATIVES:
        raise LossInputError(f"unknown negatives mode {negatives!r}; expected one of {NEGATIVES}")
    embs = _maybe_normalize(_check(embeddings, logit_scale), normalize)
    scale = logit_scale.reshape(()).exp()
    if negatives == "n":
        return _finite(_symile_n(embs, scale, generator), "symile O(N) loss")
    return _finite(_symile_n_squared(embs, scale, max_logits, chunk_elements),
                   "symile O(N^2) loss")


def clip_loss(embeddings: Sequence[Tensor], logit_scale: Tensor,
              normalize: bool = False) -> Tensor:
    """Symmetric InfoNCE for every pair of modalities, SUMMED over the M(M-1)/2 pairs."""
    embs = _maybe_normalize(_check(embeddings, logit_scale), normalize)
    scale = logit_scale.reshape(()).exp()
    total = 0.0
    for i in range(len(embs)):
        for j in range(i + 1, len(embs)):
            logits = (scale * embs[i]) @ embs[j].T                      # (N, N)
            total = total + (_ce_diag(logits) + _ce_diag(logits.T)) / 2
    return _finite(total, "clip loss")


def mip_scores(candidates: Tensor, queries: Sequence[Tensor]) -> Tensor:
    """Symile zero-shot scores MIP(candidate, q_1, ..., q_k): (num_queries, num_candidates)."""
    qs = _check(list(queries), min_m=1)
    if candidates.dim() != 2 or candidates.shape[1] != qs[0].shape[1]:
        raise LossInputError(f"candidates must be (C, {qs[0].shape[1]}), "
                             f"got {tuple(candidates.shape)}")
    return torch.stack(qs).prod(0) @ candidates.T


def clip_scores(candidates: Tensor, queries: Sequence[Tensor]) -> Tensor:
    """CLIP zero-shot scores: sum of pairwise dot products (the query-query terms are constant
    per query and kept so that scores equal the SPEC's sum). (num_queries, num_candidates)."""
    qs = _check(list(queries), min_m=1)
    if candidates.dim() != 2 or candidates.shape[1] != qs[0].shape[1]:
        raise LossInputError(f"candidates must be (C, {qs[0].shape[1]}), "
                             f"got {tuple(candidates.shape)}")
    scores = torch.stack(qs).sum(0) @ candidates.T
    for i in range(len(qs)):
        for j in range(i + 1, len(qs)):
            scores = scores + (qs[i] * qs[j]).sum(-1, keepdim=True)
    return scores


def loss_fn(name: str, negatives: str = "n", normalize: bool = False,
            max_logits: int = DEFAULT_MAX_LOGITS):
    """Bind a loss by name ("symile" | "clip") to a callable (embs, logit_scale, generator)."""
    if name == "symile":
        return lambda embs, ls, gen=None: symile_loss(embs, ls, negatives, gen, normalize,
                                                      max_logits)
    if name == "clip":
        return lambda embs, ls, gen=None: clip_loss(embs, ls, normalize)
    raise LossInputError(f"unknown loss {name!r}; expected 'symile' or 'clip'")

