"""Tiny models (determinism, real loading path), encoder loading errors, audio pooling."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from symile_data.cli import main as cli_main
from symile_data.config import load_section
from symile_data.features.config import FeaturesConfig, JoinConfig, TinyModelsConfig
from symile_data.features.encoders import (AudioEncoder, ImageEncoder, ModelUnavailable,
                                           load_pretrained)
from symile_data.features.text import TextTokenizer, pad_tokens

REPO = Path(__file__).resolve().parents[2]


def _digest(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def test_tiny_models_cli_deterministic(tmp_path, tiny_models):
    assert cli_main(["features", "tiny-models", "--out", str(tmp_path / "a"), "--seed", "0"]) == 0
    a, b = _digest(tmp_path / "a"), _digest(Path(tiny_models["image"]).parent)
    assert a == b and len(a) >= 9


def test_tokenizer_supports_missing_token(tiny_models):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_models["text"])
    n = len(tok)
    tok.add_special_tokens({"additional_special_tokens": ["[MISSING]"]})
    assert len(tok) == n + 1 and tok.convert_tokens_to_ids("[MISSING]") == n
    ids = tok("ο σκύλος_dog_犬")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.unk_token_id not in ids  # every SPEC script is covered by the vocabulary


def test_offline_missing_hub_id_is_clear(monkeypatch):
    from transformers import CLIPVisionModel
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="no-such-org/no-model.*rev1.*offline"):
        load_pretrained(CLIPVisionModel, "no-such-org/no-model", "rev1")
    with pytest.raises(ValueError, match="pin a revision"):
        load_pretrained(CLIPVisionModel, "no-such-org/no-model", None)


def test_local_dir_with_revision_rejected(tiny_models):
    with pytest.raises(ValueError, match="local directory"):
        ImageEncoder(tiny_models["image"], "main", device="cpu")


def test_identity_records_local_revision(tiny_models):
    enc = ImageEncoder(tiny_models["image"], None, device="cpu")
    assert enc.identity.revision.startswith("local-") and enc.dim == 32
    other = ImageEncoder(tiny_models["image"], None, device="cpu", dtype="float32")
    assert other.identity.encoder_id() != enc.identity.encoder_id()


def test_audio_pooling_window_and_real_frames(tiny_models):
    from transformers import WhisperModel
    clip = (0.2 * np.sin(np.arange(8000) / 5)).astype(np.float32)  # 0.5 s -> 50 mel frames
    win = AudioEncoder(tiny_models["audio"], None, device="cpu", pooling="window")
    real = AudioEncoder(tiny_models["audio"], None, device="cpu", pooling="real_frames")
    batch = win.preprocess([clip])
    ref = WhisperModel.from_pretrained(tiny_models["audio"]).encoder.eval()
    with torch.no_grad():
        h = ref(input_features=batch["input_features"]).last_hidden_state[0]  # (1500, D)
    np.testing.assert_allclose(win.encode(batch)[0], h.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(real.encode(real.preprocess([clip]))[0], h[:25].mean(0).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_pad_tokens_fixed_and_truncated():
    import pyarrow as pa
    arr = pa.array([[0, 5, 6, 2], [0, 7, 2], [0, 8, 9, 10, 11, 2]], pa.list_(pa.int32()))
    ids, mask = pad_tokens(arr, 5, pad_id=1)
    assert ids.tolist() == [[0, 5, 6, 2, 1], [0, 7, 2, 1, 1], [0, 8, 9, 10, 2]]
    assert mask.tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_text_tokenizer_truncation_keeps_eos(tiny_models):
    tok = TextTokenizer(tiny_models["text"], None, max_length=4)
    ids, trunc = tok.tokenize(["dog", "the dog runs in the park"])
    assert trunc.tolist() == [False, True] and len(ids[1]) == 4 and ids[1][-1] == 2


def test_repo_params_sections_load():
    load_section(TinyModelsConfig, "features_tiny_models", REPO / "params.yaml")
    load_section(FeaturesConfig, "features_m3", REPO / "params.yaml")
    load_section(JoinConfig, "m3_shards", REPO / "params.yaml")


def test_unloadable_local_model_is_one_line_naming_it(tmp_path, capsys):
    """A local model folder whose config.json is cut short: one ModelUnavailable (an input
    error) naming the folder and why, one line through the error boundary, no traceback."""
    import argparse
    from transformers import AutoTokenizer
    from symile_data.features.encoders import load_pretrained
    from symile_data.stage import guarded
    model = tmp_path / "xlm-roberta"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "xlm-roberta", ')
    with pytest.raises(ModelUnavailable, match=f"local directory '{model}'"):
        load_pretrained(AutoTokenizer, str(model), None)
    rc = guarded(lambda a: load_pretrained(AutoTokenizer, str(model), None), argparse.Namespace())
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(model) in err[0], err
