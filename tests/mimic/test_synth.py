"""The MIMIC-layout generator: real layouts and columns, determinism, planted signal, CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd

from symile_data.hashing import sha256_file
from symile_data.mimic.config import SynthConfig
from symile_data.mimic.synth import synth_tree
from symile_data.mimic.synth_media import cxr_batch, ecg_batch


def test_layout_and_columns(synth_small):
    r = synth_small
    lab = pd.read_csv(r / "mimic-iv/hosp/labevents.csv.gz", nrows=5)
    assert list(lab.columns)[:10] == ["labevent_id", "subject_id", "hadm_id", "specimen_id",
                                      "itemid", "order_provider_id", "charttime", "storetime",
                                      "value", "valuenum"]
    rec = pd.read_csv(r / "mimic-iv-ecg/record_list.csv")
    assert list(rec.columns) == ["subject_id", "study_id", "file_name", "ecg_time", "path"]
    p = r / "mimic-iv-ecg" / rec["path"].iloc[0]
    assert p.with_name(p.name + ".hea").exists() and p.with_name(p.name + ".dat").exists()
    meta = pd.read_csv(r / "mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv.gz")
    assert {"AP", "PA", "LATERAL"} <= set(meta["ViewPosition"])
    assert (meta["StudyTime"] % 1 > 0).any()                     # fractions present
    rep = pd.read_json(r / "synth_report.json", typ="series")
    assert rep["ecg_bad_records"] > 0 and rep["cxr_missing_jpg"] > 0
    assert rep["chexpert_studies"] < rep["cxr_studies"]


def test_deterministic(tmp_path):
    cfg = SynthConfig(admissions=20, seed=5, ecg_samples=500, cxr_height=64, cxr_width=48)
    synth_tree(tmp_path / "a", cfg)
    synth_tree(tmp_path / "b", cfg)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    assert len(files) > 50
    for f in files:
        assert sha256_file(tmp_path / "a" / f) == sha256_file(tmp_path / "b" / f), f


def test_planted_signal():
    rng = np.random.default_rng(0)
    a = np.array([0] * 20 + [1] * 20)
    sig = ecg_batch(rng, a, np.zeros(40), 5000)
    spec = np.abs(np.fft.rfft(sig[:, :, 1] - sig[:, :, 1].mean(1, keepdims=True), axis=1))
    f = np.fft.rfftfreq(5000, 1 / 500)
    band = (f > 0.7) & (f < 2.2)
    hr = f[band][np.argmax(spec[:, band], axis=1)] * 60          # dominant rate, bpm
    assert hr[:20].mean() < 75 < 90 < hr[20:].mean()
    side = np.array([0] * 10 + [1] * 10)
    img = cxr_batch(rng, np.zeros(20), np.zeros(20), side, np.zeros(20, bool), 200, 160)
    left = img[:, 110:130, 35:55].mean(axis=(1, 2))
    right = img[:, 110:130, 105:125].mean(axis=(1, 2))
    assert ((left - right)[:10] > 10).all() and ((right - left)[10:] > 10).all()


def test_cli_synth(tmp_path):
    from symile_data.cli import main
    assert main(["mimic", "synth", "--out", str(tmp_path / "t"), "--admissions", "5",
                 "--seed", "1"]) == 0
    assert (tmp_path / "t" / "synth_report.json").exists()


def test_cli_reads_params_and_global_set(tmp_path, capsys):
    import json

    from symile_data.cli import main
    from symile_data.config import set_cli_overrides
    try:
        # the section comes from params.yaml, --set overrides it, the command's flag wins last
        assert main(["--set", "mimic_synth.admissions=4", "--set", "mimic_synth.seed=3",
                     "mimic", "synth", "--out", str(tmp_path / "a")]) == 0
        rep = json.loads((tmp_path / "a" / "synth_report.json").read_text())
        assert rep["admissions"] == 4
        assert main(["--set", "mimic_synth.admisions=4", "mimic", "synth",
                     "--out", str(tmp_path / "b")]) == 2
        assert "unknown key(s) admisions" in capsys.readouterr().err
    finally:
        set_cli_overrides([])
