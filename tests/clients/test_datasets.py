"""Hugging Face `datasets` as a client: every root the pipeline writes has a card and loads
offline with ``load_dataset(root, config)``, every dataset folder with ``load_dataset(folder)``;
the card declares the features; embedded media are Image / Audio and decode."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from clients_chain import ROOTS
from symile_data.io.card import by_format, find_configs, hf_split
from symile_data.io.manifest import marker_path, read_manifest

datasets = pytest.importorskip("datasets")
datasets.disable_progress_bars()


def card_front(root):
    text = (root / "README.md").read_text()
    assert text.startswith("---\n"), f"{root}/README.md has no YAML front matter"
    return yaml.safe_load(text.split("---\n")[1])


def rows(d):
    """split name as datasets loads it -> rows (the manifest's val is validation)."""
    return {hf_split(s): i["rows"] for s, i in read_manifest(d)["splits"].items()}


@pytest.mark.parametrize("rel", sorted(ROOTS), ids=lambda r: ROOTS[r])
def test_every_root_has_a_card_and_loads_per_config(chain, rel):
    root = chain / rel
    front = card_front(root)
    configs, _ = by_format(find_configs(root))
    assert [c["config_name"] for c in front["configs"]] == list(configs)
    declared = {i["config_name"]: i for i in front["dataset_info"]}
    for name, d in configs.items():
        ds = datasets.load_dataset(str(root), name)
        assert {s: ds[s].num_rows for s in ds} == rows(d), (rel, name)
        feats = datasets.Features._from_yaml_list(declared[name]["features"])
        assert ds[next(iter(ds))].features == feats      # what the card declares is what loads


def dataset_folders(work, fmt):
    return sorted(d for rel in ROOTS for d in find_configs(work / rel).values()
                  if read_manifest(d)["format"] == fmt)


def test_every_webdataset_folder_loads(chain):
    folders = dataset_folders(chain, "webdataset")
    assert len(folders) == 2                      # m3 samples, mimic
    for d in folders:                             # its own card declares the features
        ds = datasets.load_dataset(str(d))
        assert {s: ds[s].num_rows for s in ds} == rows(d), d


HIDDEN_MARKERS = marker_path(Path("train-00000-of-00001.parquet")).name.startswith(".")


@pytest.mark.skipif(not HIDDEN_MARKERS, reason="needs the io branch's hidden done-markers "
                    "(.<shard>.stats.json); a visible marker matches the Hub's split patterns")
def test_every_parquet_folder_loads(chain):
    folders = dataset_folders(chain, "parquet")
    assert len(folders) == 8     # xor x2, samples, shards, miss x2, mimic x2
    for d in folders:            # no card: datasets' default patterns (val -> validation)
        ds = datasets.load_dataset(str(d))
        assert {s: ds[s].num_rows for s in ds} == rows(d), d


def test_folder_and_config_loads_name_the_same_splits(chain):
    """load_dataset(folder) and load_dataset(root, config) both say validation."""
    seen = 0
    for rel in sorted(ROOTS):
        configs, _ = by_format(find_configs(chain / rel))
        for name, d in configs.items():
            if d == chain / rel or read_manifest(d)["format"] != "parquet":
                continue
            by_config = datasets.load_dataset(str(chain / rel), name)
            by_folder = datasets.load_dataset(str(d))
            assert set(by_config) == set(by_folder), (rel, name)
            seen += "validation" in by_config
    assert seen >= 4


def test_cards_declare_split_sizes_and_load_without_warnings(chain, caplog):
    import logging
    import warnings
    caplog.set_level(logging.WARNING)
    logger = logging.getLogger("datasets")
    logger.addHandler(caplog.handler)       # datasets' loggers do not propagate to the root
    try:
        for rel in sorted(ROOTS):
            front = card_front(chain / rel)
            for info in front["dataset_info"]:
                for split in info["splits"]:
                    assert set(split) == {"name", "num_bytes", "num_examples"}, (rel, split)
                    assert split["num_bytes"] > 0 and split["num_examples"] > 0
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                datasets.load_dataset(str(chain / rel), front["configs"][0]["config_name"])
            assert not [w for w in caught if "split" in str(w.message).lower()], rel
    finally:
        logger.removeHandler(caplog.handler)
    assert not [r for r in caplog.records if "split" in r.getMessage().lower()]


def test_embedded_media_are_image_and_audio_and_decode(chain):
    """The card declares Audio(decode=False) (docs/publish.md): ds[i] works on a CPU install
    as loaded, without a cast; where torchcodec loads, a cast to Audio() decodes."""
    import soundfile as sf
    from PIL import Image
    ds = datasets.load_dataset(str(chain / "data/m3/samples"), "symile-m3-2-demo",
                               split="validation")
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["audio"] == datasets.Audio(decode=False)
    row = ds[0]
    img = row["image"]                             # decoded by datasets (PIL)
    assert isinstance(img, Image.Image) and img.mode == "RGB" and min(img.size) > 0
    wav, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
    assert sr > 0 and wav.ndim == 1 and len(wav) > 0 and np.isfinite(wav).all()
    if datasets.config.TORCHCODEC_AVAILABLE:       # a CUDA torch with torchcodec + ffmpeg
        audio = ds.cast_column("audio", datasets.Audio())[0]["audio"].get_all_samples()
        assert audio.sample_rate > 0 and audio.data.numel() > 0


def test_webdataset_config_types_members(chain):
    ds = datasets.load_dataset(str(chain / "data/m3/samples/wds"), "symile-m3-2-demo",
                               split="validation")
    assert isinstance(ds.features["jpg"], datasets.Image)
    assert ds.features["wav"] == datasets.Value("binary")    # see docs/publish.md (torchcodec)
    row = ds[0]
    assert row["json"]["text"] == row["txt"] and row["wav"][:4] == b"RIFF"
    mimic = datasets.load_dataset(str(chain / "data/mimic/shards/symile-mimic-wds"),
                                  split="train")
    assert np.asarray(mimic[0]["ecg.npy"]).shape == (5000, 12) and isinstance(mimic[0]["cxr.jpg"],
                                                            __import__("PIL").Image.Image)


def test_mixed_format_root_lists_one_builder(chain):
    front = card_front(chain / "data/mimic/shards")
    assert [c["config_name"] for c in front["configs"]] == ["symile-mimic",
                                                            "symile-mimic-retrieval"]
    assert "symile-mimic-wds/" in (chain / "data/mimic/shards/README.md").read_text()
    assert card_front(chain / "data/mimic/shards/symile-mimic-wds")["configs"][0][
        "config_name"] == "symile-mimic-wds"
