"""params.yaml (demo) and params-real.yaml (real data) have the same sections and keys, both
load strictly into every stage's dataclass, and the real profile holds SPEC section 4."""
from __future__ import annotations

import pytest
import yaml

from e2e_chain import REPO, resolve_stages
from symile_data.config import load_section
from symile_data.e2e.config import M3MissingConfig, ReportConfig
from symile_data.features.config import FeaturesConfig, JoinConfig, TinyModelsConfig
from symile_data.m3 import config as m3
from symile_data.mimic.config import CohortConfig, ShardsConfig, SynthConfig
from symile_data.train.config import EvalConfig, M3TrainConfig, MimicTrainConfig, XorTrainConfig
from symile_data.xor import XorDataConfig

SECTIONS = {
    "xor_data": XorDataConfig, "m3_demo": m3.M3DemoConfig,
    "m3_translations": m3.M3TranslationsConfig, "m3_images": m3.M3ImagesConfig,
    "m3_clips": m3.M3ClipsConfig, "m3_samples": m3.M3SamplesConfig,
    "mimic_synth": SynthConfig, "mimic_cohort": CohortConfig, "mimic_shards": ShardsConfig,
    "features_tiny_models": TinyModelsConfig, "features_m3": FeaturesConfig,
    "m3_shards": JoinConfig, "xor_train": XorTrainConfig, "xor_eval": EvalConfig,
    "m3_train": M3TrainConfig, "m3_eval": EvalConfig, "mimic_train": MimicTrainConfig,
    "mimic_eval": EvalConfig, "m3_missing": M3MissingConfig,
    "m3_missing_train": M3TrainConfig, "report": ReportConfig,
}
PATH_ONLY = {"mimic_sources"}          # read by dvc.yaml interpolation only
FILES = ("params.yaml", "params-real.yaml")


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def test_same_sections_and_keys():
    demo, real = _load("params.yaml"), _load("params-real.yaml")
    assert list(demo) == list(real)
    assert {s: list(v) for s, v in demo.items()} == {s: list(v) for s, v in real.items()}
    assert set(demo) == set(SECTIONS) | PATH_ONLY


@pytest.mark.parametrize("name", FILES)
def test_every_section_loads_strictly(name):
    for section, cls in SECTIONS.items():
        load_section(cls, section, REPO / name)


def test_real_profile_is_the_reference():
    real = _load("params-real.yaml")
    m, x = real["m3_train"], real["mimic_train"]
    assert (m["d"], m["batch_size"], m["epochs"], m["lr"], m["weight_decay"],
            m["logit_scale_init"], m["negatives"], m["normalize"]) == \
        (8192, 256, 24, 1e-4, 0.0, -6.0, "n", False)
    assert m["text_model"] == "xlm-roberta-large"
    miss = real["m3_missing_train"]               # the paper's missingness runs: lr / wd differ
    assert {k: v for k, v in miss.items() if k not in ("lr", "weight_decay")} == \
        {k: v for k, v in m.items() if k not in ("lr", "weight_decay")}
    assert (miss["lr"], miss["weight_decay"]) == (1e-5, 1e-3)
    assert (x["d"], x["batch_size"], x["epochs"], x["lr"], x["weight_decay"],
            x["logit_scale_init"], x["negatives"]) == (8192, 280, 80, 5e-4, 0.2, -7.0, "n_squared")
    assert (x["cxr_encoder"], x["ecg_encoder"], x["cnn_width"], x["cxr_pool"],
            x["ecg_pool"]) == ("resnet50", "resnet18", 64, 1, 1)
    assert real["xor_train"]["epochs"] == 100
    f = real["features_m3"]
    assert (f["image_model"], f["audio_model"], f["text_model"], f["audio_pooling"]) == (
        "openai/clip-vit-large-patch14", "openai/whisper-large-v3", "xlm-roberta-large",
        "window")
    assert real["m3_translations"]["backend"] in ("hub", "google")
    assert real["m3_clips"]["engine"] in ("gtts", "common_voice")
    assert real["mimic_cohort"]["train_size"] == 10000 and real["mimic_cohort"]["val_size"] == 800


@pytest.mark.parametrize("name", FILES)
def test_dvc_commands_resolve(name):
    """Every stage command interpolates with the profile (no unknown ${...})."""
    stages = resolve_stages(REPO / "dvc.yaml", _load(name))
    cmds = {n: " ".join(a) for n, a in stages}
    assert all("${" not in c for c in cmds.values())
    src = _load(name)["mimic_sources"]
    assert f"--mimic-iv {src['mimic_iv']}" in cmds["mimic_cohort"]
    assert {n.split("@")[0] for n in cmds} >= {"m3_train", "mimic_train", "report"}
