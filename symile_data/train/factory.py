"""Build a model for a dataset directory: dimensions from the shard schema, imputation means
from the TRAIN split (streamed), and the ``spec`` dict stored in checkpoints to rebuild it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from symile_data.io.openfile import parquet_schema, torch_load
from symile_data.io.reader import ParquetIterable, split_files
from symile_data.train.config import TrainConfig
from symile_data.train.missing import observed_moments
from symile_data.train.models import M3Model, MIMICModel, SymileModel, XORModel

log = logging.getLogger(__name__)
MIMIC_ARCH = ("cxr_encoder", "ecg_encoder", "cnn_width", "cxr_pool", "ecg_pool")  # spec keys


def _list_size(dataset_dir: Path, column: str) -> int:
    files = split_files(dataset_dir, "train")
    schema = parquet_schema(files[0])
    if column not in schema.names:
        raise ValueError(f"{files[0]}: missing column '{column}' (has {', '.join(schema.names)})")
    t = schema.field(column).type
    if not pa.types.is_fixed_size_list(t):
        raise ValueError(f"{files[0]}: column '{column}' must be fixed_size_list, got {t}")
    return t.list_size


def model_spec(kind: str, cfg: TrainConfig, dataset_dir: str | Path) -> dict[str, Any]:
    """Everything needed to rebuild the architecture (no weights)."""
    dataset_dir = Path(dataset_dir)
    spec: dict[str, Any] = {"kind": kind, "d": cfg.d, "logit_scale_init": cfg.logit_scale_init,
                            "normalize": cfg.normalize}
    if kind == "xor":
        spec["d_v"] = _list_size(dataset_dir, "a")
    elif kind == "m3":
        spec.update(text_model=cfg.text_model, d_indicator=cfg.d_indicator,
                    standardize=cfg.standardize_features,
                    d_image=_list_size(dataset_dir, "image_feat"),
                    d_audio=_list_size(dataset_dir, "audio_feat"))
    elif kind == "mimic":
        spec["n_labs"] = _list_size(dataset_dir, "labs_percentiles")
        spec.update({k: getattr(cfg, k) for k in MIMIC_ARCH})
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected xor, m3 or mimic")
    return spec


def build_from_spec(spec: dict[str, Any]) -> SymileModel:
    kind = spec["kind"]
    common = dict(d=spec["d"], logit_scale_init=spec["logit_scale_init"],
                  normalize=spec["normalize"])
    if kind == "xor":
        return XORModel(d_v=spec["d_v"], **common)
    if kind == "m3":
        return M3Model(text_model=spec["text_model"], d_image=spec["d_image"],
                       d_audio=spec["d_audio"], d_indicator=spec["d_indicator"],
                       standardize=spec.get("standardize", False), **common)
    if kind == "mimic":
        return MIMICModel(n_labs=spec["n_labs"], **{k: spec[k] for k in MIMIC_ARCH if k in spec},
                          **common)
    raise ValueError(f"unknown model kind {kind!r}")


def fit_train_statistics(model: SymileModel, dataset_dir: str | Path,
                         batch_size: int = 4096) -> None:
    """M3: mean (and std) image / audio feature over the observed training rows (streamed)."""
    if not isinstance(model, M3Model):
        return
    files = split_files(dataset_dir, "train")
    for name, head in (("image", model.image), ("audio", model.audio)):
        ds = ParquetIterable(files, columns=[f"{name}_feat", f"{name}_missing"],
                             batch_size=batch_size, rank=0, world=1)   # every rank: all rows
        mean, std = observed_moments(((b[f"{name}_feat"], b[f"{name}_missing"]) for b in ds),
                                     head.impute.mean.shape[0])
        head.impute.set_mean(mean, std)
        log.info("%s: mean %s feature over observed train rows fitted", dataset_dir, name)


def build_model(kind: str, cfg: TrainConfig, dataset_dir: str | Path
                ) -> tuple[SymileModel, dict[str, Any]]:
    spec = model_spec(kind, cfg, dataset_dir)
    model = build_from_spec(spec)
    fit_train_statistics(model, dataset_dir)
    return model, spec


def load_checkpoint_model(path: str | Path, map_location: str | torch.device = "cpu"
                          ) -> tuple[SymileModel, dict[str, Any]]:
    """Rebuild a model from ``best.pt`` / ``last.pt``; returns (model in eval mode, payload)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint (train first)")
    payload = torch_load(path, map_location=map_location, weights_only=False)
    model = build_from_spec(payload["spec"])
    model.load_state_dict(payload["model"])
    return model.eval(), payload
