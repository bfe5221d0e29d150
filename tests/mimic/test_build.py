"""Synth -> cohort -> shards end to end: contracts, flags, failures, determinism, resume."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from symile_data.io.reader import split_files
from symile_data.mimic.build import build_shards
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import CohortConfig, LAB_COLUMNS, ShardsConfig
from symile_data.mimic.preprocess import LabEcdf
from symile_data.mimic.splits import assign_splits, retrieval_sets

CFG = ShardsConfig(formats=("parquet", "wds"), max_rows_per_shard=40)


@pytest.fixture(scope="module")
def built(synth_small, tmp_path_factory):
    r = synth_small
    base = tmp_path_factory.mktemp("built")
    build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", base / "cohort",
                 CohortConfig(train_size=0.6, val_size=0.2, ecg_check_threads=2))
    # one corrupt JPG in the cohort: a recorded failure, not a crash
    cohort = pd.read_parquet(base / "cohort" / "cohort.parquet")
    bad = cohort[cohort["split"] == "train"].iloc[0]
    (r / "mimic-cxr-jpg" / bad["cxr_path"]).write_bytes(b"\xff\xd8\xff broken")
    rep = build_shards(base / "cohort", r / "mimic-iv-ecg", r / "mimic-cxr-jpg",
                       base / "shards", CFG)
    return base, cohort, int(bad["hadm_id"]), rep


def test_samples_contract(built):
    base, cohort, bad, rep = built
    assert rep["failed"] == 1 and rep["ok"] == len(cohort) - 1
    fail = pd.read_parquet(base / "shards" / "failures.parquet").set_index("hadm_id")
    assert fail.loc[bad, "status"] == "failed" and "unreadable image" in fail.loc[bad, "error"]
    d = base / "shards" / "symile-mimic"
    man = json.loads((d / "manifest.json").read_text())
    assert man["flags"]["mimic_derived"] is True
    t = pq.read_table(split_files(d, "train"))
    assert bad not in t["hadm_id"].to_pylist()
    ecg = np.stack(t["ecg"].to_numpy(zero_copy_only=False))
    assert ecg.shape[1] == 60000 and ecg.min() >= -1 and ecg.max() <= 1
    assert t.schema.field("cxr").type.list_size == 102400
    obs = np.stack(t["labs_observed"].to_numpy(zero_copy_only=False))
    raw = cohort.set_index("hadm_id").loc[t["hadm_id"].to_pylist(), list(LAB_COLUMNS)]
    np.testing.assert_array_equal(obs, (~raw.isna()).to_numpy().astype(np.int8))
    pct = np.stack(t["labs_percentiles"].to_numpy(zero_copy_only=False))
    assert ((pct > 0) & (pct <= 1)).all()
    splits = {sp: set(pq.read_table(split_files(d, sp))["subject_id"].to_pylist())
              for sp in ("train", "val", "test")}
    assert not (splits["train"] & splits["val"]) and not (splits["train"] & splits["test"])
    for sp in ("train", "val", "test"):
        assert json.loads((base / "shards/symile-mimic-wds/manifest.json").read_text())[
            "flags"]["mimic_derived"]


def test_retrieval_sets(built):
    base, cohort, bad, _ = built
    d = base / "shards" / "symile-mimic-retrieval"
    assert json.loads((d / "manifest.json").read_text())["flags"]["mimic_derived"] is True
    for sp in ("val", "test"):
        t = pq.read_table(split_files(d, sp)).to_pandas()
        members = set(cohort.loc[cohort["split"] == sp, "hadm_id"]) - {bad}
        assert set(t["query_hadm_id"]) == members
        c = np.stack(t["candidate_hadm_ids"])
        assert c.shape[1] == 10 and (c[np.arange(len(t)), t["label"]] == t["query_hadm_id"]).all()
        assert all(len(set(r)) == 10 and set(r) <= members for r in c)


def test_deterministic_and_resume(built, synth_small, tmp_path):
    base, _, _, rep = built
    r = synth_small
    again = build_shards(base / "cohort", r / "mimic-iv-ecg", r / "mimic-cxr-jpg",
                         base / "shards", CFG)                  # finished: skipped
    assert again == rep
    other = build_shards(base / "cohort", r / "mimic-iv-ecg", r / "mimic-cxr-jpg",
                         tmp_path / "s2", CFG)
    assert other["params_hash"] == rep["params_hash"]
    for name in ("symile-mimic", "symile-mimic-wds", "symile-mimic-retrieval"):
        a = json.loads((base / "shards" / name / "manifest.json").read_text())["splits"]
        b = json.loads((tmp_path / "s2" / name / "manifest.json").read_text())["splits"]
        assert a == b                                           # same sha256 per shard


def test_publish_refuses(built):
    from symile_data.publish.hub import refuse_mimic_derived
    with pytest.raises(Exception, match="mimic_derived"):
        refuse_mimic_derived(built[0] / "shards" / "symile-mimic")


def test_ecdf_fitted_on_train_only():
    train = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 5.0], [4.0, np.nan]])
    e = LabEcdf(train)
    pct, obs = e.features(np.array([[2.5, np.nan], [10.0, 5.0], [np.nan, 1.0]]))
    np.testing.assert_allclose(pct[:, 0], [0.5, 1.0, (0.25 + 0.5 + 0.75 + 1) / 4])
    np.testing.assert_allclose(pct[:, 1], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(obs, [[1, 0], [1, 1], [0, 1]])


def test_split_sizes_and_retrieval_determinism():
    subj = np.repeat(np.arange(300), np.random.default_rng(0).integers(1, 4, 300))
    s = assign_splits(subj, 0.6, 100, seed=1)
    assert abs((s == "val").sum() - 100) <= 3 and (s == "test").sum() > 0
    assert pd.Series(s).groupby(subj).nunique().max() == 1
    np.testing.assert_array_equal(s, assign_splits(subj, 0.6, 100, seed=1))
    with pytest.raises(ValueError, match="val_size"):
        assign_splits(subj, 0.5, 10_000, seed=1)
    h = np.arange(1000, 1030)
    c1, l1 = retrieval_sets(h, 10, 7, "val")
    c2, l2 = retrieval_sets(h, 10, 7, "val")
    np.testing.assert_array_equal(c1, c2)
    assert (c1[np.arange(30), l1] == h).all()
    with pytest.raises(ValueError, match="split 'test' has 5"):
        retrieval_sets(h[:5], 10, 0, "test")


def test_retrieval_with_other_candidate_counts(built, synth_small, tmp_path):
    import dataclasses
    base, *_ = built
    r = synth_small
    cfg = dataclasses.replace(CFG, formats=("parquet",), n_candidates=5)
    build_shards(base / "cohort", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path, cfg)
    d = tmp_path / "symile-mimic-retrieval"
    t = pq.read_table(split_files(d, "test"))
    assert t.schema.field("candidate_hadm_ids").type.list_size == 5
    c = np.stack(t["candidate_hadm_ids"].to_numpy(zero_copy_only=False))
    label = t["label"].to_numpy()
    assert (c[np.arange(len(c)), label] == t["query_hadm_id"].to_numpy()).all()


def test_rerun_rebuilds_a_deleted_shard(built, synth_small, tmp_path, caplog):
    """Issue 21: a finished run's report.json is not trusted when an output it lists is gone."""
    import shutil
    from symile_data.io.validate import validate_tree
    base, _, _, rep = built
    r = synth_small
    shutil.copytree(base / "shards", tmp_path / "shards")
    gone = sorted((tmp_path / "shards/symile-mimic").glob("train-*.parquet"))[0]
    want = gone.read_bytes()
    gone.unlink()
    with caplog.at_level("INFO"):
        again = build_shards(base / "cohort", r / "mimic-iv-ecg", r / "mimic-cxr-jpg",
                             tmp_path / "shards", CFG)
    assert f"{gone}: listed in the manifest, missing" in caplog.text
    assert again == rep and gone.read_bytes() == want
    assert all(e["ok"] for e in validate_tree(tmp_path / "shards")), validate_tree(tmp_path)
