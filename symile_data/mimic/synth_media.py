"""Plausible signals for the MIMIC-layout generator: 12-lead ECGs and chest-X-ray-like images.

The planted cross-modal signal (per admission latents, see synth.py):
  a in {0, 1}  -> ECG heart rate (~62 vs ~100 bpm)
  b in {0, 1}  -> a group of chemistry labs shifted up or down (synth_labs.py)
  c ~ N(0, 1)  -> ECG QRS amplitude and the CXR cardiac silhouette width   (pairwise ECG-CXR)
  d ~ N(0, 1)  -> a group of haematology labs and the CXR lung haze        (pairwise labs-CXR)
  a XOR b      -> side of a lower-lobe opacity on the CXR (left / right): a higher-order signal
                  that neither the ECG nor the labs carries alone, so pairwise CLIP cannot use it.
"""
from __future__ import annotations

import numpy as np

from symile_data.mimic.config import ECG_FS

# Per-lead projections of the P, QRS and T waves (12 leads in ECG_LEAD_NAMES order).
_LEAD_QRS = np.array([1.0, 1.2, 0.4, -0.9, 0.7, 0.3, -0.6, -0.2, 0.5, 1.1, 1.3, 1.0], np.float32)
_LEAD_PT = np.array([0.8, 1.0, 0.3, -0.8, 0.6, 0.3, 0.2, 0.4, 0.6, 0.8, 0.9, 0.7], np.float32)


def _bump(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-((x - centre) / width) ** 2)


def ecg_batch(rng: np.random.Generator, a: np.ndarray, c: np.ndarray, n_samples: int,
              strength: float = 1.0) -> np.ndarray:
    """(B, n_samples, 12) float32 in mV for latents a (B,) {0,1} and c (B,) float."""
    b = len(a)
    t = np.arange(n_samples, dtype=np.float32) / ECG_FS                       # (T,) seconds
    hr = 62.0 + 38.0 * strength * a + rng.normal(0, 5.0, b)                   # (B,) bpm
    phase = (t[None, :] * (hr[:, None] / 60.0) + rng.random((b, 1))) % 1.0    # (B, T)
    phase = phase.astype(np.float32)
    qrs = (_bump(phase, 0.30, 0.010) - 0.15 * _bump(phase, 0.285, 0.006)
           - 0.25 * _bump(phase, 0.315, 0.007))
    pt = 0.12 * _bump(phase, 0.15, 0.025) + 0.30 * _bump(phase, 0.55, 0.05)
    amp = np.exp(0.35 * strength * c + rng.normal(0, 0.1, b)).astype(np.float32)  # (B,)
    sig = (amp[:, None, None] * qrs[:, :, None] * _LEAD_QRS[None, None, :]
           + pt[:, :, None] * _LEAD_PT[None, None, :])
    wander = 0.08 * np.sin(2 * np.pi * 0.3 * t[None, :] + rng.random((b, 1)) * 6.28)
    sig += wander[:, :, None].astype(np.float32)
    sig += rng.normal(0, 0.02, sig.shape).astype(np.float32)
    return sig.astype(np.float32)


def spoil_ecg(rng: np.random.Generator, sig: np.ndarray, kind: np.ndarray) -> None:
    """In place: kind 1 = a NaN gap in some leads, kind 2 = all zeros (a flat record)."""
    n = sig.shape[1]
    for i in np.flatnonzero(kind == 1):                    # few records: per-defect loop
        start = int(rng.integers(0, max(1, n - n // 10)))
        leads = rng.random(sig.shape[2]) < 0.5
        leads[int(rng.integers(0, sig.shape[2]))] = True
        sig[i, start:start + n // 10, leads] = np.nan
    sig[kind == 2] = 0.0


def cxr_batch(rng: np.random.Generator, c: np.ndarray, d: np.ndarray, side: np.ndarray,
              lateral: np.ndarray, h: int, w: int, strength: float = 1.0) -> np.ndarray:
    """(B, h, w) uint8 chest-X-ray-like images (bright bone/heart, dark lungs).

    c: cardiac width latent; d: lung haze latent; side: 0 = opacity in the image-left lung,
    1 = image-right; lateral: True draws a lateral view (no planted signal).
    """
    b = len(c)
    yy = (np.arange(h, dtype=np.float32) / h)[None, :, None]               # (1, h, 1)
    xx = (np.arange(w, dtype=np.float32) / w)[None, None, :]               # (1, 1, w)

    def col(v):
        return np.asarray(v, np.float32)[:, None, None]

    dy, dx = col(rng.normal(0, 0.02, b)), col(rng.normal(0, 0.02, b))      # pose jitter

    def ell(cy, cx, ry, rx):
        return (((yy - cy - dy) / ry) ** 2 + ((xx - cx - dx) / rx) ** 2) <= 1.0

    img = np.full((b, h, w), 0.05, np.float32)
    img = np.where(ell(0.58, 0.5, 0.52, col(np.where(lateral, 0.30, 0.43))), 0.55, img)
    haze = np.clip(0.20 + 0.07 * strength * col(d), 0.05, 0.45)
    lungs = ell(0.45, 0.30, 0.30, 0.14) | ell(0.45, 0.70, 0.30, 0.14)
    lat = np.asarray(lateral, bool)[:, None, None]
    lungs &= ~lat
    img = np.where(lungs, haze, img)
    heart_rx = 0.11 * np.exp(0.22 * strength * col(c))
    img = np.where(ell(0.62, 0.54, 0.14, heart_rx) & ~lat, 0.72, img)
    spine = (np.abs(xx - 0.5 - dx) < 0.025) & (yy > 0.1)
    img = np.where(spine, np.maximum(img, 0.8), img)
    cx = np.where(side == 1, 0.72, 0.28)
    blob = 0.32 * strength * np.exp(-(((yy - 0.60 - dy) / 0.07) ** 2
                                      + ((xx - col(cx) - dx) / 0.06) ** 2))
    img += np.where(lungs, blob, 0.0)
    img *= col(rng.uniform(0.9, 1.1, b))                                     # exposure
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)
