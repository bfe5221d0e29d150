"""Pieces of the end-to-end stages: in-text accuracy, the missingness sweep's config and its
own training section, validation failures, names of variants."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import yaml

from e2e_chain import REPO, _call, resolve_stages
from symile_data.config import ConfigError, from_dict, load_section
from symile_data.e2e.config import M3MissingConfig
from symile_data.e2e.evaluation import in_text, missing_p
from symile_data.e2e.missing import p_dir
from symile_data.e2e.validate import ValidationFailed, validate_outputs
from symile_data.io.parquet import write_parquet_dataset
from symile_data.train.config import M3TrainConfig

WORDS = pa.array(["lemon", "λεμόνι", "goose", "χήνα", "tiger bird", "τίγρη"])
WORD_CLS = np.array([0, 0, 1, 1, 2, 2])


def test_in_text_counts_classes_named_in_the_text():
    texts = ["lemon_χήνα", "τίγρη_goose", "tiger bird_λεμόνι", "χήνα_lemon"]
    pred = np.array([1, 0, 2, 2])           # goose in 1st: yes; lemon in 2nd: no; ...
    inside, n_words = in_text(pred, texts, WORDS, WORD_CLS)
    assert inside.tolist() == [True, False, True, False]
    assert n_words.tolist() == [2, 2, 2, 2]


def test_in_text_unknown_word_is_an_error():
    with pytest.raises(ValueError, match="kiwi"):
        in_text(np.array([0]), ["kiwi_λεμόνι"], WORDS, WORD_CLS)


@pytest.mark.parametrize("ps, needle", [([], "at least one"), ([0.0], r"not in \(0, 1\)"),
                                        ([1.0], r"not in \(0, 1\)"), ([0.5, 0.5], "duplicate"),
                                        ([0.1234567], "significant digits")])
def test_sweep_config_is_checked(ps, needle):
    with pytest.raises(ConfigError, match=needle):
        from_dict(M3MissingConfig, {"w": 2, "size": "demo", "ps": ps}, "params.yaml:m3_missing")


def test_variant_names_match_dvc_and_m3():
    assert p_dir(0.5) == "p0.5" and p_dir(0.75) == "p0.75"
    assert missing_p("symile-m3-2-demo-miss0.75") == 0.75
    assert missing_p("symile-m3-10-xs") == 0.0


def test_validation_failure_names_the_dataset(tmp_path):
    schema = pa.schema([("key", pa.string()), ("x", pa.int32())])
    table = pa.table({"key": [f"k{i}" for i in range(10)], "x": list(range(10))}, schema=schema)
    good = tmp_path / "root/good"
    write_parquet_dataset(good, {"train": table}, schema, name="good", params_hash="h")
    report = validate_outputs([tmp_path / "root"], tmp_path / "v.json")
    assert report["n_bad"] == 0 and report["n_datasets"] == 1
    shard = next(good.glob("train-*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-10])           # truncated shard
    with pytest.raises(ValidationFailed, match="good.*train-00000-of-00001.parquet"):
        validate_outputs([tmp_path / "root", tmp_path / "absent"], tmp_path / "v.json")
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved["n_bad"] == 2 and "no such directory" in saved["datasets"][-1]["problems"][0]


def test_missing_train_section_is_strict_and_its_own(tmp_path):
    """``m3_missing_train`` loads strictly into M3TrainConfig (an unknown key names the
    section); the real profile holds the paper's missingness lr / weight decay."""
    load_section(M3TrainConfig, "m3_missing_train", REPO / "params.yaml")
    real = load_section(M3TrainConfig, "m3_missing_train", REPO / "params-real.yaml")
    assert (real.lr, real.weight_decay) == (1e-5, 1e-3)          # SPEC section 4
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["m3_missing_train"]["learning_rate"] = 0.1
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="m3_missing_train.*learning_rate"):
        load_section(M3TrainConfig, "m3_missing_train", tmp_path / "p.yaml")


def test_missing_train_stage_reads_its_section(tmp_path, monkeypatch):
    """dvc.yaml's m3_missing_train runs pipelines/m3_train.py with ``--section
    m3_missing_train`` and depends on that section; the script then trains with it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert stages["m3_missing_train"]["params"] == ["m3_missing_train"]
    assert stages["m3_train"]["params"] == ["m3_train"]
    cmds = dict(resolve_stages(REPO / "dvc.yaml", params))
    argv = cmds[f"m3_missing_train@{params['m3_missing']['ps'][0]}-symile"]
    assert argv[argv.index("--section") + 1] == "m3_missing_train"
    params["m3_missing_train"]["epochs"] = 7                    # tell the sections apart
    params["m3_train"]["epochs"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    seen = {}
    monkeypatch.setattr("symile_data.train.loop.train",
                        lambda data, out, kind, loss, cfg, device=None: seen.update(
                            kind=kind, loss=loss, epochs=cfg.epochs, lr=cfg.lr))
    monkeypatch.chdir(tmp_path)      # the stage locks its --out (relative): not in the repo
    assert _call(REPO, argv + ["--params", str(tmp_path / "params.yaml")]) == 0
    assert seen == {"kind": "m3", "loss": "symile", "epochs": 7,
                    "lr": params["m3_missing_train"]["lr"]}
