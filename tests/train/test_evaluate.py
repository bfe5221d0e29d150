"""Evaluation: bootstrap, random tie-breaks, XOR / M3 / MIMIC zero-shot on tiny shards."""
import numpy as np
import pyarrow as pa
import pytest
import torch

from train_helpers import m3_table, mimic_table, write_dataset
from symile_data.train.config import EvalConfig, M3TrainConfig, MimicTrainConfig, XorTrainConfig
from symile_data.train.evaluate import argmax_random_ties, bootstrap, evaluate_run, set_scores
from symile_data.train.factory import load_checkpoint_model
from symile_data.train.loop import train
from symile_data.train.loss import clip_scores, mip_scores

EVAL = EvalConfig(batch_size=32)


def test_bootstrap_resamples_cached_results():
    correct = np.array([1, 0, 1, 1] * 25)
    m = bootstrap(correct, n_resamples=10, seed=3)
    assert m["accuracy"] == 0.75 and m["n_queries"] == 100 and m["n_resamples"] == 10
    assert m["ci95"][0] <= m["bootstrap_mean"] <= m["ci95"][1]
    assert 0 < m["bootstrap_std"] < 0.1
    assert bootstrap(correct, 10, 3) == m
    with pytest.raises(ValueError, match="no queries"):
        bootstrap(np.array([]))


def test_ties_broken_at_random_with_seed():
    scores = torch.tensor([[1.0, 1.0, 0.0, 1.0]] * 3000)
    picks = argmax_random_ties(scores, torch.Generator().manual_seed(0))
    counts = np.bincount(picks.numpy(), minlength=4)
    assert counts[2] == 0 and min(counts[[0, 1, 3]]) > 900
    again = argmax_random_ties(scores, torch.Generator().manual_seed(0))
    assert torch.equal(picks, again)


def test_set_scores_match_full_scores():
    g = torch.Generator().manual_seed(0)
    cands, q1, q2 = (torch.randn(6, 4, generator=g) for _ in range(3))
    idx = torch.tensor([[0, 3, 5], [2, 1, 4]])
    for loss, full_fn in (("symile", mip_scores), ("clip", clip_scores)):
        full = full_fn(cands, [q1[:2], q2[:2]])
        got = set_scores(loss, cands[idx], [q1[:2], q2[:2]])
        assert torch.allclose(got, torch.gather(full, 1, idx))


def test_xor_perfect_encoder_scores_one(xor_dir, tmp_path):
    train(xor_dir, tmp_path / "run", "xor", "symile", XorTrainConfig(d=3, epochs=1,
                                                                    batch_size=64))
    model, payload = load_checkpoint_model(tmp_path / "run" / "best.pt")
    # s(x) = 2x - 1 per bit: MIP(a, b, c) = sum_j s(a_j) s(b_j) (-s(c_j)) is maximal at the
    # true b when c = a XOR b (p = 1 here)
    with torch.no_grad():
        for m, sign in (("a", 1), ("b", 1), ("c", -1)):
            model.enc[m].weight.copy_(2 * sign * torch.eye(3))
            model.enc[m].bias.fill_(-sign)
    model.normalize = False
    torch.save({**payload, "model": model.state_dict(),
                "spec": {**payload["spec"], "normalize": False}}, tmp_path / "run" / "best.pt")
    metrics, correct = evaluate_run(tmp_path / "run", xor_dir, EVAL)
    assert correct.all() and metrics["accuracy"] == 1.0 and metrics["n_queries"] == 128


@pytest.mark.parametrize("standardize", [False, True])
def test_m3_zero_shot_on_tiny_shards(tmp_path, tiny_text_model, standardize):
    ds = write_dataset(tmp_path / "m3", {
        "train": m3_table(48, "train", missing_p=0.3, seed=1),
        "val": m3_table(16, "val", missing_p=0.3, seed=2), "test": m3_table(24, "test", seed=3)})
    cfg = M3TrainConfig(text_model=str(tiny_text_model), d=8, d_indicator=2, epochs=1,
                        batch_size=16, lr=1e-3, weight_decay=0.0, logit_scale_init=-1.0,
                        normalize=False, shuffle_buffer=0, standardize_features=standardize)
    train(ds, tmp_path / "run", "m3", "clip", cfg)
    model, payload = load_checkpoint_model(tmp_path / "run" / "best.pt")
    assert bool(model.image.impute.mean_fitted)            # fitted on observed train rows
    assert payload["spec"]["standardize"] is standardize and \
        model.audio.impute.standardize is standardize     # the option survives the checkpoint
    if standardize:                                        # fitted std, not the init's ones
        assert not torch.equal(model.audio.impute.std, torch.ones_like(model.audio.impute.std))
    metrics, correct = evaluate_run(tmp_path / "run", ds, EVAL)
    # recompute by hand: candidates = first row of each distinct image_key
    from symile_data.io.reader import ParquetMapDataset, split_files
    t = ParquetMapDataset(split_files(ds, "test")).read_all()
    with torch.no_grad():
        img, aud, txt = model(t)
    keys = t["image_key"]
    first = [keys.index(k) for k in sorted(set(keys))]
    scores = clip_scores(img[first], [aud, txt])
    want = t["cls_id"][first][scores.argmax(1)] == t["cls_id"]
    assert np.array_equal(correct, want.numpy())
    assert metrics["n_queries"] == 24 and metrics["loss"] == "clip"


def test_mimic_retrieval_on_tiny_shards(tmp_path):
    ds = write_dataset(tmp_path / "mimic", {"train": mimic_table(16, "train", 0),
                                            "val": mimic_table(8, "val", 1),
                                            "test": mimic_table(8, "test", 2)})
    hadm = np.arange(8) + 3000
    rng = np.random.default_rng(0)
    cands = np.stack([np.r_[h, rng.choice(np.setdiff1d(hadm, h), 2, replace=False)]
                      for h in hadm])
    label = np.zeros(8, np.int8)
    sets = pa.table({"split": ["test"] * 8, "query_hadm_id": hadm,
                     "candidate_hadm_ids": pa.FixedSizeListArray.from_arrays(
                         pa.array(cands.reshape(-1)), 3), "label": label})
    ret = write_dataset(tmp_path / "ret", {"test": sets})
    cfg = MimicTrainConfig(negatives="n_squared", d=8, epochs=1, batch_size=8, lr=1e-3,
                           weight_decay=0.2, logit_scale_init=-7.0, normalize=False)
    train(ds, tmp_path / "run", "mimic", "symile", cfg)
    with pytest.raises(ValueError, match="--retrieval"):
        evaluate_run(tmp_path / "run", ds, EVAL)
    metrics, correct = evaluate_run(tmp_path / "run", ds, EVAL, retrieval_dir=ret)
    model, _ = load_checkpoint_model(tmp_path / "run" / "best.pt")
    from symile_data.io.reader import ParquetMapDataset, split_files
    t = ParquetMapDataset(split_files(ds, "test")).read_all()
    with torch.no_grad():
        ecg, labs, cxr = model(t)
    idx = torch.from_numpy(cands - 3000)
    want = mip_scores(cxr, [ecg, labs]).gather(1, idx).argmax(1) == 0
    assert np.array_equal(correct, want.numpy()) and metrics["n_queries"] == 8
    bad = write_dataset(tmp_path / "bad", {"test": sets.set_column(
        1, "query_hadm_id", pa.array(hadm + 1))})
    with pytest.raises(ValueError, match="not in"):
        evaluate_run(tmp_path / "run", ds, EVAL, retrieval_dir=bad)
