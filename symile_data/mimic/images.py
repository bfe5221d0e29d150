"""Chest X-ray loading (MIMIC-CXR-JPG JPG, or MIMIC-CXR DICOM) and the resize + crop.

A loaded image is a 2-D uint8 array (H, W), 0 = black. DICOM: modality LUT, then the VOI LUT
(window) as stored, MONOCHROME1 inverted (so bone is bright, as in the JPGs), then min-max
scaled to 0..255; 12- and 16-bit data (BitsStored) both work.

``cxr_problem`` is the cohort's cheap usability check of a candidate file (no pixel decode for
JPG/PNG and uncompressed DICOM): it catches missing, empty and truncated files, so the cohort
skips them for the next candidate; a file that passes it and still fails to decode is recorded
by ``mimic shards`` (failures.parquet).
"""
from __future__ import annotations

import io
import os
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


TAIL_BYTES = 1024                   # the end of a file read for its end marker
JPEG_EOI, PNG_IEND = b"\xff\xd9", b"IEND\xaeB`\x82"
UNDEFINED_LENGTH = 0xFFFFFFFF         # DICOM encapsulated (compressed) pixel data


def cxr_problem(path: str | Path) -> str | None:
    """None when the CXR file looks usable, else the reason: ``missing file: P``,
    ``empty file: P`` or ``unreadable: P: why`` (header does not parse, end marker or pixel
    data cut off). Reads the header and the last TAIL_BYTES only: a MIMIC-CXR JPG (~2500 x
    3000) takes ~0.1 ms so, ~40 ms to decode even at 1/8 scale (PIL draft)."""
    if not os.path.isfile(path):
        return f"missing file: {path}"
    size = os.path.getsize(path)
    if size == 0:
        return f"empty file: {path}"
    try:
        (_check_dicom if Path(path).suffix.lower() == ".dcm" else _check_image)(path, size)
    except ImageError as e:
        return f"unreadable: {e}"
    return None


def _check_image(path: str | Path, size: int) -> None:
    """Header parses (PIL reads up to the first scan) and the end marker is in the tail:
    JPEG EOI (0xFFD9 never occurs inside entropy-coded data) or the PNG IEND chunk."""
    try:
        with Image.open(path) as im:
            fmt = im.format
        with open(path, "rb") as f:
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: unreadable image ({type(e).__name__}: {e})") from e
    marker = {"JPEG": JPEG_EOI, "PNG": PNG_IEND}.get(fmt)
    if marker is not None and marker not in tail:
        raise ImageError(f"{path}: truncated {fmt} (no end marker in the last "
                         f"{len(tail)} of {size} bytes)")


def _check_dicom(path: str | Path, size: int) -> None:
    """Header parses, pixel data present; uncompressed pixel data must be complete (declared
    length within the file, at least Rows x Columns x samples x bytes x frames); compressed
    pixel data is decoded (``load_dicom``), there is no cheaper sure check."""
    import pydicom
    try:
        ds = pydicom.dcmread(str(path), defer_size=TAIL_BYTES)   # pixel data not read
        el = ds.get_item("PixelData", keep_deferred=True)
        if el is None:
            raise ImageError(f"{path}: no PixelData element")
        if el.length == UNDEFINED_LENGTH:
            load_dicom(path)
            return
        bits = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.BitsAllocated))
        need = -(-bits // 8)
        end = el.value_tell + el.length
    except ImageError:
        raise
    except Exception as e:  # pydicom raises many exception types for bad files
        raise ImageError(f"{path}: unreadable DICOM ({type(e).__name__}: {e})") from e
    if end > size or el.length < need:
        raise ImageError(f"{path}: truncated DICOM pixel data ({el.length} bytes declared, "
                         f"{need} needed, {size - el.value_tell} in the file)")


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
