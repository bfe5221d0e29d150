"""What bench/gpu.py measures: the real encoder sizes, models built with random weights, and one
step function per figure, each through the project's own code where it exists.

No download: every architecture is built from a transformers config whose numbers are written
below with the file they come from. Feature inputs get the shapes that the project's
preprocessing (``features.encoders.ImageEncoder.preprocess`` / ``AudioEncoder.preprocess``)
gives with processors built locally at the real sizes; the timed call is the project's
``encode`` (inference_mode, autocast, pooling, copy of the (B, D) result to the host). The
training models come from ``train.factory.build_from_spec`` with the params-real.yaml section,
and one step is ``train.loop``'s (bf16 autocast on CUDA, Symile loss, backward, fused AdamW).
"""
from __future__ import annotations

import dataclasses
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import numpy as np
import torch

from symile_data.features import encoders
from symile_data.train import loop, models
from symile_data.train.factory import MIMIC_ARCH, build_from_spec
from symile_data.train.loss import LossInputError, loss_fn, symile_loss

# openai/clip-vit-large-patch14, config.json "vision_config" (the ViT-L/14 vision tower)
CLIP_VIT_L14 = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                "num_attention_heads": 16, "image_size": 224, "patch_size": 14,
                "projection_dim": 768, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
# openai/whisper-large-v3, config.json (encoder keys; 30 s window = 3000 mel frames -> 1500)
WHISPER_LARGE_V3 = {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20,
                    "encoder_ffn_dim": 5120, "num_mel_bins": 128, "max_source_positions": 1500,
                    "activation_function": "gelu", "vocab_size": 51866}
# FacebookAI/xlm-roberta-large (= xlm-roberta-large), config.json
XLMR_LARGE = {"vocab_size": 250002, "hidden_size": 1024, "num_hidden_layers": 24,
              "num_attention_heads": 16, "intermediate_size": 4096,
              "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
              "hidden_act": "gelu", "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}


@dataclass(frozen=True)
class Scale:
    """Every size the benchmark uses; ``REAL`` = the models above and params-real.yaml."""
    name: str
    clip: dict
    image_px: int            # CLIP processor resize + crop (pixels)
    whisper: dict
    chunk_s: int             # Whisper window (s): 100 mel frames per s, 2 per encoder frame
    xlmr: dict
    text_len: int            # tokens per text (M3 texts: ~48 with <s>, </s>)
    batches: tuple           # feature-extraction batch sizes swept
    loss_ns: tuple           # N of the loss sweep
    loss_d: int
    train: dict              # TrainConfig overrides on top of params-real.yaml (tiny only)
    max_logits: int | None   # None: the params' max_logits (the loss default, 2^28)


REAL = Scale("real", CLIP_VIT_L14, 224, WHISPER_LARGE_V3, 30, XLMR_LARGE, 48,
             (32, 64, 128, 256), (256, 512, 1024, 2048, 4096), 8192, {}, None)
_T = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 2}
TINY = Scale(
    "tiny", {**CLIP_VIT_L14, **_T, "image_size": 32, "patch_size": 8, "projection_dim": 32}, 32,
    {**WHISPER_LARGE_V3, "d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2,
     "encoder_ffn_dim": 64, "num_mel_bins": 16, "max_source_positions": 100}, 2,
    {**XLMR_LARGE, **_T, "vocab_size": 512}, 12, (2, 4), (8, 16, 32), 32,
    {"d": 32, "batch_size": 8, "cnn_width": 8, "cxr_pool": 8, "ecg_pool": 50},
    2 ** 12)                 # N = 32 gives 32^3 > 2^12 logits: the refusal path runs too


@contextmanager
def on(device: torch.device):
    """Build modules directly on the device (random init on the GPU: seconds, not minutes)."""
    with torch.device(device):
        yield


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- feature extraction ----------------------------------------------------------------------
def image_encoder(scale: Scale, device: torch.device, tmp: str):
    """(encoders.ImageEncoder with a random CLIPVisionModel, per-item input shape)."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel
    px = scale.image_px
    CLIPImageProcessor(size={"shortest_edge": px},          # openai defaults otherwise
                       crop_size={"height": px, "width": px}).save_pretrained(tmp)
    enc = object.__new__(encoders.ImageEncoder)             # its __init__ would download
    enc.device, enc.amp = device, "bf16"
    enc.processor = encoders.clip_processor(tmp, None, "released")
    from PIL import Image
    img = Image.fromarray(np.zeros((256, 320, 3), np.uint8))
    shape = tuple(enc.preprocess([img])["pixel_values"].shape[1:])     # (3, px, px)
    with on(device):
        enc.model = CLIPVisionModel(CLIPVisionConfig(**scale.clip)).eval()
    return enc, enc.model, shape, "pixel_values"


def audio_encoder(scale: Scale, device: torch.device, tmp: str):
    """(encoders.AudioEncoder with a random Whisper encoder, per-item input shape)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder
    WhisperFeatureExtractor(feature_size=scale.whisper["num_mel_bins"],
                            chunk_length=scale.chunk_s).save_pretrained(tmp)
    enc = object.__new__(encoders.AudioEncoder)
    enc.device, enc.amp, enc.pooling = device, "bf16", "window"      # the released pooling
    enc.processor = encoders.load_pretrained(WhisperFeatureExtractor, tmp, None)
    clip = np.zeros(5 * encoders.AUDIO_SR, np.float32)                # 5 s; padded to window
    shape = tuple(enc.preprocess([clip])["input_features"].shape[1:])   # (mels, frames)
    with on(device):     # the module AudioEncoder keeps (WhisperModel.get_encoder())
        enc.encoder = WhisperEncoder(WhisperConfig(**scale.whisper)).eval()
    return enc, enc.encoder, shape, "input_features"


class TextEncoder:
    """XLM-R forward over (B, L) ids, mean over attended tokens, (B, H) to the host: the
    image / audio ``encode`` pattern (the project tokenizes texts; this sizes a text model)."""

    def __init__(self, scale: Scale, device: torch.device):
        from transformers import XLMRobertaConfig, XLMRobertaModel
        self.device, self.amp = device, "bf16"
        with on(device):
            self.model = XLMRobertaModel(XLMRobertaConfig(**scale.xlmr),
                                         add_pooling_layer=False).eval()

    @torch.inference_mode()
    def encode(self, batch: dict) -> np.ndarray:
        with encoders.autocast(self.device, self.amp):
            h = self.model(**batch).last_hidden_state                    # (B, L, H)
        w = batch["attention_mask"].unsqueeze(-1).float()
        return ((h.float() * w).sum(1) / w.sum(1)).cpu().numpy()


def text_batch(scale: Scale, bs: int, device: torch.device, gen: torch.Generator) -> dict:
    """<s> random tokens </s>, full length (the longest text of a batch sets its L)."""
    cfg = scale.xlmr
    ids = torch.randint(5, cfg["vocab_size"], (bs, scale.text_len), generator=gen)
    ids[:, 0], ids[:, -1] = cfg["bos_token_id"], cfg["eos_token_id"]
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}


# ---- training ----------------------------------------------------------------------------------
def train_config(params: str, kind: str, scale: Scale):
    """``{kind}_train`` of ``params`` (params-real.yaml: the reference settings), with the
    tiny scale's overrides."""
    from symile_data.config import load_section
    from symile_data.train.config import TRAIN_CONFIGS
    cfg = load_section(TRAIN_CONFIGS[kind], f"{kind}_train", params)
    keep = {k: v for k, v in scale.train.items() if k in {f.name for f in
                                                           dataclasses.fields(cfg)}}
    return dataclasses.replace(cfg, **keep)


def build_train_model(kind: str, cfg, scale: Scale, device: torch.device):
    """The factory's model from the spec ``factory.model_spec`` would write (dims from the
    encoder configs instead of a shard schema); the text tower gets a random XLM-R."""
    from transformers import XLMRobertaConfig, XLMRobertaModel
    spec = {"kind": kind, "d": cfg.d, "logit_scale_init": cfg.logit_scale_init,
            "normalize": cfg.normalize}
    if kind == "m3":
        spec.update(text_model=cfg.text_model, d_indicator=cfg.d_indicator,
                    standardize=cfg.standardize_features, d_image=scale.clip["hidden_size"],
                    d_audio=scale.whisper["d_model"])
    else:
        spec.update({"n_labs": 50, **{k: getattr(cfg, k) for k in MIMIC_ARCH}})
    base = XLMRobertaConfig(**scale.xlmr)
    with on(device), mock.patch.object(models, "_load_text_base",
                                       lambda name: XLMRobertaModel(base)):
        model = build_from_spec(spec)
    return model.to(device).train(), spec


def train_batch(kind: str, cfg, scale: Scale, gen: torch.Generator) -> dict:
    """One host batch with the shard columns' dtypes and shapes (schema.py), no row missing."""
    b = cfg.batch_size
    if kind == "m3":
        tb = text_batch(scale, b, torch.device("cpu"), gen)
        no = torch.zeros(b, dtype=torch.bool)
        return {"image_feat": torch.randn(b, scale.clip["hidden_size"], generator=gen).half(),
                "audio_feat": torch.randn(b, scale.whisper["d_model"], generator=gen).half(),
                "text_input_ids": tb["input_ids"].int(),
                "text_attention_mask": tb["attention_mask"].to(torch.int8),
                "image_missing": no, "audio_missing": no, "text_missing": no}
    return {"ecg": torch.randn(b, 5000 * 12, generator=gen),                # (5000, 12)
            "cxr": torch.randint(0, 256, (b, 320 * 320), generator=gen).to(torch.uint8),
            "labs_percentiles": torch.rand(b, 50, generator=gen),
            "labs_observed": torch.ones(b, 50, dtype=torch.int8)}


def train_step_fn(model, cfg, batch: dict, device: torch.device):
    """loop._train's micro-batch + optimiser step (grad_accum 1, one rank)."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=True)
    compute = loss_fn("symile", cfg.negatives, normalize=False, max_logits=cfg.max_logits)
    gen = torch.Generator().manual_seed(cfg.seed)

    def step() -> None:
        with loop.autocast(device):
            value = compute(model(loop.to_device(batch, device)), model.logit_scale, gen)
        value.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


# ---- loss --------------------------------------------------------------------------------------
def refusal(n: int, negatives: str, max_logits: int) -> str | None:
    """The loss's own message when it refuses this N (O(N^2): N^3 > max_logits), else None;
    asked of (N, 1) embeddings, so nothing big is allocated first."""
    if negatives != "n_squared" or n ** 3 <= max_logits:
        return None
    try:
        symile_loss([torch.zeros(n, 1)] * 3, torch.zeros(()), negatives, max_logits=max_logits)
    except LossInputError as e:
        return str(e)
    return None


def loss_step_fn(n: int, d: int, negatives: str, max_logits: int, device: torch.device):
    """Symile forward + backward, M = 3 embeddings (N, d) in fp32 (LayerNorm outputs under
    autocast), logit scale -7 (MIMIC), under loop.autocast as in training."""
    gen = torch.Generator().manual_seed(0)
    embs = [torch.randn(n, d, generator=gen).to(device).requires_grad_() for _ in range(3)]
    scale = torch.tensor(-7.0, device=device, requires_grad=True)

    def step() -> None:
        with loop.autocast(device):
            value = symile_loss(embs, scale, negatives, gen, max_logits=max_logits)
        value.backward()
        for t in (*embs, scale):
            t.grad = None
    return step


def tempdir():
    return tempfile.TemporaryDirectory(prefix="symile-gpu-bench-")
