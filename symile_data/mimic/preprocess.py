"""Per-modality preprocessing of Symile-MIMIC (SPEC section 3).

labs  ECDF per lab fitted on the training rows only (percentile = share of train values <= x,
      NaN stays NaN), then mean-percentile imputation (train mean) and indicators, 1 = observed.
ECG   (5000, 12) in file lead order, min-max scaled over the whole record to [-1, 1].
CXR   shorter side -> 320 (bilinear), 320 x 320 crop: seeded random offset for train (drawn
      once at build time), centre for val / test. ImageNet mean/std is applied at load time.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from symile_data.mimic.images import load_cxr, resize_crop
from symile_data.mimic.wfdb_io import WfdbError, ecg_quality, read_wfdb


class LabEcdf:
    """Empirical CDFs of the labs, fitted on train: ``sorted_vals[k]`` holds lab k's values."""

    def __init__(self, train_labs: np.ndarray):
        """train_labs: (n_train, n_labs) raw values, NaN = missing."""
        self.sorted_vals = [np.sort(col[~np.isnan(col)]) for col in train_labs.T]
        pct = self.percentiles(train_labs)
        with warnings.catch_warnings():                         # all-NaN labs -> NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(pct, axis=0) if len(pct) else np.full(pct.shape[1], np.nan)
        # a lab never observed in train: impute the middle of the scale
        self.mean_percentile = np.where(np.isnan(mean), 0.5, mean).astype(np.float32)

    def percentiles(self, labs: np.ndarray) -> np.ndarray:
        """(n, n_labs) in [0, 1], NaN where the input is NaN or the lab has no train values."""
        out = np.full(labs.shape, np.nan, np.float64)
        for k, ref in enumerate(self.sorted_vals):             # one vectorised pass per lab
            if len(ref):
                x = labs[:, k]
                ok = ~np.isnan(x)
                out[ok, k] = np.searchsorted(ref, x[ok], side="right") / len(ref)
        return out

    def features(self, labs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labs_percentiles float32 imputed, labs_observed int8 with 1 = observed)."""
        pct = self.percentiles(labs)
        observed = ~np.isnan(labs)
        filled = np.where(np.isnan(pct), self.mean_percentile[None, :], pct)
        return filled.astype(np.float32), observed.astype(np.int8)


def ecg_array(record_base: str | Path) -> np.ndarray:
    """(5000, 12) float32 in [-1, 1]; raises ValueError naming the record when unusable."""
    sig = read_wfdb(record_base)
    bad = ecg_quality(sig)                      # shape, NaN, all zero, constant
    if bad:
        raise WfdbError(f"{record_base}: unusable ECG ({bad})")
    lo, hi = float(sig.min()), float(sig.max())
    x = (sig.astype(np.float64) - lo) * (2.0 / (hi - lo)) - 1.0
    return np.clip(x, -1.0, 1.0).astype(np.float32)             # exact bounds after rounding


def cxr_array(path: str | Path, u: tuple[float, float] | None) -> np.ndarray:
    """(320, 320) uint8 crop of the image at ``path``; u = random-crop fractions or None."""
    return resize_crop(load_cxr(path), u)
