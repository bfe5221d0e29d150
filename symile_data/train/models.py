"""Encoders for the three experiments (SPEC section 4). Every model maps a shard batch (dict of
tensors named by the column contracts in docs/ARCHITECTURE.md) to one (B, d) embedding per
modality, in ``model.modalities`` order, and owns the learned ``logit_scale``.

- XOR: one Linear(d_v, d) per bit vector a, b, c (L2-normalised by default, as the reference).
- M3: image / audio projection heads over precomputed features (mean imputation + missingness
  embedding, then Linear -> LayerNorm); text tower = a Hugging Face model's embeddings plus its
  FIRST transformer layer, a per-token Linear(hidden, d), a mean over the attended tokens and
  LayerNorm; ``[MISSING]`` is one id appended to the vocabulary.
- MIMIC: CXR ResNet-50 (fc -> Linear(2048, d) -> LayerNorm), ECG ResNet-18 with a 1-channel first
  conv over (1, 5000, 12) (fc -> Linear(512, d) -> LayerNorm), labs MLP 100 -> 256 -> 1024 -> d
  with GELU and a final LayerNorm.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from symile_data.train.missing import FeatureImputer, labs_input, replace_missing_text
from symile_data.train.resnet import RESNETS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SymileModel(nn.Module):
    modalities: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()        # shard columns the forward pass reads

    def __init__(self, logit_scale_init: float, normalize: bool):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
        self.normalize = normalize

    def _out(self, z: Tensor) -> Tensor:
        return F.normalize(z, dim=-1) if self.normalize else z

    def encode(self, modality: str, batch: dict) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch: dict) -> list[Tensor]:
        return [self.encode(m, batch) for m in self.modalities]


class XORModel(SymileModel):
    modalities = ("a", "b", "c")
    columns = ("a", "b", "c")

    def __init__(self, d_v: int = 5, d: int = 16, logit_scale_init: float = -0.3,
                 normalize: bool = True):
        super().__init__(logit_scale_init, normalize)
        self.enc = nn.ModuleDict({m: nn.Linear(d_v, d) for m in self.modalities})

    def encode(self, modality: str, batch: dict) -> Tensor:
        x = batch[modality].to(self.enc[modality].weight.dtype)      # (B, d_v) bits
        return self._out(self.enc[modality](x))


class FeatureHead(nn.Module):
    """Precomputed feature (B, D) + missing flag -> (B, d): impute, Linear, LayerNorm."""

    def __init__(self, dim: int, d: int, d_indicator: int, standardize: bool = False):
        super().__init__()
        self.impute = FeatureImputer(dim, d_indicator, standardize)
        self.proj = nn.Linear(dim + d_indicator, d)
        self.ln = nn.LayerNorm(d)

    def forward(self, feat: Tensor, missing: Tensor) -> Tensor:
        return self.ln(self.proj(self.impute(feat, missing)))


def _load_text_base(name_or_path: str):
    from transformers import AutoModel
    try:
        return AutoModel.from_pretrained(name_or_path)
    except OSError as e:
        raise OSError(f"text model {name_or_path!r}: cannot load it with from_pretrained (not "
                      f"a local model dir and not in the Hugging Face cache / reachable): {e}"
                      ) from e


class TextTower(nn.Module):
    """Token ids (B, L) -> (B, d) from the embeddings + first layer of a pretrained model."""

    def __init__(self, name_or_path: str | Path, d: int):
        super().__init__()
        base = _load_text_base(str(name_or_path))
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if layers is None or len(layers) < 1:
            raise ValueError(f"text model {name_or_path!r}: expected an encoder with "
                             f".encoder.layer (BERT / XLM-R style), got {type(base).__name__}")
        cfg = base.config
        self.missing_id = int(cfg.vocab_size)                # [MISSING] appended to the vocab
        base.resize_token_embeddings(cfg.vocab_size + 1)
        base.encoder.layer = layers[:1]                      # embeddings + first layer only
        base.config.num_hidden_layers = 1
        if getattr(base, "pooler", None) is not None:
            base.pooler = None
        self.base = base
        self.bos_id, self.eos_id = cfg.bos_token_id, cfg.eos_token_id
        self.pad_id = cfg.pad_token_id if cfg.pad_token_id is not None else 0
        self.proj = nn.Linear(cfg.hidden_size, d)
        self.ln = nn.LayerNorm(d)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, missing: Tensor) -> Tensor:
        ids, mask = replace_missing_text(input_ids.long(), attention_mask.long(), missing,
                                         self.missing_id, self.bos_id, self.eos_id, self.pad_id)
        hidden = self.base(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
        # mean over tokens of proj(h) == proj(mean of h): pool first, project (B, H) -> (B, d).
        # Same function as the reference's per-token Linear, without a (B, L, d) tensor
        # (d = 8192, batch 256, 48 tokens: 400 MB per activation, its copies and gradients).
        w = mask.unsqueeze(-1).to(hidden.dtype)                                 # (B, L, 1)
        n = w.sum(1)                                                             # (B, 1)
        pooled = (hidden * w).sum(1) / n.clamp(min=1.0)                          # (B, H)
        has_tok = (n > 0).to(hidden.dtype)                # a row without tokens pools to 0
        return self.ln(F.linear(pooled, self.proj.weight) + has_tok * self.proj.bias)


class M3Model(SymileModel):
    modalities = ("image", "audio", "text")
    columns = ("image_feat", "audio_feat", "text_input_ids", "text_attention_mask",
               "image_missing", "audio_missing", "text_missing", "cls_id")

    def __init__(self, text_model: str, d_image: int, d_audio: int, d: int = 8192,
                 d_indicator: int = 16, logit_scale_init: float = -6.0,
                 normalize: bool = False, standardize: bool = False):
        super().__init__(logit_scale_init, normalize)
        self.image = FeatureHead(d_image, d, d_indicator, standardize)
        self.audio = FeatureHead(d_audio, d, d_indicator, standardize)
        self.text = TextTower(text_model, d)

    def encode(self, modality: str, batch: dict) -> Tensor:
        if modality == "image":
            return self._out(self.image(batch["image_feat"], batch["image_missing"]))
        if modality == "audio":
            return self._out(self.audio(batch["audio_feat"], batch["audio_missing"]))
        return self._out(self.text(batch["text_input_ids"], batch["text_attention_mask"],
                                   batch["text_missing"]))


def _head(n_in: int, d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, d), nn.LayerNorm(d))


class MIMICModel(SymileModel):
    modalities = ("ecg", "labs", "cxr")
    columns = ("ecg", "labs_percentiles", "labs_observed", "cxr")

    def __init__(self, d: int = 8192, logit_scale_init: float = -7.0, normalize: bool = False,
                 n_labs: int = 50, cxr_encoder: str = "resnet50", ecg_encoder: str = "resnet18",
                 cnn_width: int = 64, cxr_pool: int = 1, ecg_pool: int = 1):
        """Defaults = the reference encoders. ``cnn_width`` (base width of both ResNets),
        ``cxr_pool`` (avg-pool factor on the 320x320 CXR) and ``ecg_pool`` (avg-pool factor
        along the 5000 ECG time steps) shrink them for CPU demos; 64 / 1 / 1 = reference."""
        super().__init__(logit_scale_init, normalize)
        self.cxr = RESNETS[cxr_encoder](in_channels=3, width=cnn_width)
        self.cxr.fc = _head(self.cxr.out_features, d)
        self.ecg = RESNETS[ecg_encoder](in_channels=1, width=cnn_width)
        self.ecg.fc = _head(self.ecg.out_features, d)
        self.cxr_pool, self.ecg_pool = cxr_pool, ecg_pool
        self.labs = nn.Sequential(nn.Linear(2 * n_labs, 256), nn.GELU(), nn.Linear(256, 1024),
                                  nn.GELU(), nn.Linear(1024, d), nn.LayerNorm(d))
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def _cxr_input(self, cxr: Tensor) -> Tensor:
        """(B, S*S) uint8 grayscale -> (B, 3, S, S) ImageNet-normalised."""
        side = math.isqrt(cxr.shape[1])
        if side * side != cxr.shape[1]:
            raise ValueError(f"cxr rows must hold a square image, got {cxr.shape[1]} values")
        x = cxr.float().div(255.0).view(-1, 1, side, side)
        if self.cxr_pool > 1:                           # (B, 1, S/p, S/p)
            x = F.avg_pool2d(x, self.cxr_pool)
        return (x.expand(-1, 3, -1, -1) - self.img_mean) / self.img_std

    def encode(self, modality: str, batch: dict) -> Tensor:
        if modality == "cxr":
            return self._out(self.cxr(self._cxr_input(batch["cxr"])))
        if modality == "ecg":
            ecg = batch["ecg"].float()                  # (B, T*12) row-major (T, 12)
            x = ecg.view(ecg.shape[0], 1, -1, 12)
            if self.ecg_pool > 1:                       # (B, 1, T/p, 12)
                x = F.avg_pool2d(x, (self.ecg_pool, 1))
            return self._out(self.ecg(x))
        return self._out(self.labs(labs_input(batch["labs_percentiles"],
                                              batch["labs_observed"])))
