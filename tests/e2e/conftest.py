"""Toy-size params for the whole chain (every section of the repo's params.yaml, shrunk)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# section -> overrides; everything else stays as in params.yaml (the demo)
TOY = {
    "xor_data": {"ps": [0.0, 1.0], "n_train": 200, "n_val": 50, "n_test": 64},
    "m3_demo": {"images_per_class": 2, "image_size": 32},
    "m3_translations": {"languages": ["en", "el"],
                        "classes": ["n01443537", "n01514859", "n02129604", "n07753592"]},
    "m3_images": {"resize": 32, "scheduler": "synchronous", "n_workers": 1},
    "m3_clips": {"languages": ["en", "el"], "max_clips_per_lang": 2, "n_workers": 1},
    "m3_samples": {"custom_sizes": {"demo": [96, 32, 32]}},
    "mimic_synth": {"admissions": 90, "cxr_height": 336, "cxr_width": 320},
    "mimic_cohort": {"ecg_check_threads": 1, "train_size": 0.5, "val_size": 0.25},
    "features_m3": {"batch_size_image": 16, "batch_size_audio": 4},
    "xor_train": {"ps": [0.0, 1.0], "epochs": 2, "batch_size": 100},
    "xor_eval": {"bootstrap_resamples": 3},
    "m3_train": {"text_model": "data/models/tiny/xlm-roberta", "d": 16, "epochs": 1,
                 "batch_size": 32, "num_workers": 0, "torch_threads": 1},
    "m3_eval": {"bootstrap_resamples": 3},
    "mimic_train": {"d": 16, "epochs": 1, "batch_size": 16, "num_workers": 0,
                    "torch_threads": 1, "cnn_width": 4, "cxr_pool": 8, "ecg_pool": 8,
                    "cxr_encoder": "resnet18"},
    "mimic_eval": {"bootstrap_resamples": 3},
    "m3_missing": {"ps": [0.5]},
}
# params that name repository files: made absolute so that stages run in any work dir
REPO_PATHS = {("m3_demo", "translations"), ("m3_translations", "path"),
              ("m3_clips", "sentences")}


def toy_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TOY.items():
        params[section].update(values)
    for section, key in REPO_PATHS:
        params[section][key] = str(REPO / params[section][key])
    return params


@pytest.fixture
def toy_workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(toy_params(), sort_keys=False))
    return work
