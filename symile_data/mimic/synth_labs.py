"""labevents / d_labitems rows for the MIMIC-layout generator (vectorised over admissions).

Per admission with labs: each of the 50 cohort labs observed with an item-specific probability,
1-2 draws inside [-24 h, +24 h] (the earliest counts), some exactly at the edges; plus draws of
cohort labs outside the window (unrelated values), labs outside the 50, and rows without a
numeric value ("___"). hadm_id is often empty, as in MIMIC-IV: the cohort matches by time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from symile_data.mimic.config import LAB_ITEMIDS, N_LABS

H = 3600
OTHER_ITEMIDS = (50800, 50803, 50809, 50811, 50817, 50824, 50826, 51003, 51087, 51464, 51491,
                 51498, 51516, 51519)
# Labs moved by latent b (chemistry) and by latent d (haematology): see synth_media.py.
B_LABS = (50912, 51006, 50971, 50868, 50882, 50902)
D_LABS = (51222, 51221, 51279, 51265, 51301, 51250)


def lab_stats() -> tuple[np.ndarray, np.ndarray]:
    """Plausible (mean, sd) per cohort lab, fixed (not seeded by the run)."""
    r = np.random.default_rng(12345)
    mu = np.round(r.uniform(1.0, 150.0, N_LABS), 1)
    sd = np.round(mu * r.uniform(0.08, 0.25, N_LABS), 2)
    return mu, sd


def _effects(strength: float) -> np.ndarray:
    """(2, N_LABS) effect weights of latents b (as +-1) and d, in sd units."""
    eff = np.zeros((2, N_LABS))
    for k, item in enumerate(LAB_ITEMIDS):
        if item in B_LABS:
            eff[0, k] = 0.9 * strength * (-1 if item == 50882 else 1)
        if item in D_LABS:
            eff[1, k] = 0.8 * strength * (-1 if item == 51301 else 1)
    return eff


def labevents_frame(rng: np.random.Generator, subject_id: np.ndarray, hadm_id: np.ndarray,
                    admit_s: np.ndarray, b: np.ndarray, d: np.ndarray, p_labs: float,
                    strength: float) -> pd.DataFrame:
    """All labevents rows (MIMIC-IV 2.2 columns), sorted, labevent_id assigned."""
    n = len(admit_s)
    mu, sd = lab_stats()
    eff = _effects(strength)
    p_item = np.random.default_rng(7).uniform(0.5, 0.95, N_LABS)
    has = rng.random(n) < p_labs
    obs = (rng.random((n, N_LABS)) < p_item[None, :]) & has[:, None]
    draws = np.where(obs, 1 + (rng.random((n, N_LABS)) < 0.4), 0)
    adm_idx, item_idx = np.nonzero(draws)
    reps = draws[adm_idx, item_idx]
    adm_idx, item_idx = np.repeat(adm_idx, reps), np.repeat(item_idx, reps)
    m = len(adm_idx)
    off = rng.integers(-24 * 60, 24 * 60 + 1, m) * 60                     # minutes, inside
    edge = rng.random(m)
    off = np.where(edge < 0.01, -24 * H, np.where(edge > 0.99, 24 * H, off))
    z = (rng.normal(0, 0.6, m) + eff[0, item_idx] * (2 * b[adm_idx] - 1)
         + eff[1, item_idx] * d[adm_idx])
    inside = pd.DataFrame({"a": adm_idx, "item": np.asarray(LAB_ITEMIDS)[item_idx], "off": off,
                           "val": mu[item_idx] + sd[item_idx] * z,
                           "link": rng.random(m) < 0.6})
    # cohort labs outside the window (values unrelated to the admission), other labs
    k_out = rng.poisson(10, n) * has
    a_out = np.repeat(np.arange(n), k_out)
    i_out = rng.integers(0, N_LABS, len(a_out))
    sign = np.where(rng.random(len(a_out)) < 0.5, -1, 1)
    off_out = sign * (24 * H + 60 * rng.integers(1, 72 * 60, len(a_out)))
    outside = pd.DataFrame({"a": a_out, "item": np.asarray(LAB_ITEMIDS)[i_out], "off": off_out,
                            "val": mu[i_out] + sd[i_out] * rng.normal(0, 1, len(a_out)),
                            "link": False})
    k_oth = rng.poisson(15, n) * has
    a_oth = np.repeat(np.arange(n), k_oth)
    other = pd.DataFrame({"a": a_oth, "item": rng.choice(OTHER_ITEMIDS, len(a_oth)),
                          "off": rng.integers(-48 * 60, 48 * 60, len(a_oth)) * 60,
                          "val": rng.uniform(0, 100, len(a_oth)), "link": True})
    df = pd.concat([inside, outside, other], ignore_index=True)
    df["val"] = np.round(np.abs(df["val"].to_numpy()), 2)
    df.loc[rng.random(len(df)) < 0.03, "val"] = np.nan                  # "___" results
    a = df["a"].to_numpy()
    out = pd.DataFrame({
        "subject_id": subject_id[a],
        "hadm_id": pd.array(np.where(df["link"], hadm_id[a], 0), dtype="Int64"),
        "specimen_id": 0, "itemid": df["item"].to_numpy(),
        "charttime_s": admit_s[a] + df["off"].to_numpy(), "valuenum": df["val"].to_numpy()})
    out.loc[~df["link"].to_numpy(), "hadm_id"] = pd.NA
    out = out.sort_values(["subject_id", "charttime_s", "itemid"], kind="stable",
                          ignore_index=True)
    out.insert(0, "labevent_id", np.arange(1, len(out) + 1, dtype=np.int64))
    out["specimen_id"] = 10_000_000 + out["labevent_id"] * 3
    return out


def d_labitems_frame() -> pd.DataFrame:
    items = list(LAB_ITEMIDS) + list(OTHER_ITEMIDS)
    return pd.DataFrame({"itemid": items, "label": [f"Lab {i}" for i in items],
                         "fluid": "Blood", "category": "Chemistry"})
