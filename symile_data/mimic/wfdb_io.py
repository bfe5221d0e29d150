"""WFDB records: a fast format-16 writer/reader, with the ``wfdb`` package as the fallback.

``wfdb.wrsamp`` costs ~28 ms per 12-lead record and ``wfdb.rdsamp`` ~5 ms, too slow for a
100k-record generated tree or a per-candidate quality check over full MIMIC-IV-ECG. Records of
the real release are one ``.dat`` per record in format 16 (interleaved little-endian int16),
which numpy reads directly. Anything else (other formats, multiple files, skew, byte offsets) is
read through ``wfdb.rdsamp``. Written records are standard WFDB, readable by ``wfdb.rdrecord``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from symile_data.mimic.config import ECG_LEADS, ECG_SAMPLES

ECG_SHAPE = (ECG_SAMPLES, ECG_LEADS)     # (samples, leads) of a usable record
WFDB_INVALID = -32768          # format-16 "no sample" value: becomes NaN when read
_GAIN = re.compile(r"^([-+0-9.eE]+)(?:\(([-0-9]+)\))?(?:/(\S+))?$")


class WfdbError(ValueError):
    """An unreadable WFDB record; the message names the record path."""


def write_wfdb16(record_base: str | Path, p_signal: np.ndarray, fs: int,
                 sig_names: tuple[str, ...], gain: float = 200.0, units: str = "mV") -> None:
    """Write ``p_signal`` (n_samples, n_sig) float, NaN allowed, as ``base.hea`` + ``base.dat``.

    Physical units are quantised as round(x * gain) int16 with baseline 0; NaN -> -32768.
    """
    base = Path(record_base)
    n, nsig = p_signal.shape
    if nsig != len(sig_names):
        raise ValueError(f"{base}: {nsig} signals but {len(sig_names)} names")
    d = np.rint(np.clip(np.nan_to_num(p_signal, nan=0.0) * gain, -32767, 32767)).astype("<i2")
    d[np.isnan(p_signal)] = WFDB_INVALID
    base.parent.mkdir(parents=True, exist_ok=True)
    d.tofile(base.with_name(base.name + ".dat"))
    checks = (d.astype(np.int64).sum(axis=0) % 65536).tolist()
    init = d[0].tolist() if n else [0] * nsig
    name = base.name
    lines = [f"{name} {nsig} {fs} {n}"]
    lines += [f"{name}.dat 16 {gain:g}(0)/{units} 16 0 {init[k]} {checks[k]} 0 {sig_names[k]}"
              for k in range(nsig)]
    base.with_name(name + ".hea").write_text("\n".join(lines) + "\n")


def _parse_header(hea: Path) -> tuple[int, int, list[list[str]]]:
    try:
        text = hea.read_text()
    except OSError as e:
        raise WfdbError(f"{hea}: cannot read header ({e})") from e
    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or len(lines[0]) < 2:
        raise WfdbError(f"{hea}: malformed record line {text[:60]!r}")
    try:
        nsig = int(lines[0][1])
        nsamp = int(lines[0][3]) if len(lines[0]) > 3 else -1
    except ValueError as e:
        raise WfdbError(f"{hea}: malformed record line {' '.join(lines[0])!r}") from e
    sigs = lines[1:1 + nsig]
    if len(sigs) != nsig or any(len(s) < 2 for s in sigs):
        raise WfdbError(f"{hea}: header declares {nsig} signals but lists {len(sigs)}")
    return nsig, nsamp, sigs


def read_wfdb(record_base: str | Path) -> np.ndarray:
    """Physical signal (n_samples, n_sig) float32 with NaN for invalid samples.

    Raises WfdbError naming the record when the header or data is unreadable.
    """
    base = Path(record_base)
    hea = base.with_name(base.name + ".hea")
    nsig, nsamp, sigs = _parse_header(hea)
    files = {s[0] for s in sigs}
    simple = len(files) == 1 and all(s[1] == "16" for s in sigs) and nsamp >= 0
    gains, baselines = [], []
    for s in sigs:
        m = _GAIN.match(s[2]) if len(s) > 2 else None
        if not simple or m is None:
            simple = False
            break
        g = float(m.group(1)) or 200.0           # WFDB: gain 0 means the default 200
        adc_zero = int(s[4]) if len(s) > 4 and s[4].lstrip("-").isdigit() else 0
        gains.append(g)
        baselines.append(int(m.group(2)) if m.group(2) is not None else adc_zero)
    if not simple:
        return _read_with_wfdb(base)
    dat = hea.with_name(next(iter(files)))
    try:
        raw = np.fromfile(dat, dtype="<i2")
    except OSError as e:
        raise WfdbError(f"{dat}: cannot read signal file ({e})") from e
    if raw.size != nsamp * nsig:
        raise WfdbError(f"{dat}: {raw.size} samples, header expects {nsamp} x {nsig}")
    d = raw.reshape(nsamp, nsig)
    sig = (d.astype(np.float32) - np.asarray(baselines, np.float32)) / np.asarray(gains,
                                                                                  np.float32)
    sig[d == WFDB_INVALID] = np.nan
    return sig


def _read_with_wfdb(base: Path) -> np.ndarray:
    import wfdb
    try:
        sig, _ = wfdb.rdsamp(str(base))
    except Exception as e:  # wfdb raises many types for bad records
        raise WfdbError(f"{base}: unreadable WFDB record ({type(e).__name__}: {e})") from e
    return np.asarray(sig, dtype=np.float32)


def ecg_quality(sig: np.ndarray, shape: tuple[int, int] = ECG_SHAPE) -> str | None:
    """None when usable; else the reason: 'bad_shape (n, k), expected (5000, 12)', 'nan' (any
    NaN), 'all_zero' (SPEC section 3) or 'constant' (min-max scaling needs a range). The one
    rule of the cohort (candidates) and of ``mimic shards`` (preprocess.ecg_array)."""
    if sig.shape != tuple(shape):
        return f"bad_shape {sig.shape}, expected {tuple(shape)}"
    if np.isnan(sig).any():
        return "nan"
    if not sig.any():
        return "all_zero"
    if sig.min() == sig.max():
        return "constant"
    return None
