"""Image features come from the original image by default, with the released features'
preprocessing (the PIL CLIPImageProcessor on the image as PIL opens it); the resized stored
copy is an option (storage/export), and so is transformers' default processor backend."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import torch
from PIL import Image

from symile_data.features.config import FeaturesConfig
from symile_data.features.encoders import ImageEncoder
from symile_data.features.m3 import load_media


def released_pixels(model: str, source: Path) -> torch.Tensor:
    """What the reference's save_representations.py computed: CLIPImageProcessor (PIL, from
    the model) on ``Image.open(original file)``."""
    try:
        from transformers.models.clip.image_processing_pil_clip import (
            CLIPImageProcessorPil as Processor)
    except ImportError:   # transformers < 5
        from transformers import CLIPImageProcessor as Processor
    return Processor.from_pretrained(model)(images=Image.open(source),
                                            return_tensors="pt")["pixel_values"]


def test_defaults_are_source_bytes_and_released_processor():
    fields = FeaturesConfig.__dataclass_fields__
    assert fields["image_source"].default == "source"
    assert fields["image_processor"].default == "released"


def test_source_path_resolves_and_reproduces_released_pixels(chain, monkeypatch):
    monkeypatch.chdir(chain)                    # source_path is relative to the stage's cwd
    images = chain / "data/m3/images"
    table = pq.read_table(images / "images.parquet")
    keys, sources, errors = load_media(images, "image_key", "source_path")
    _, stored, _ = load_media(images, "image_key", "path")
    first = table.sort_by("image_key").slice(0, 1).to_pylist()[0]
    assert keys[0] == first["image_key"] and errors[0] == ""
    assert Path(sources[0]) == chain / first["source_path"]
    assert Path(stored[0]) == images / first["path"]
    model = str(chain / "data/models/tiny/clip-vision")
    enc = ImageEncoder(model, None, device="cpu")
    px = enc.preprocess([enc.decode(Path(sources[0]).read_bytes())])["pixel_values"]
    assert torch.equal(px, released_pixels(model, Path(sources[0])))
    px_stored = enc.preprocess([enc.decode(Path(stored[0]).read_bytes())])["pixel_values"]
    assert px_stored.shape == px.shape and not torch.equal(px_stored, px)   # JPEG copy differs


def test_options_change_the_encoder_identity(chain):
    model = str(chain / "data/models/tiny/clip-vision")
    ids = {(s, p): ImageEncoder(model, None, device="cpu", image_source=s,
                                image_processor=p).identity.encoder_id()
           for s in ("source", "stored") for p in ("released", "auto")}
    assert len(set(ids.values())) == 4          # a feature table never mixes inputs
