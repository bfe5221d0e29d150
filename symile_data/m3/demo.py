"""Embedded demo: an ILSVRC-layout folder of generated images the project makes itself.

Class k of K gets its own hue (k/K around the colour wheel) and shape (k mod 8), drawn at a
random position, size and rotation over a noisy background of a contrasting lightness, so a
small image model can tell the classes apart while no two images are identical.
Layout: ``{out}/ILSVRC/LOC_synset_mapping.txt`` (all 1,000 classes) and
``{out}/ILSVRC/Data/CLS-LOC/train/{synset}/{synset}_{i}.JPEG``.
"""
from __future__ import annotations

import colorsys
import io
import math
from pathlib import Path

import numpy as np

from symile_data.config import params_hash
from symile_data.io.atomic import (atomic_write_bytes, atomic_write_json, atomic_write_text,
                                   read_json)
from symile_data.m3.classes import CLASSES_TSV, load_classes
from symile_data.m3.config import M3DemoConfig
from symile_data.m3.translations import read_translations

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star", "ring", "bars")


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    n, radii = {"triangle": (3, [1.0]), "square": (4, [1.0]), "diamond": (4, [1.0]),
                "star": (10, [1.0, 0.45])}[shape]
    # squares and diamonds keep their orientation (axis-aligned vs pointing up) to stay distinct
    off = {"square": math.pi / 4, "diamond": 0.0}.get(shape, rot)
    return [(cx + r * radii[i % len(radii)] * math.cos(off + 2 * math.pi * i / n),
             cy + r * radii[i % len(radii)] * math.sin(off + 2 * math.pi * i / n))
            for i in range(n)]


def draw_image(k: int, n_classes: int, size: int, rng: np.random.Generator) -> bytes:
    """One JPEG of class index k (0..n_classes-1)."""
    from PIL import Image, ImageDraw
    hue = k / max(1, n_classes)
    shape = SHAPES[k % len(SHAPES)]
    fg = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.9, 0.95))
    bg_v = rng.uniform(0.1, 0.3)
    bg = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.2, bg_v)) * 255
    noise = rng.normal(0, 12, (size, size, 3))
    img = Image.fromarray(np.clip(bg + noise, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    r = size * rng.uniform(0.22, 0.34)
    cx, cy = size * rng.uniform(0.35, 0.65, 2)
    rot = rng.uniform(0, 2 * math.pi)
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        d.ellipse(box, fill=fg)
    elif shape == "ring":
        d.ellipse(box, outline=fg, width=max(3, int(r / 3)))
    elif shape == "cross":
        t = r / 3
        d.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fg)
        d.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fg)
    elif shape == "bars":
        for i in range(3):
            y = cy - r + i * (2 * r / 2.5)
            d.rectangle([cx - r, y, cx + r, y + r / 3], fill=fg)
    else:
        d.polygon(_polygon(shape, cx, cy, r, rot), fill=fg)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def build_demo(out_dir: str | Path, cfg: M3DemoConfig) -> dict:
    """Write the demo ILSVRC folder; skipped when a finished one with the same params exists."""
    out_dir = Path(out_dir)
    done = out_dir / "demo.json"
    h = params_hash(cfg)
    if done.exists() and read_json(done).get("params_hash") == h:
        return read_json(done)
    done.unlink(missing_ok=True)
    classes = load_classes()
    table = read_translations(cfg.translations)
    synsets = sorted({e["synset_id"] for e in table.values()}, key=classes.cls_id)
    root = out_dir / "ILSVRC"
    lemmas = [line.split("\t") for line in
              CLASSES_TSV.read_text(encoding="utf-8").splitlines()[1:]]
    atomic_write_text(root / "LOC_synset_mapping.txt",
                      "".join(f"{r[1]} {r[3]}\n" for r in lemmas))
    for k, syn in enumerate(synsets):
        rng = np.random.default_rng([cfg.seed, classes.cls_id(syn)])
        for i in range(cfg.images_per_class):
            atomic_write_bytes(root / "Data" / "CLS-LOC" / "train" / syn / f"{syn}_{i}.JPEG",
                               draw_image(k, len(synsets), cfg.image_size, rng))
    report = {"params_hash": h, "classes": len(synsets), "synsets": synsets,
              "images": len(synsets) * cfg.images_per_class, "root": str(root),
              "class_list": CLASSES_TSV.name}
    atomic_write_json(done, report)
    return report
