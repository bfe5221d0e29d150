"""Params sections of training and evaluation (flat, typed, strict; see symile_data.config).

Sections: ``xor_train`` / ``m3_train`` / ``mimic_train`` (one per model kind; the model kind and
the loss come from the command line / DVC stage so that Symile and CLIP share one section) and
``xor_eval`` / ``m3_eval`` / ``mimic_eval``.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

MODEL_KINDS = ("xor", "m3", "mimic")
LOSSES = ("symile", "clip")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    negatives: Literal["n", "n_squared"] = "n"  # Symile negatives; CLIP ignores it
    d: int = 16                        # embedding dimension
    epochs: int = 100
    batch_size: int = 1000             # rows per micro-batch (the loss sees this N)
    grad_accum: int = 1                # micro-batches per optimiser step
    lr: float = 0.1
    weight_decay: float = 0.01
    logit_scale_init: float = -0.3     # used as exp(logit_scale), learned, no clamp
    normalize: bool = True             # L2-normalise embeddings (XOR reference: yes)
    seed: int = 0
    shuffle_buffer: int = 10000        # rows mixed by the streaming reader
    num_workers: int = 0               # DataLoader workers reading shards
    max_logits: int = 268435456        # bound on the O(N^2) score tensor (entries)
    ckpt_every_steps: int = 0          # extra checkpoints every k optimiser steps (0: epochs)
    val_every_epochs: int = 1
    log_every_steps: int = 10
    torch_threads: int = 0             # intra-op CPU threads; 0 = torch's default

    def validate(self) -> None:
        for name in ("d", "epochs", "batch_size", "grad_accum", "val_every_epochs",
                     "log_every_steps", "max_logits"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (a contrastive batch needs negatives)")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, "
                             f"{self.weight_decay}")
        if min(self.shuffle_buffer, self.num_workers, self.ckpt_every_steps,
               self.torch_threads) < 0:
            raise ValueError("shuffle_buffer, num_workers, ckpt_every_steps and torch_threads "
                             "must be >= 0")


@dataclasses.dataclass(frozen=True)
class XorTrainConfig(TrainConfig):
    ps: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)   # the DVC matrix; not a model knob
    methods: tuple[str, ...] = ("symile", "clip")

    def validate(self) -> None:
        super().validate()
        bad = [m for m in self.methods if m not in LOSSES]
        if bad:
            raise ValueError(f"methods: unknown loss(es) {bad}; expected {LOSSES}")


@dataclasses.dataclass(frozen=True)
class M3TrainConfig(TrainConfig):
    text_model: str = "xlm-roberta-large"   # Hugging Face name or local dir
    d_indicator: int = 16                   # width of the learned missingness embedding
    # z-score image / audio features with the observed train mean / std before the heads
    # (reference: false; the demo's tiny random encoders give features whose class / language
    # signal is small next to their common offset, see docs/e2e.md "M3 missingness")
    standardize_features: bool = False


@dataclasses.dataclass(frozen=True)
class MimicTrainConfig(TrainConfig):
    # encoder size (defaults = reference, SPEC section 4); smaller for CPU demos
    cxr_encoder: Literal["resnet18", "resnet50"] = "resnet50"
    ecg_encoder: Literal["resnet18", "resnet50"] = "resnet18"
    cnn_width: int = 64                # base width of both ResNets (reference 64)
    cxr_pool: int = 1                  # avg-pool factor on the 320x320 CXR before the CNN
    ecg_pool: int = 1                  # avg-pool factor along the 5000 ECG time steps

    def validate(self) -> None:
        super().validate()
        if min(self.cnn_width, self.cxr_pool, self.ecg_pool) < 1:
            raise ValueError("cnn_width, cxr_pool and ecg_pool must be >= 1")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    split: str = "test"
    batch_size: int = 1024            # rows encoded at once
    bootstrap_resamples: int = 10
    seed: int = 0                     # bootstrap resampling and random tie-breaks
    checkpoint: Literal["best", "last"] = "best"

    def validate(self) -> None:
        if self.batch_size < 1 or self.bootstrap_resamples < 1:
            raise ValueError("batch_size and bootstrap_resamples must be >= 1")


TRAIN_CONFIGS = {"xor": XorTrainConfig, "m3": M3TrainConfig, "mimic": MimicTrainConfig}
