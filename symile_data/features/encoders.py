"""Encoders by name (Hub id or local dir) through transformers' ``from_pretrained``.

image: CLIPVisionModel ``pooler_output`` (B, D_img) on CLIPImageProcessor pixels.
audio: Whisper encoder ``last_hidden_state`` (B, 1500, D_aud) averaged over frames: over the
       whole padded 30 s window (``pooling="window"``, the released features) or over the real
       frames only (``pooling="real_frames"``), on WhisperFeatureExtractor log-mels at 16 kHz.
text:  tokenizer ids (XLM-R style); see tables.encode_texts.

The same code path runs online and offline; a Hub id that is not cached while the Hub is
offline raises ModelUnavailable naming the id and revision. The identity recorded with every
feature table is (model, resolved revision, preprocessing), see ``EncoderIdentity``.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from symile_data.errors import InputError
from symile_data.hashing import sha256_file, sha256_json
from symile_data.kernels import apply_threads

AUDIO_SR = 16_000  # Hz, Whisper's sampling rate


class ModelUnavailable(RuntimeError, InputError):
    """A model id/revision cannot be loaded (not cached and the Hub unreachable/offline, or a
    local directory that does not load): an input error, one line naming the model."""


@dataclass(frozen=True)
class EncoderIdentity:
    """What a feature depends on besides the item bytes; hashed into the table's encoder id."""
    modality: str
    model: str            # Hub id or local dir as given
    revision: str         # resolved commit hash, or "local-<sha256 of files>" for a local dir
    preprocessing: dict   # processor config + pooling etc.
    dtype: str            # storage dtype of the feature column

    def encoder_id(self) -> str:
        return sha256_json(asdict(self))[:16]


def is_local(name: str) -> bool:
    return Path(name).is_dir()


def local_revision(path: str | Path) -> str:
    """A revision for a local model dir: sha256 over (relative name, file sha256) pairs."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    return "local-" + sha256_json([[str(p.relative_to(root)), sha256_file(p)]
                                   for p in files])[:16]


def load_pretrained(cls: Any, name: str, revision: str | None, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` with a clear error when an id is not available offline."""
    if is_local(name):
        if revision:
            raise ValueError(f"model '{name}' is a local directory; revision '{revision}' "
                             "applies only to Hub ids (set it to null)")
        try:
            return cls.from_pretrained(name, **kwargs)
        except Exception as e:  # noqa: BLE001 -- transformers raises OSError, ValueError, ...
            why = next((ln.strip() for ln in str(e).splitlines() if ln.strip()),
                       type(e).__name__)
            raise ModelUnavailable(f"cannot load {cls.__name__} from local directory '{name}': "
                                   f"{type(e).__name__}: {why[:300]}") from e
    if not revision:
        raise ValueError(f"model '{name}': pin a revision (commit sha or tag) for a Hub id; "
                         f"no local directory of that name exists either")
    try:
        return cls.from_pretrained(name, revision=revision, **kwargs)
    except OSError as e:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        raise ModelUnavailable(
            f"cannot load {cls.__name__} '{name}' at revision '{revision}': "
            + ("it is not in the local Hugging Face cache and the Hub is offline "
               "(HF_HUB_OFFLINE=1). " if offline else "")
            + f"Download it once online or pass a local directory. Cause: {e}") from e


def resolved_revision(name: str, revision: str | None, model: Any) -> str:
    if is_local(name):
        return local_revision(name)
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return str(commit or revision)


def pick_device(device: str) -> torch.device:
    apply_threads()  # torch compute starts here: the pinned thread count (symile_data.kernels)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but CUDA is not available")
    return torch.device(device)


def autocast(device: torch.device, amp: str):
    """bf16/fp16 autocast on CUDA only (CPU always runs float32 for stable features)."""
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _processor_config(proc: Any) -> dict:
    d = proc.to_dict()
    return {k: v for k, v in sorted(d.items()) if k not in ("processor_class",)}


# ---- decoding (runs in DataLoader workers) ----------------------------------------------------
def decode_image(data: bytes):
    from PIL import Image
    img = Image.open(io.BytesIO(data))
    img.load()  # force full decode so truncated/corrupt files fail here, per item
    return img.convert("RGB")


def decode_image_as_opened(data: bytes):
    """The image as PIL opens it (no mode conversion): what the released pipeline handed to
    CLIPImageProcessor, whose own convert_rgb then runs (pixels loaded here, so a corrupt file
    fails per item)."""
    from PIL import Image
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def clip_processor(model: str, revision: str | None, kind: str):
    """released: the PIL CLIPImageProcessor (``CLIPImageProcessorPil`` in transformers >= 5,
    the slow ``CLIPImageProcessor`` before), as the released features used; auto: transformers'
    default backend for ``CLIPImageProcessor`` (torchvision when installed)."""
    if kind not in ("released", "auto"):
        raise ValueError(f"image_processor must be 'released' or 'auto', got '{kind}'")
    from transformers import CLIPImageProcessor
    cls = CLIPImageProcessor
    if kind == "released":
        try:
            from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
            cls = CLIPImageProcessorPil
        except ImportError:   # transformers < 5: CLIPImageProcessor is the PIL one
            pass
    return load_pretrained(cls, model, revision)


def decode_audio(data: bytes) -> np.ndarray:
    """WAV/FLAC/OGG bytes -> mono float32 (n,) at 16 kHz."""
    import soundfile as sf
    wav, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)  # (n, channels)
    if wav.shape[0] == 0:
        raise ValueError("audio has zero samples")
    mono = wav.mean(axis=1)
    if sr != AUDIO_SR:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(int(sr), AUDIO_SR)
        mono = resample_poly(mono, AUDIO_SR // g, int(sr) // g).astype(np.float32)
    if not np.isfinite(mono).all():
        raise ValueError("audio contains non-finite samples")
    return mono


class ImageEncoder:
    modality = "image"

    def __init__(self, model: str, revision: str | None, device: str = "auto",
                 amp: str = "bf16", dtype: str = "float16", image_source: str = "source",
                 image_processor: str = "released"):
        from transformers import CLIPVisionModel
        self.device = pick_device(device)
        self.amp = amp
        self.processor = clip_processor(model, revision, image_processor)
        self.model = load_pretrained(CLIPVisionModel, model, revision).eval().to(self.device)
        self.dim = int(self.model.config.hidden_size)
        # released: the image as opened (the processor converts to RGB); else decoded to RGB here
        self.decode = decode_image_as_opened if image_processor == "released" else decode_image
        self.identity = EncoderIdentity(
            "image", model, resolved_revision(model, revision, self.model),
            {"processor": _processor_config(self.processor), "output": "pooler_output",
             "input": image_source, "processor_backend": image_processor}, dtype)

    def preprocess(self, items: list) -> dict[str, torch.Tensor]:
        # (B, 3, H, W) float32 pixels
        return {"pixel_values": self.processor(images=items, return_tensors="pt")["pixel_values"]}

    @torch.inference_mode()
    def encode(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        px = batch["pixel_values"].to(self.device, non_blocking=True)
        with autocast(self.device, self.amp):
            out = self.model(pixel_values=px).pooler_output  # (B, D_img)
        return out.float().cpu().numpy()


class AudioEncoder:
    modality = "audio"

    def __init__(self, model: str, revision: str | None, device: str = "auto",
                 amp: str = "bf16", dtype: str = "float16", pooling: str = "window"):
        from transformers import WhisperFeatureExtractor, WhisperModel
        if pooling not in ("window", "real_frames"):
            raise ValueError(f"audio pooling must be 'window' or 'real_frames', got '{pooling}'")
        self.device = pick_device(device)
        self.amp = amp
        self.pooling = pooling
        self.processor = load_pretrained(WhisperFeatureExtractor, model, revision)
        full = load_pretrained(WhisperModel, model, revision)
        self.encoder = full.get_encoder().eval().to(self.device)  # decoder weights dropped
        self.dim = int(full.config.d_model)
        self.identity = EncoderIdentity(
            "audio", model, resolved_revision(model, revision, full),
            {"processor": _processor_config(self.processor), "pooling": pooling,
             "sampling_rate": AUDIO_SR, "output": "encoder.last_hidden_state"}, dtype)
        del full

    decode = staticmethod(decode_audio)

    def preprocess(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        # Whisper pads/truncates every clip to the fixed 30 s window (3000 mel frames), so the
        # encoder cost does not depend on clip length; length bucketing cannot change it.
        f = self.processor(items, sampling_rate=AUDIO_SR, return_tensors="pt",
                           return_attention_mask=True)
        return {"input_features": f["input_features"],          # (B, n_mels, 3000)
                "mel_mask": f["attention_mask"].to(torch.int8)}  # (B, 3000) 1 = real frame

    @torch.inference_mode()
    def encode(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        x = batch["input_features"].to(self.device, non_blocking=True)
        with autocast(self.device, self.amp):
            h = self.encoder(input_features=x).last_hidden_state  # (B, 1500, D_aud)
        h = h.float()
        if self.pooling == "window":
            return h.mean(dim=1).cpu().numpy()
        # encoder frame t covers mel frames 2t, 2t+1 (stride-2 conv): real if either is real
        mel = batch["mel_mask"].to(self.device)
        enc = mel.view(mel.shape[0], -1, 2).amax(dim=2)[:, : h.shape[1]].float()  # (B, 1500)
        enc[:, 0] = 1.0  # an empty clip still has one frame (never divide by zero)
        return ((h * enc[..., None]).sum(1) / enc.sum(1, keepdim=True)).cpu().numpy()


def build_encoder(modality: str, model: str, revision: str | None, **kw: Any):
    if modality == "image":
        kw.pop("pooling", None)
        return ImageEncoder(model, revision, **kw)
    if modality == "audio":
        kw.pop("image_source", None)
        kw.pop("image_processor", None)
        return AudioEncoder(model, revision, **kw)
    raise ValueError(f"unknown modality '{modality}' (image, audio; text is tokenized)")
