"""params.yaml sections of the feature stages (strict frozen dataclasses)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional


@dataclass(frozen=True)
class TinyModelsConfig:
    """``features_tiny_models``: deterministic tiny models for tests and the offline demo."""
    seed: int = 0


@dataclass(frozen=True)
class FeaturesConfig:
    """``features_m3``: encode every unique image / clip / text once.

    A model is a Hub id (then ``*_revision`` must pin a commit or tag) or a local directory
    (revision null; a hash of its files is recorded instead).
    """
    image_model: str
    image_revision: Optional[str]
    audio_model: str
    audio_revision: Optional[str]
    text_model: str
    text_revision: Optional[str]
    audio_pooling: Literal["window", "real_frames"] = "window"  # window = reference (1500 fr.)
    # image bytes fed to the encoder: the original file (m3_images.source_path) or the resized
    # stored copy (m3_images.path, 256 px JPEG q90: for storage/export; faster, not the release)
    image_source: Literal["source", "stored"] = "source"
    # released = the PIL CLIPImageProcessor on the image as PIL opens it (what the released
    # features used); auto = transformers' default backend (torchvision when installed)
    image_processor: Literal["released", "auto"] = "released"
    dtype: Literal["float16", "float32"] = "float16"             # storage dtype of features
    text_max_length: int = 512       # tokens incl. <s>, </s>; longer texts are truncated
    batch_size_image: int = 256
    batch_size_audio: int = 64
    num_workers: int = 0             # DataLoader decode/resize workers (0 = in process)
    items_per_part: int = 50_000     # resumable unit of a feature table
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    amp: Literal["bf16", "fp16", "none"] = "bf16"  # CUDA autocast (CPU always float32)

    def validate(self) -> None:
        for f in ("batch_size_image", "batch_size_audio", "items_per_part", "text_max_length"):
            if getattr(self, f) <= 0:
                raise ValueError(f"{f} must be > 0, got {getattr(self, f)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got '{self.device}'")


@dataclass(frozen=True)
class JoinConfig:
    """``m3_shards``: join samples with features into M3 training shards."""
    text_length: Literal["per_split", "fixed"] = "per_split"
    text_fixed_length: int = 64      # L when text_length = fixed (longer texts cut, </s> kept)
    on_missing_feature: Literal["error", "drop"] = "error"  # a sample whose item failed
    max_rows_per_shard: int = 100_000
    target_shard_bytes: int = 500_000_000
    row_group_rows: int = 8192

    def validate(self) -> None:
        for f in ("text_fixed_length", "max_rows_per_shard", "target_shard_bytes",
                  "row_group_rows"):
            if getattr(self, f) <= 0:
                raise ValueError(f"{f} must be > 0, got {getattr(self, f)}")
        if self.text_fixed_length < 3:
            raise ValueError("text_fixed_length must be >= 3 (<s>, a token, </s>)")
