"""Encoders and missing-modality inputs on tiny tensors."""
import pytest
import torch

from symile_data.train.missing import (FeatureImputer, impute_labs, labs_input, observed_mean,
                                       observed_moments, replace_missing_text)
from symile_data.train.models import M3Model, MIMICModel, TextTower, XORModel
from symile_data.train.resnet import resnet18, resnet50


def test_feature_imputer_uses_train_mean_and_indicator():
    imp = FeatureImputer(3, d_indicator=2)
    feats = torch.tensor([[1.0, 2, 3], [5, 6, 7], [100, 100, 100]])
    missing = torch.tensor([False, False, True])
    mean = observed_mean([(feats[:2], missing[:2]), (feats[2:], missing[2:])], 3)
    assert torch.allclose(mean, torch.tensor([3.0, 4, 5]))
    with pytest.raises(RuntimeError, match="never fitted"):
        imp(feats, missing)
    imp.set_mean(mean)
    out = imp(feats, missing)
    assert out.shape == (3, 5)
    assert torch.equal(out[2, :3], mean) and torch.equal(out[0, :3], feats[0])
    assert torch.equal(out[0, 3:], imp.indicator.weight[0])
    assert torch.equal(out[2, 3:], imp.indicator.weight[1])
    with pytest.raises(ValueError, match="no observed"):
        observed_mean([(feats, torch.ones(3, dtype=torch.bool))], 3)


def test_feature_imputer_standardize_option():
    """standardize=True: observed rows z-scored with the observed train mean / std (streamed,
    population std), a missing row becomes the zero vector; the std buffer exists only then."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(50, 4, generator=g) * torch.tensor([0.1, 1.0, 5.0, 0.0]) + 3.0
    missing = torch.zeros(50, dtype=torch.bool)
    missing[::7] = True
    mean, std = observed_moments([(feats[:20], missing[:20]), (feats[20:], missing[20:])], 4)
    obs = feats[~missing].double()
    assert torch.allclose(mean.double(), obs.mean(0), atol=1e-6)
    assert torch.allclose(std.double(), obs.std(0, unbiased=False), atol=1e-6)
    imp = FeatureImputer(4, d_indicator=2, standardize=True)
    assert "std" in imp.state_dict() and "std" not in FeatureImputer(4, 2).state_dict()
    with pytest.raises(ValueError, match="needs the observed std"):
        imp.set_mean(mean)
    imp.set_mean(mean, std)
    out = imp(feats, missing)[:, :4]
    assert torch.equal(out[missing], torch.zeros(int(missing.sum()), 4))
    z = out[~missing][:, :3]
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.equal(out[:, 3], torch.zeros(50))   # the constant 4th dim: centred ...
    shifted = feats.clone()
    shifted[:, 3] += 2.0                              # ... and not scaled by ~1/0 at test time
    assert torch.allclose(imp(shifted, missing)[~missing, 3], torch.full((int((~missing).sum()),), 2.0))


def test_replace_missing_text():
    ids = torch.tensor([[0, 7, 8, 2], [0, 9, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    new_ids, new_mask = replace_missing_text(ids, mask, torch.tensor([False, True]), 50, 0, 2, 1)
    assert new_ids.tolist() == [[0, 7, 8, 2], [0, 50, 2, 1]]
    assert new_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_labs_impute_and_indicator_meaning():
    pct = torch.tensor([[0.2, float("nan")], [float("nan"), 0.9]])
    imputed, observed = impute_labs(pct, torch.tensor([0.5, 0.4]))
    assert torch.allclose(imputed, torch.tensor([[0.2, 0.4], [0.5, 0.9]]))
    assert observed.tolist() == [[1, 0], [0, 1]]                    # 1 = observed
    assert labs_input(imputed, observed).shape == (2, 4)
    with pytest.raises(ValueError, match="NaN"):
        labs_input(pct, observed)


def test_resnets_shapes_and_names():
    r18 = resnet18(in_channels=1)
    assert r18(torch.randn(2, 1, 64, 12)).shape == (2, 512)
    r50 = resnet50().eval()
    assert r50(torch.randn(1, 3, 32, 32)).shape == (1, 2048)
    names = set(r50.state_dict())
    assert {"conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_mean"} <= names
    assert sum(p.numel() for p in r50.parameters()) == 23_508_032    # torchvision minus fc


def test_xor_model_normalised():
    m = XORModel(d_v=5, d=16)
    embs = m({k: torch.randint(0, 2, (4, 5), dtype=torch.int8) for k in "abc"})
    assert [e.shape for e in embs] == [(4, 16)] * 3
    assert torch.allclose(embs[0].norm(dim=1), torch.ones(4))
    assert m.logit_scale.item() == pytest.approx(-0.3)


def test_m3_model_from_saved_text_model(tiny_text_model):
    m = M3Model(str(tiny_text_model), d_image=8, d_audio=6, d=12, d_indicator=4)
    assert m.text.missing_id == 50
    assert m.text.base.embeddings.word_embeddings.num_embeddings == 51   # + [MISSING]
    assert len(m.text.base.encoder.layer) == 1
    m.image.impute.set_mean(torch.zeros(8))
    m.audio.impute.set_mean(torch.zeros(6))
    b = 3
    batch = {"image_feat": torch.randn(b, 8).half(), "audio_feat": torch.randn(b, 6).half(),
             "text_input_ids": torch.randint(3, 50, (b, 5)).int(),
             "text_attention_mask": torch.ones(b, 5, dtype=torch.int8),
             "image_missing": torch.tensor([False, True, False]),
             "audio_missing": torch.tensor([False, False, True]),
             "text_missing": torch.tensor([True, False, False])}
    embs = m(batch)
    assert [e.shape for e in embs] == [(b, 12)] * 3
    # heads end in LayerNorm: zero mean per row
    assert torch.allclose(embs[0].mean(1), torch.zeros(b), atol=1e-5)
    # the missing text row no longer depends on its original tokens
    batch2 = dict(batch, text_input_ids=torch.randint(3, 50, (b, 5)).int())
    assert torch.allclose(m.encode("text", batch)[0], m.encode("text", batch2)[0])
    with pytest.raises(OSError, match="cannot load"):
        M3Model(str(tiny_text_model / "nope"), 8, 6, d=12)


def test_text_tower_pools_then_projects_like_a_per_token_linear(tiny_text_model):
    """proj(mean of hidden) is the reference's mean of per-token proj(hidden), in float64,
    for padded rows, a fully masked row (pools to 0, no bias) and a [MISSING] row."""
    t = TextTower(str(tiny_text_model), d=7).double()
    ids = torch.randint(3, 50, (4, 6))
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [0] * 6, [1, 1, 0, 0, 0, 0]])
    missing = torch.tensor([False, False, False, True])
    out = t(ids, mask, missing)
    ids2, mask2 = replace_missing_text(ids, mask, missing, t.missing_id, t.bos_id, t.eos_id,
                                       t.pad_id)
    hidden = t.base(input_ids=ids2, attention_mask=mask2).last_hidden_state
    tok = t.proj(hidden)                                           # (B, L, d) per token
    w = mask2.unsqueeze(-1).double()
    ref = t.ln((tok * w).sum(1) / w.sum(1).clamp(min=1.0))
    assert torch.allclose(out, ref, atol=1e-12)


def test_mimic_model_shapes():
    torch.manual_seed(0)
    m = MIMICModel(d=10).eval()
    batch = {"ecg": torch.rand(2, 64 * 12) * 2 - 1,
             "cxr": torch.randint(0, 256, (2, 32 * 32), dtype=torch.uint8),
             "labs_percentiles": torch.rand(2, 50), "labs_observed": torch.ones(2, 50).char()}
    embs = m(batch)
    assert [e.shape for e in embs] == [(2, 10)] * 3
    assert m.logit_scale.item() == pytest.approx(-7.0)
    with pytest.raises(ValueError, match="square"):
        m.encode("cxr", dict(batch, cxr=torch.zeros(2, 30, dtype=torch.uint8)))
