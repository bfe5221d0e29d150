"""ImageNet images -> the unique-image table ``m3_images`` plus resized JPEG files.

Sources: a local ILSVRC folder (``LOC_synset_mapping.txt`` + ``Data/CLS-LOC/train/{synset}/``,
or a plain ``train/{synset}/`` folder, or the train folder itself), or a Hugging Face dataset
(``ILSVRC/imagenet-1k``, streamed; token from HF_TOKEN) whose raw bytes are staged once to
``{out}/hub_raw/``. Each image is decoded, converted to RGB, resized (shorter side) and saved
as ``{out}/files/{key[:2]}/{key}.jpg``; key = sha256 of (file bytes, synset). Corrupt or empty
files become rows with status "failed" and an error; an existing output file is reused.
"""
from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from symile_data.hashing import sha256_bytes, short_key
from symile_data.io.atomic import atomic_write_bytes
from symile_data.m3.classes import ClassTable, load_classes
from symile_data.progress import progress

log = logging.getLogger(__name__)
IMAGE_EXTS = {".jpeg", ".jpg", ".png"}


def train_dir(root: str | Path) -> Path:
    """The folder holding one sub-folder per synset."""
    root = Path(root)
    for cand in (root / "Data" / "CLS-LOC" / "train", root / "train", root):
        if cand.is_dir() and any(p.is_dir() and p.name.startswith("n") for p in cand.iterdir()):
            return cand
    raise FileNotFoundError(f"{root}: no ILSVRC train folder (expected Data/CLS-LOC/train/"
                            f"{{synset}}/, train/{{synset}}/ or {{synset}}/ sub-folders)")


def check_mapping(root: str | Path, classes: ClassTable) -> None:
    """If the folder ships LOC_synset_mapping.txt, it must agree with the class table."""
    mapping = Path(root) / "LOC_synset_mapping.txt"
    if mapping.exists():
        theirs = load_classes(mapping)
        if theirs.synsets != classes.synsets:
            raise ValueError(f"{mapping}: synset order differs from the ImageNet-1k class list")


def list_images(root: str | Path, synsets: Sequence[str], classes: ClassTable,
                max_per_class: int = 0) -> list[tuple[str, int, str]]:
    """[(synset, cls_id, path)] sorted by class then file name; a missing folder is an error."""
    check_mapping(root, classes)
    base = train_dir(root)
    out = []
    for syn in synsets:
        d = base / syn
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: missing synset folder for class "
                                    f"'{classes.names[classes.cls_id(syn)]}' ({syn})")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if max_per_class:
            files = files[:max_per_class]
        cid = classes.cls_id(syn)
        out += [(syn, cid, str(p)) for p in files]
    return out


def _resize_to(img, shorter: int):
    from PIL import Image
    w, h = img.size
    if not shorter or min(w, h) == shorter:
        return img
    s = shorter / min(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BICUBIC)


def process_image(item: tuple[str, int, str], out_dir: str, resize: int, quality: int
                  ) -> dict[str, Any]:
    """One image -> one m3_images row (never raises for a bad image)."""
    from PIL import Image
    syn, cid, src = item
    row = {"synset": syn, "cls_id": cid, "source_path": src, "path": None, "width": None,
           "height": None, "status": "failed", "error": None}
    try:
        data = Path(src).read_bytes()
    except OSError as e:
        row.update(image_key=short_key("unreadable", src, n=32), error=f"unreadable: {e}")
        return row
    key = short_key(sha256_bytes(data), syn, n=32)
    row["image_key"] = key
    if not data:
        row["error"] = "empty file (0 bytes)"
        return row
    rel = f"files/{key[:2]}/{key}.jpg"
    out = Path(out_dir) / rel
    try:
        if out.exists():  # resume: same bytes + synset -> same key -> same output
            with Image.open(out) as done:
                size = done.size
        else:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                rgb = _resize_to(img.convert("RGB"), resize)
            buf = io.BytesIO()
            rgb.save(buf, format="JPEG", quality=quality)
            atomic_write_bytes(out, buf.getvalue())
            size = rgb.size
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        row["error"] = f"cannot decode image: {type(e).__name__}: {e}"
        return row
    row.update(path=rel, width=size[0], height=size[1], status="ok")
    return row


class ImageBatch:
    """Picklable batch function for parallel.map_batches."""

    def __init__(self, out_dir: str, resize: int, quality: int):
        self.out_dir, self.resize, self.quality = out_dir, resize, quality

    def __call__(self, batch: Sequence[tuple[str, int, str]]) -> list[dict[str, Any]]:
        return [process_image(it, self.out_dir, self.resize, self.quality) for it in batch]


def stage_hub_images(dataset: str, split: str, synsets: Sequence[str], classes: ClassTable,
                     max_per_class: int, out_dir: str | Path) -> Path:
    """Stream a Hub (or local) image-classification dataset with int labels = cls_id and
    write the raw bytes to ``{out_dir}/hub_raw/train/{synset}/{i:08d}.{ext}``; returns the
    root for ``list_images``. Stops early once every class has ``max_per_class`` images."""
    import datasets
    root = Path(out_dir) / "hub_raw"
    want = {classes.cls_id(s): s for s in synsets}
    counts = dict.fromkeys(want, 0)
    try:
        ds = datasets.load_dataset(dataset, split=split, streaming=True,
                                   token=os.environ.get("HF_TOKEN") or None)
        ds = ds.cast_column("image", datasets.Image(decode=False))
        for i, ex in enumerate(progress(ds, desc=f"stream {dataset}", unit="img")):
            cid = int(ex["label"])
            if cid not in want or (max_per_class and counts[cid] >= max_per_class):
                if max_per_class and all(c >= max_per_class for c in counts.values()):
                    break
                continue
            ext = Path(ex["image"].get("path") or "x.jpg").suffix or ".jpg"
            dest = root / "train" / want[cid] / f"{i:08d}{ext}"
            if not dest.exists():
                atomic_write_bytes(dest, ex["image"]["bytes"] or b"")
            counts[cid] += 1
    except (OSError, ValueError, ConnectionError) as e:
        raise RuntimeError(f"cannot stream images from '{dataset}' split '{split}': "
                           f"{type(e).__name__}: {e} (offline, or no HF_TOKEN for a gated "
                           f"dataset? use source 'folder' with a local ILSVRC copy)") from e
    empty = [want[c] for c, n in counts.items() if n == 0]
    for syn in empty:  # a class the stream never produced: an empty folder, reported later
        (root / "train" / syn).mkdir(parents=True, exist_ok=True)
    return root


def images_summary(rows: list[dict[str, Any]], synsets: Sequence[str]) -> dict[str, Any]:
    status = np.array([r["status"] for r in rows]) if rows else np.array([], dtype=str)
    ok_syn = {r["synset"] for r in rows if r["status"] == "ok"}
    return {"images": len(rows), "ok": int((status == "ok").sum()),
            "failed": int((status == "failed").sum()),
            "failed_examples": [{"source_path": r["source_path"], "error": r["error"]}
                                for r in rows if r["status"] != "ok"][:20],
            "classes_without_images": sorted(set(synsets) - ok_syn)}

