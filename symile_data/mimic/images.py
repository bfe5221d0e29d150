"""Chest X-ray loading (MIMIC-CXR-JPG JPG, or MIMIC-CXR DICOM) and the resize + crop.

A loaded image is a 2-D uint8 array (H, W), 0 = black. DICOM: modality LUT, then the VOI LUT
(window) as stored, MONOCHROME1 inverted (so bone is bright, as in the JPGs), then min-max
scaled to 0..255; 12- and 16-bit data (BitsStored) both work.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from symile_data.mimic.config import CXR_SIZE


class ImageError(ValueError):
    """An unreadable or unusable image; the message names the file."""


def load_jpg(path: str | Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("L"))
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: unreadable image ({type(e).__name__}: {e})") from e


def load_dicom(path: str | Path) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut
    try:
        ds = pydicom.dcmread(str(path))
        arr = ds.pixel_array
    except Exception as e:  # pydicom raises many exception types for bad files
        raise ImageError(f"{path}: unreadable DICOM ({type(e).__name__}: {e})") from e
    if arr.ndim != 2:
        raise ImageError(f"{path}: expected one 2-D grayscale frame, got shape {arr.shape}")
    x = apply_modality_lut(arr, ds)
    x = np.asarray(apply_voi_lut(x, ds), dtype=np.float64)
    if str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
        x = x.max() - x                                    # MONOCHROME1: low = white
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        raise ImageError(f"{path}: constant image (all pixels {lo})")
    return np.rint((x - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def load_cxr(path: str | Path) -> np.ndarray:
    """(H, W) uint8 from a .jpg/.jpeg/.png or a .dcm file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".dcm":
        return load_dicom(path)
    return load_jpg(path)


def resize_crop(img: np.ndarray, u: tuple[float, float] | None,
                size: int = CXR_SIZE) -> np.ndarray:
    """Shorter side -> ``size`` (bilinear), then a ``size`` x ``size`` crop.

    ``u`` = (uy, ux) in [0, 1): crop offset as a fraction of the free range (train, seeded);
    None: centre crop (val/test). Returns (size, size) uint8.
    """
    h, w = img.shape
    short = min(h, w)
    nh, nw = (size, int(size * w / h)) if h == short else (int(size * h / w), size)
    nh, nw = max(nh, size), max(nw, size)
    im = Image.fromarray(img).resize((nw, nh), Image.BILINEAR)
    out = np.asarray(im)
    if u is None:
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    else:
        top, left = int(u[0] * (nh - size + 1)), int(u[1] * (nw - size + 1))
    return np.ascontiguousarray(out[top:top + size, left:left + size])


def encode_jpeg(img: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()
