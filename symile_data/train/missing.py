"""Missing modalities, handled in the encoder inputs only, never by masking the loss (SPEC 1).

- Feature modalities (M3 image / audio): a missing feature is replaced by the mean feature of
  the observed TRAINING rows, and a learned 2-row embedding of the missingness indicator
  (row 0 = observed, row 1 = missing) is concatenated before the projection head. Optionally
  (``standardize``, off in the reference) the filled features are z-scored with the observed
  training mean and std, so a missing feature becomes the zero vector.
- Text: a dedicated ``[MISSING]`` token (one id appended to the vocabulary) replaces the text.
- MIMIC labs: a missing lab gets the training-set mean percentile plus a 0/1 indicator per lab,
  1 = OBSERVED, 0 = missing (the reference's meaning; column ``labs_observed``).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

MISSING_TOKEN = "[MISSING]"


class FeatureImputer(nn.Module):
    """(B, D) features + (B,) missing flags -> (B, D + d_indicator)."""

    def __init__(self, dim: int, d_indicator: int = 16, standardize: bool = False):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))      # set by set_mean / the checkpoint
        self.register_buffer("mean_fitted", torch.zeros((), dtype=torch.bool))
        self.standardize = standardize
        if standardize:                                     # only then in the state dict
            self.register_buffer("std", torch.ones(dim))
        self.indicator = nn.Embedding(2, d_indicator)

    def set_mean(self, mean: Tensor, std: Tensor | None = None) -> None:
        if mean.shape != self.mean.shape:
            raise ValueError(f"mean feature must have shape {tuple(self.mean.shape)}, "
                             f"got {tuple(mean.shape)}")
        self.mean.copy_(mean)
        if self.standardize:
            if std is None or std.shape != self.mean.shape:
                raise ValueError("standardize=True needs the observed std, shape "
                                 f"{tuple(self.mean.shape)}")
            # a dim (nearly) constant over the observed train rows is centred, not scaled:
            # dividing by ~0 would blow up any other value it takes at test time
            self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        self.mean_fitted.fill_(True)

    def forward(self, feat: Tensor, missing: Tensor) -> Tensor:
        missing = missing.to(torch.bool).reshape(-1)
        if bool(missing.any()) and not bool(self.mean_fitted):
            raise RuntimeError("FeatureImputer: missing rows but the training mean was never "
                               "fitted (call set_mean with observed_mean of the train split)")
        feat = feat.to(self.mean.dtype)
        filled = torch.where(missing.unsqueeze(1), self.mean.unsqueeze(0), feat)
        if self.standardize:
            filled = (filled - self.mean) / self.std
        return torch.cat([filled, self.indicator(missing.long()).to(filled.dtype)], dim=1)


def observed_moments(batches: Iterable[tuple[Tensor, Tensor]], dim: int
                     ) -> tuple[Tensor, Tensor]:
    """Streaming float64 (mean, std) per dimension of the rows whose missing flag is False.

    ``batches`` yields (features (B, D), missing (B,)); nothing is held beyond one batch.
    The std is the population one (sum of squares about the mean / n), shifted by the first
    batch's mean for numerical stability.
    """
    total = torch.zeros(dim, dtype=torch.float64)
    sq = torch.zeros(dim, dtype=torch.float64)
    shift, count = None, 0
    for feat, missing in batches:
        keep = ~missing.to(torch.bool).reshape(-1)
        x = feat[keep].to(torch.float64)
        if len(x) == 0:
            continue
        shift = x.mean(0) if shift is None else shift
        total += x.sum(0)
        sq += ((x - shift) ** 2).sum(0)
        count += len(x)
    if count == 0:
        raise ValueError("no observed rows to compute the mean feature from")
    mean = total / count
    var = (sq / count - (mean - shift) ** 2).clamp(min=0.0)
    return mean.to(torch.float32), var.sqrt().to(torch.float32)


def observed_mean(batches: Iterable[tuple[Tensor, Tensor]], dim: int) -> Tensor:
    """Streaming float64 mean of the rows whose missing flag is False."""
    return observed_moments(batches, dim)[0]


def replace_missing_text(input_ids: Tensor, attention_mask: Tensor, missing: Tensor,
                         missing_id: int, bos_id: int | None, eos_id: int | None,
                         pad_id: int) -> tuple[Tensor, Tensor]:
    """Rows flagged missing become ``[bos] [MISSING] [eos] pad...`` (vectorised).

    input_ids / attention_mask: (B, L); missing: (B,) bool. Returns new (ids, mask).
    """
    missing = missing.to(torch.bool).reshape(-1)
    if not bool(missing.any()):
        return input_ids, attention_mask
    _, length = input_ids.shape
    tokens = [t for t in (bos_id, missing_id, eos_id) if t is not None][:length]
    row = torch.full((length,), pad_id, dtype=input_ids.dtype, device=input_ids.device)
    row[:len(tokens)] = torch.tensor(tokens, dtype=input_ids.dtype)
    row_mask = torch.zeros(length, dtype=attention_mask.dtype, device=attention_mask.device)
    row_mask[:len(tokens)] = 1
    sel = missing.unsqueeze(1)
    return (torch.where(sel, row.unsqueeze(0), input_ids),
            torch.where(sel, row_mask.unsqueeze(0), attention_mask))


def impute_labs(percentiles: Tensor, train_mean: Tensor) -> tuple[Tensor, Tensor]:
    """(B, 50) percentiles with NaN for missing -> (imputed (B, 50), observed (B, 50) int8).

    ``train_mean`` (50,) is the training split's mean percentile per lab.
    """
    observed = ~torch.isnan(percentiles)
    imputed = torch.where(observed, percentiles, train_mean.to(percentiles.dtype).unsqueeze(0))
    return imputed, observed.to(torch.int8)


def labs_input(percentiles: Tensor, observed: Tensor) -> Tensor:
    """Labs MLP input: (B, 50) imputed percentiles ++ (B, 50) indicators (1 = observed)."""
    if torch.isnan(percentiles).any():
        raise ValueError("labs_percentiles contain NaN: impute them with the train mean "
                         "percentile first (impute_labs)")
    return torch.cat([percentiles.float(), observed.float()], dim=1)
