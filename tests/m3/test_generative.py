"""The generative process of SPEC section 2 checked on built datasets (w = 2, 5, 10)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from symile_data.io.reader import split_files
from symile_data.m3.sampling import _distinct_others
from symile_data.m3.translations import LANGS_BY_W

from .conftest import P_MISSING, SIZES


def _read(built, w, split):
    name = f"symile-m3-{w}-demo-miss{P_MISSING:g}"
    return pq.ParquetDataset(split_files(built["samples"] / name, split)).read().to_pandas()


def _words(built):
    tr = json.loads((built["translations"] / "translations.json").read_text())
    return {v[lang]: (v["cls_id"], lang) for v in tr.values() for lang in LANGS_BY_W[10]}, tr


@pytest.mark.parametrize("w", [2, 5, 10])
def test_every_row_follows_the_generative_process(built, w):
    word_of, tr = _words(built)
    by_cls = {v["cls_id"]: v for v in tr.values()}
    langs = LANGS_BY_W[w]
    df = _read(built, w, "train")
    assert len(df) == SIZES[0]
    assert (df["lang"].to_numpy() == np.array(langs, dtype=object)[df["lang_id"]]).all()
    for row in df.itertuples():  # test-side loop over a 6k-row fixture
        words = row.text.split("_")
        assert len(words) == w
        pairs = [word_of[x] for x in words]
        assert sorted(lang for _, lang in pairs) == sorted(langs)      # each language once
        assert row.target_word == by_cls[row.cls_id][row.lang]         # name in audio's lang
        assert (row.cls_id, row.lang) in pairs
        classes = [c for c, _ in pairs]
        assert len(set(classes)) == w                                  # distinct classes
        assert by_cls[row.cls_id]["synset_id"] == row.synset


@pytest.mark.parametrize("w", [2, 10])
def test_frequencies_are_uniform(built, w):
    df = _read(built, w, "train")
    n = len(df)
    for col, k in (("cls_id", 16), ("lang_id", w), ("audio_key", 2 * w)):
        counts = df[col].value_counts().to_numpy()
        assert len(counts) == k, col
        expect = n / k
        # binomial sd sqrt(n p (1-p)); 5 sd is a generous tolerance that still catches bias
        assert np.abs(counts - expect).max() < 5 * np.sqrt(expect), (col, counts)
    # images uniform within each class: 3 images per class
    per = df.groupby("cls_id")["image_key"].value_counts().to_numpy()
    assert len(per) == 16 * 3
    assert np.abs(per - n / 48).max() < 5 * np.sqrt(n / 48)


def test_missingness_rates_and_complete_test_split(built):
    for split, n in (("train", SIZES[0]), ("val", SIZES[1])):
        df = _read(built, 5, split)
        for col in ("image_missing", "text_missing", "audio_missing"):
            assert abs(df[col].mean() - P_MISSING) < 5 * np.sqrt(P_MISSING * (1 - P_MISSING) / n)
    test = _read(built, 5, "test")
    assert len(test) == SIZES[2]
    assert not test[["image_missing", "text_missing", "audio_missing"]].to_numpy().any()


def test_keys_reference_the_media_tables(built):
    images = pq.read_table(built["images"] / "images.parquet").to_pandas()
    clips = pq.read_table(built["clips"] / "clips.parquet").to_pandas()
    df = _read(built, 10, "val")
    img = images.set_index("image_key").loc[df["image_key"]]
    assert (img["cls_id"].to_numpy() == df["cls_id"].to_numpy()).all()
    assert (img["status"] == "ok").all()
    clip = clips.set_index("audio_key").loc[df["audio_key"]]
    assert (clip["lang"].to_numpy() == df["lang"].to_numpy()).all()
    assert df["key"].is_unique


def test_distinct_others_is_uniform_and_excludes_the_class():
    rng = np.random.default_rng(0)
    cls = rng.integers(0, 6, 60_000)
    out = _distinct_others(rng, cls, 6, 3)
    assert not (out == cls[:, None]).any()
    assert (np.sort(out, 1)[:, 1:] != np.sort(out, 1)[:, :-1]).all()
    # column 0 given cls 0: uniform over the 5 other classes
    counts = np.bincount(out[cls == 0, 0], minlength=6)[1:]
    assert np.abs(counts - counts.mean()).max() < 5 * np.sqrt(counts.mean())
