"""``metadata.json`` of an M3 reference export, filled from the training shards' manifest.

The reference writes it in ``save_representations.py`` and reads it in
``experiments/models/symile_m3_model.py`` (``SymileM3Model.__init__``: the three
``*_enc_hidden_sz`` build the projection heads). The model ids are what the features were
computed with (``extra.features.{image,audio,text}.model`` of the join's manifest): absolute
paths for local models (a recorded path is relative to the directory the features stage ran
in), hub ids otherwise. The reference took each hidden size from the encoder's
``config.hidden_size``: image and audio are
the stored feature widths (CLIP ``pooler_output`` and the Whisper encoder's mean both have the
config's hidden size); the text tower is fine-tuned, so only tokens are stored and its hidden
size comes from the text model's config (``AutoConfig``, offline: a local directory or the
Hugging Face cache) unless the manifest or ``--text-enc-hidden-sz`` gives it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from symile_data.publish.reference import find_key

log = logging.getLogger(__name__)

DESCRIPTION = ("text tokens saved (because text encoder will be finetuned); audio reps saved "
               "(because audio encoder will not be finetuned); image reps saved (because image "
               "encoder will not be finetuned)")

# key -> (python type, the reference file that writes / reads it); docs/publish.md lists these
REFERENCE_KEYS: dict[str, tuple[type, str]] = {
    "dataset_description": (str, "data_processing/symile_m3/save_representations.py (writes)"),
    "image_model_id": (str, "save_representations.py (writes; main.py takes --image_model_id)"),
    "audio_model_id": (str, "save_representations.py (writes; main.py takes --audio_model_id)"),
    "text_model_id": (str, "save_representations.py (writes; datasets.py / models take "
                           "--text_model_id)"),
    "image_enc_hidden_sz": (int, "experiments/models/symile_m3_model.py (reads)"),
    "audio_enc_hidden_sz": (int, "experiments/models/symile_m3_model.py (reads)"),
    "text_enc_hidden_sz": (int, "experiments/models/symile_m3_model.py (reads)"),
}
# ours, next to the reference keys (the reference ignores unknown keys)
EXTRA_KEYS: dict[str, tuple[type, ...]] = {
    "max_token_len": (int,), "missingness_prob": (float, type(None)),
    "split_sizes": (dict,), "source": (dict,)}


def _identity(manifest: dict[str, Any], modality: str) -> dict[str, Any]:
    ident = manifest.get("extra", {}).get("features", {}).get(modality)
    if not isinstance(ident, dict) or not ident.get("model"):
        raise ValueError(
            f"{manifest.get('name')}: the manifest records no {modality} encoder "
            f"(extra.features.{modality}.model); export-reference needs M3 training shards "
            "written by `symile-data features join` (m3_shards)")
    return ident


def local_model(model: str, dataset_dir: Path | None) -> str:
    """A relative local model path as recorded (relative to the directory the features stage
    ran in): as given when it exists here, else under an ancestor of the dataset directory
    (the repository root of ``data/m3/shards/<name>``); unchanged when none exists."""
    if Path(model).is_absolute() or Path(model).is_dir() or dataset_dir is None:
        return model
    found = next((p / model for p in Path(dataset_dir).resolve().parents
                  if (p / model).is_dir()), None)
    return str(found) if found is not None else model


def model_id(model: str, dataset_dir: Path | None) -> str:
    """What metadata.json records: the absolute path of a local model (found as
    ``local_model`` finds it), so ``--text_model_id <it>`` works from any folder (the
    reference runs from its ``experiments/``); a hub id unchanged."""
    found = local_model(model, dataset_dir)
    return str(Path(found).resolve()) if Path(found).is_dir() else model


def text_hidden_size(ident: dict[str, Any], dataset_dir: Path | None = None) -> int:
    """``config.hidden_size`` of the text model the tokens were made for (offline)."""
    from transformers import AutoConfig

    from symile_data.features.encoders import is_local, load_pretrained
    model = local_model(ident["model"], dataset_dir)
    revision = None if is_local(model) else ident.get("revision")
    try:
        cfg = load_pretrained(AutoConfig, model, revision)
    except (OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"text_enc_hidden_sz: cannot read the config of text model '{model}' "
                         f"({e}); pass --text-enc-hidden-sz N (1024 for xlm-roberta-large)"
                         ) from e
    size = getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model", None)
    if not isinstance(size, int):
        raise ValueError(f"text model '{model}': its config has no hidden_size; pass "
                         "--text-enc-hidden-sz N")
    return size


def encoder_metadata(manifest: dict[str, Any], text_enc_hidden_sz: int | None = None,
                     dataset_dir: Path | None = None) -> dict[str, Any]:
    """Model ids and the text hidden size; checked before any tensor is exported."""
    ids = {m: _identity(manifest, m) for m in ("image", "audio", "text")}
    text_sz = (text_enc_hidden_sz
               or find_key(ids["text"], ("hidden_size", "text_enc_hidden_sz"))
               or text_hidden_size(ids["text"], dataset_dir))
    return {"dataset_description": DESCRIPTION,
            **{f"{m}_model_id": model_id(str(ids[m]["model"]), dataset_dir)
               for m in ("image", "audio", "text")},
            "text_enc_hidden_sz": int(text_sz)}


def reference_metadata(head: dict[str, Any], manifest: dict[str, Any], dims: dict[str, int],
                       sizes: dict[str, int], missingness_prob: float | None) -> dict[str, Any]:
    """head: ``encoder_metadata``; dims: stored widths {image, audio, text_input_ids};
    sizes: rows per split."""
    for name in ("image", "audio", "text_input_ids"):
        if name not in dims:
            raise ValueError(f"{manifest.get('name')}: every split is empty; no {name} width")
    meta = {**head,
            "image_enc_hidden_sz": int(dims["image"]),
            "audio_enc_hidden_sz": int(dims["audio"]),
            "max_token_len": int(dims["text_input_ids"]),
            "missingness_prob": None if missingness_prob is None else float(missingness_prob),
            "split_sizes": sizes,
            "source": {"name": manifest["name"], "params_hash": manifest["params_hash"]}}
    check_metadata(meta)
    return meta


def check_metadata(meta: dict[str, Any]) -> None:
    """Every key the reference reads is present with its type (raises naming the key)."""
    for key, (typ, _) in REFERENCE_KEYS.items():
        if not isinstance(meta.get(key), typ) or isinstance(meta.get(key), bool):
            raise ValueError(f"metadata.json: '{key}' must be {typ.__name__}, "
                             f"got {meta.get(key)!r}")
