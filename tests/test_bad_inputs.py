"""The error boundary is total: every ``symile-data`` subcommand and every stage script, given a
bad input (missing / empty / corrupt / truncated file, wrong type, unknown key, non-UTF-8, full
disk), exits 2 with exactly ONE line on stderr that names the file, row or key, and no traceback.

The catalogue is data: ``CASES`` (argv, setup, expected substrings); add a row for every new bad
input. Cases run in-process (``symile_data.cli.main`` / the stage's ``main``) with logging at
ERROR (the boundary's line is then the only output); ``test_real_exit_code`` runs a few as real
processes to prove the exit code. A full disk is an injected ENOSPC (``full_disk``: the fsync of
every complete-or-absent write fails as on a full file system) or, as root, a 64 KiB tmpfs.
"""
from __future__ import annotations

import dataclasses
import errno
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

from symile_data import cli
from symile_data.cli import build_parser
from symile_data.config import set_cli_overrides

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "SYMILE_DATA_PROGRESS": "off"}


# ---------------------------------------------------------------------------------------------
# the world a case runs in: tmp dir (cwd) with params.yaml and a few tiny valid inputs
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Built once: params.yaml (resource paths absolute), a tiny XOR dataset ``xs``, the M3 demo
    translations ``tr``. Cases copy what they corrupt."""
    w = tmp_path_factory.mktemp("world")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    text = (REPO / "params.yaml").read_text().replace("symile_data/resources",
                                                       str(REPO / "symile_data/resources"))
    (w / "params.yaml").write_text(text)
    params = yaml.safe_load(text)
    params["xor_data"].update(ps=[0.0], n_train=40, n_val=10, n_test=10, max_rows_per_shard=20)
    (w / "small.yaml").write_text(yaml.safe_dump(params))
    cwd = os.getcwd()
    os.chdir(w)
    try:
        assert cli.main(["--log-level", "ERROR", "xor-data", "--params", "small.yaml",
                         "--out", "xs"]) == 0
        assert cli.main(["--log-level", "ERROR", "m3", "translations", "--out", "tr"]) == 0
    finally:
        os.chdir(cwd)
    return w


# ---------------------------------------------------------------------------------------------
# setup helpers: each takes the case dir t (cwd, a copy of the world) and spoils something
def params_edit(fn: Callable[[dict], None], name: str = "params.yaml") -> Callable[[Path], None]:
    def setup(t: Path) -> None:
        d = yaml.safe_load((t / "params.yaml").read_text())
        fn(d)
        (t / name).write_text(yaml.safe_dump(d))
    return setup


def write(rel: str, data: bytes | str) -> Callable[[Path], None]:
    def setup(t: Path) -> None:
        p = t / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def truncate(rel: str, keep: float = 0.4) -> Callable[[Path], None]:
    def setup(t: Path) -> None:
        p = t / rel
        p.write_bytes(p.read_bytes()[:int(p.stat().st_size * keep)])
    return setup


def manifest_edit(rel: str, fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def setup(t: Path) -> None:
        p = t / rel / "manifest.json"
        m = json.loads(p.read_text())
        fn(m)
        p.write_text(json.dumps(m))
    return setup


def both(*fns: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(t: Path) -> None:
        for f in fns:
            f(t)
    return setup


def empty_section(name: str) -> Callable[[Path], None]:
    def setup(t: Path) -> None:
        d = yaml.safe_load((t / "params.yaml").read_text())
        d[name] = None
        (t / "params.yaml").write_text(yaml.safe_dump(d))
    return setup


def latin1_params(t: Path) -> None:
    (t / "params.yaml").write_bytes((t / "params.yaml").read_bytes() + "# caf\xe9\n".encode("latin-1"))


def rename_shard(t: Path) -> None:
    d = t / "xs/p0.0"
    (d / "train-00000-of-00002.parquet").rename(d / "train-00000-of-00002.pq")
    manifest_edit("xs/p0.0", lambda m: m["splits"]["train"]["shards"][0].update(
        file="train-00000-of-00002.pq"))(t)


def full_disk(monkeypatch) -> None:
    """Every complete-or-absent write (symile_data.io.atomic) fails as on a full disk."""
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", no_space)


def no_espeak(monkeypatch) -> None:
    from symile_data.m3 import speech
    monkeypatch.setattr(speech, "ESPEAK", "/nonexistent/espeak-ng")
    speech.espeak_voice_names.cache_clear()
    monkeypatch.setattr(speech, "espeak_voice_names", speech.espeak_voice_names.__wrapped__)


def espeak_voices(monkeypatch) -> None:
    """espeak-ng with the M3 languages' own voices (whether or not it is installed here)."""
    from symile_data.m3 import speech
    monkeypatch.setattr(speech, "espeak_voice_names",
                        lambda: frozenset(speech.ESPEAK_VOICES.values()))


def release_tree(t: Path) -> None:
    """A release folder whose first tensor file (train/cxr_train.pt) is truncated."""
    import torch
    r = t / "rel"
    for name in ("train", "val", "test"):
        write(f"rel/{name}.csv", "subject_id,hadm_id\n1,10\n")(t)
    (r / "train").mkdir()
    torch.save(torch.zeros(2, 3, 8, 8), r / "train/cxr_train.pt")
    truncate("rel/train/cxr_train.pt", 0.5)(t)


def run_dir_with_truncated_checkpoint(t: Path) -> None:
    import torch
    (t / "run").mkdir()
    torch.save({"model": {}, "epoch": 0}, t / "run/best.pt")
    truncate("run/best.pt", 0.3)(t)
    shutil.copy(t / "run/best.pt", t / "run/last.pt")


# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Case:
    id: str
    argv: list[str]                      # symile-data argv, or ["stage:<name>", *argv]
    expect: list[str]                    # substrings of the one error line
    setup: Callable[[Path], None] | None = None
    env: Callable | None = None          # env(monkeypatch): patch the process (full disk ...)


S = "stage:"
CASES = [
    # ---- params.yaml and --set (the config layer every stage shares) ----
    Case("params-missing", ["xor-data", "--params", "nope.yaml", "--out", "o"], ["nope.yaml"]),
    Case("params-empty-section", ["xor-data", "--out", "o"], ["params.yaml:xor_data", "empty"],
         empty_section("xor_data")),
    Case("params-section-not-mapping", ["xor-data", "--out", "o"], ["xor_data", "mapping"],
         params_edit(lambda d: d.update(xor_data=3))),
    Case("params-unknown-key", ["xor-data", "--out", "o"], ["n_trian"],
         params_edit(lambda d: d["xor_data"].update(n_trian=3))),
    Case("params-wrong-type", ["xor-data", "--out", "o"], ["xor_data.n_train", "'many'"],
         params_edit(lambda d: d["xor_data"].update(n_train="many"))),
    Case("params-missing-section", ["xor-data", "--out", "o"], ["missing section 'xor_data'"],
         params_edit(lambda d: d.pop("xor_data"))),
    Case("params-not-utf8", ["xor-data", "--out", "o"], ["params.yaml", "not UTF-8", "line"],
         latin1_params),
    Case("params-not-yaml", ["xor-data", "--out", "o"], ["params.yaml", "not valid YAML"],
         write("params.yaml", "xor_data: [1,\n")),
    Case("params-top-level-list", ["xor-data", "--out", "o"], ["params.yaml", "top level"],
         write("params.yaml", "- 1\n")),
    Case("set-not-yaml", ["--set", "xor_data.n_train=[1,", "xor-data", "--out", "o"],
         ["xor_data.n_train", "not YAML"]),
    Case("set-wrong-type", ["--set", "xor_data.n_train=abc", "xor-data", "--out", "o"],
         ["xor_data.n_train", "'abc'"]),
    Case("set-unknown-key", ["--set", "xor_data.n_trian=3", "xor-data", "--out", "o"],
         ["n_trian"]),
    Case("set-no-equals", ["--set", "xor_data.n_train", "xor-data", "--out", "o"],
         ["xor_data.n_train", "SECTION.KEY=VALUE"]),
    Case("set-unknown-section", ["--set", "nosuch.x=1", "xor-data", "--out", "o"], ["nosuch"]),
    Case("set-section-not-read", ["--set", "m3_demo.seed=3", "xor-data", "--params",
                                  "small.yaml", "--out", "o"], ["m3_demo", "reads: xor_data"]),
    Case("set-section-not-read-no-params", ["--set", "m3_demo.seed=3", "validate", "xs"],
         ["m3_demo", "no params section"]),
    # ---- io: xor-data, schemas, validate, dvc-deps ----
    Case("xor-data-out-under-file", ["xor-data", "--out", "f/sub"], ["f/sub"], write("f", "x")),
    Case("xor-data-disk-full", ["xor-data", "--params", "small.yaml", "--out", "o"],
         ["disk full writing o/p0.0/", "No space left"], env=full_disk),
    Case("schemas-no-dir", ["schemas", "--dir", "nope"], ["nope", "schemas directory"]),
    Case("schemas-write-disk-full", ["schemas", "--write", "--dir", "s"],
         ["disk full writing s/", ".json"], env=full_disk),
    Case("validate-no-dir", ["validate", "nope"], ["nope"]),
    Case("validate-report-disk-full", ["validate", "xs", "--report", "r.json"],
         ["disk full writing r.json"], env=full_disk),
    Case("dvc-deps-no-root", ["dvc-deps", "--root", "nope"], ["nope", "dvc.yaml"]),
    # ---- m3 ----
    Case("m3-demo-bad-key", ["m3", "demo", "--out", "o"], ["m3_demo", "colour"],
         params_edit(lambda d: d["m3_demo"].update(colour=1))),
    Case("m3-demo-out-under-file", ["m3", "demo", "--out", "f/sub"], ["f/sub"],
         write("f", "x")),
    Case("m3-translations-missing-source", ["m3", "translations", "--out", "o"],
         ["nope.json"], params_edit(lambda d: d["m3_translations"].update(path="nope.json"))),
    Case("m3-translations-not-json", ["m3", "translations", "--out", "o"], ["bad.json"],
         both(write("bad.json", "{not json"),
              params_edit(lambda d: d["m3_translations"].update(path="bad.json")))),
    Case("m3-translations-disk-full", ["m3", "translations", "--out", "o"],
         ["disk full writing o/"], env=full_disk),
    Case("m3-images-no-translations", ["m3", "images", "--translations", "nope", "--out", "o"],
         ["nope/translations.json"]),
    Case("m3-images-translations-corrupt", ["m3", "images", "--translations", "tr",
                                            "--out", "o"], ["tr/translations.json"],
         write("tr/translations.json", "{\"a\": ")),
    Case("m3-clips-no-translations", ["m3", "clips", "--translations", "nope", "--out", "o"],
         ["nope/translations.json"]),
    Case("m3-clips-voice-not-string", ["m3", "clips", "--translations", "tr", "--out", "o"],
         ["m3_clips", "voices.en", "3"],
         params_edit(lambda d: d["m3_clips"].update(voices={"en": 3}))),
    Case("m3-clips-voice-unknown", ["m3", "clips", "--translations", "tr", "--out", "o"],
         ["no voice 'xx-nope'", "m3_clips.voices"],
         params_edit(lambda d: d["m3_clips"].update(voices={"en": "xx-nope"})), espeak_voices),
    Case("m3-clips-no-espeak", ["m3", "clips", "--translations", "tr", "--out", "o"],
         ["espeak-ng not usable", "/nonexistent/espeak-ng"], env=no_espeak),
    Case("m3-clips-sentences-missing", ["m3", "clips", "--translations", "tr", "--out", "o"],
         ["nope-sentences.json"],
         params_edit(lambda d: d["m3_clips"].update(sentences="nope-sentences.json"))),
    Case("m3-samples-no-translations", ["m3", "samples", "--translations", "nope",
                                        "--out", "o"], ["nope/translations.json"]),
    Case("m3-samples-no-images", ["m3", "samples", "--translations", "tr", "--images", "nope",
                                  "--out", "o"], ["nope"]),
    Case("m3-import-no-section", ["m3", "import", "--params", "params.yaml", "--out", "o"],
         ["missing section 'm3_release'"]),
    Case("m3-import-no-profile", ["m3", "import", "--out", "o"],
         ["profiles/m3-release/params.yaml"]),
    Case("m3-import-csv-no-csvs", ["m3", "import", "--params", "params.yaml", "--source", "csv",
                                   "--csv-dir", "tr", "--imagenet-root", ".",
                                   "--common-voice-root", ".", "--out", "o"],
         ["tr: no split CSVs of symile-m3-2-xs", ".csv_files/symile-m3-2-xs/train.csv"],
         params_edit(lambda d: d.update(m3_release={"source": "hub"}))),
    Case("m3-release-eval-no-translations", ["m3", "release-eval", "--params", "params.yaml",
                                             "--translations", "nope"], ["nope/translations.json"]),
    # ---- publish / export ----
    Case("publish-no-dir", ["publish", "nope", "--repo-id", "a/b", "--dry-run"], ["nope"]),
    Case("publish-manifest-no-schema", ["publish", "xs/p0.0", "--repo-id", "a/b", "--dry-run"],
         ["xs/p0.0/manifest.json", "schema_arrow_b64"],
         manifest_edit("xs/p0.0", lambda m: m.pop("schema_arrow_b64"))),
    Case("publish-shard-not-parquet", ["publish", "xs/p0.0", "--repo-id", "a/b", "--dry-run"],
         ["xs/p0.0/manifest.json", "train-00000-of-00002.pq"], rename_shard),
    Case("publish-manifest-not-json", ["publish", "xs/p0.0", "--repo-id", "a/b", "--dry-run"],
         ["xs/p0.0/manifest.json"], write("xs/p0.0/manifest.json", "{")),
    Case("export-reference-no-dir", ["export-reference", "nope", "--out", "o"], ["nope"]),
    Case("export-wds-no-dir", ["export-wds", "nope", "--out", "o"], ["nope"]),
    Case("export-wds-truncated-shard", ["export-wds", "xs/p0.0", "--out", "o"],
         ["xs/p0.0/test-00000-of-00001.parquet", "not a readable Parquet file"],
         truncate("xs/p0.0/test-00000-of-00001.parquet")),
    Case("export-wds-manifest-not-utf8", ["export-wds", "xs/p0.0", "--out", "o"],
         ["xs/p0.0/manifest.json"], write("xs/p0.0/manifest.json", b"\xff\xfe{}")),
    # ---- features ----
    Case("features-tiny-bad-seed", ["features", "tiny-models", "--out", "o"],
         ["features_tiny_models.seed"],
         params_edit(lambda d: d["features_tiny_models"].update(seed="x"))),
    Case("features-tiny-out-under-file", ["features", "tiny-models", "--out", "f/sub"],
         ["f/sub"], write("f", "x")),
    Case("features-encode-no-samples", ["features", "encode", "--images", "nope",
                                        "--clips", "nope", "--samples", "nope", "--out", "o"],
         ["nope"]),
    Case("features-join-no-features", ["features", "join", "--samples", "xs",
                                       "--features", "nope", "--out", "o"], ["nope"]),
    # ---- mimic ----
    Case("mimic-synth-out-under-file", ["mimic", "synth", "--out", "f/sub"], ["f/sub"],
         write("f", "x")),
    Case("mimic-synth-bad-key", ["mimic", "synth", "--out", "o"], ["mimic_synth", "admisions"],
         params_edit(lambda d: d["mimic_synth"].update(admisions=3))),
    Case("mimic-labevents-no-csv", ["mimic", "labevents", "--csv", "nope.csv",
                                    "--out", "o.parquet"], ["nope.csv"]),
    Case("mimic-labevents-missing-columns", ["mimic", "labevents", "--csv", "l.csv",
                                             "--out", "o.parquet"], ["l.csv", "missing column"],
         write("l.csv", "a,b\n1,2\n")),
    Case("mimic-cohort-no-tree", ["mimic", "cohort", "--mimic-iv", "nope", "--out", "o"],
         ["nope/hosp/"]),
    Case("mimic-shards-no-cohort", ["mimic", "shards", "--cohort", "nope", "--out", "o"],
         ["nope/cohort.parquet"]),
    Case("mimic-import-release-no-release", ["mimic", "import-release", "--release", "nope",
                                             "--out", "o"], ["nope/train.csv"]),
    Case("mimic-import-release-truncated-pt", ["mimic", "import-release", "--release", "rel",
                                               "--out", "o"],
         ["rel/train/cxr_train.pt", "not a readable torch file"], release_tree),
    # ---- train / evaluate / xor ----
    Case("train-no-dataset", ["train", "--dataset-dir", "nope", "--model", "xor", "--loss",
                              "symile", "--out", "o"], ["nope"]),
    Case("train-truncated-shard", ["train", "--dataset-dir", "xs/p0.0", "--model", "xor",
                                   "--loss", "symile", "--out", "o", "--device", "cpu"],
         ["xs/p0.0/train-00000-of-00002.parquet", "not a readable Parquet file"],
         truncate("xs/p0.0/train-00000-of-00002.parquet")),
    Case("evaluate-truncated-checkpoint", ["evaluate", "--run-dir", "run", "--dataset-dir",
                                           "xs/p0.0", "--model", "xor", "--out", "m.json",
                                           "--device", "cpu"],
         ["run/", ".pt", "not a readable torch file"], run_dir_with_truncated_checkpoint),
    Case("evaluate-no-run-dir", ["evaluate", "--run-dir", "nope", "--dataset-dir", "xs/p0.0",
                                 "--model", "xor", "--out", "m.json"], ["nope"]),
    Case("xor-train-no-data", ["xor-train", "--data", "nope", "--models", "o"],
         ["nope/p0.0/manifest.json"]),
    Case("xor-eval-no-models", ["xor-eval", "--data", "xs", "--models", "nope"], ["nope/"]),
    Case("xor-plot-no-metrics", ["xor-plot", "--metrics", "nope.json", "--out", "o.png"],
         ["nope.json"]),
    Case("xor-plot-metrics-not-json", ["xor-plot", "--metrics", "m.json", "--out", "o.png"],
         ["m.json"], write("m.json", "{\"p\": ")),
    # ---- e2e ----
    Case("e2e-missing-no-translations", ["e2e", "missing", "--p", "0.5", "--translations",
                                         "nope", "--out", "o"], ["nope"]),
    Case("e2e-eval-m3-no-translations", ["e2e", "eval-m3", "--translations", "nope"],
         ["nope/translations.json"]),
    Case("e2e-eval-mimic-no-retrieval", ["e2e", "eval-mimic", "--retrieval", "nope"], ["nope"]),
    Case("e2e-validate-no-root", ["e2e", "validate", "nope"], ["nope"]),
    Case("e2e-report-no-xor", ["e2e", "report", "--xor", "nope.json"], ["nope.json"]),
    Case("e2e-report-xor-not-utf8", ["e2e", "report", "--xor", "x.json"], ["x.json"],
         write("x.json", b"\xff\xfe\x00")),
    Case("e2e-train-m3-no-dataset", ["e2e", "train-m3", "--dataset", "nope", "--method",
                                     "symile", "--out", "o"], ["nope"]),
    Case("e2e-train-mimic-no-dataset", ["e2e", "train-mimic", "--dataset", "nope", "--method",
                                        "clip", "--out", "o"], ["nope"]),
    # ---- every stage script (pipelines/*.py), run through its own main(argv) ----
    Case("stage-xor_data-empty-section", [S + "xor_data", "--out", "o"], ["xor_data", "empty"],
         empty_section("xor_data")),
    Case("stage-xor_train", [S + "xor_train", "--data", "nope", "--models", "o"], ["nope"]),
    Case("stage-xor_eval", [S + "xor_eval", "--data", "xs", "--models", "nope"], ["nope"]),
    Case("stage-xor_plot", [S + "xor_plot", "--metrics", "nope.json"], ["nope.json"]),
    Case("stage-m3_demo", [S + "m3_demo", "--out", "f/sub"], ["f/sub"], write("f", "x")),
    Case("stage-m3_translations", [S + "m3_translations", "--out", "o"], ["params.yaml"],
         latin1_params),
    Case("stage-m3_images", [S + "m3_images", "--translations", "nope", "--out", "o"],
         ["nope/translations.json"]),
    Case("stage-m3_clips-voice-not-string", [S + "m3_clips", "--translations", "tr",
                                             "--out", "o"], ["voices.en"],
         params_edit(lambda d: d["m3_clips"].update(voices={"en": ["a"]}))),
    Case("stage-m3_clips-no-espeak", [S + "m3_clips", "--translations", "tr", "--out", "o"],
         ["espeak-ng not usable"], env=no_espeak),
    Case("stage-m3_samples", [S + "m3_samples", "--translations", "nope", "--out", "o"],
         ["nope"]),
    Case("stage-m3_release", [S + "m3_release", "--out", "o"],
         ["profiles/m3-release/params.yaml", "not found"]),      # its default params file
    Case("stage-m3_release_eval", [S + "m3_release_eval", "--params", "params.yaml",
                                   "--translations", "nope"], ["nope"]),
    Case("stage-features_tiny_models", [S + "features_tiny_models", "--out", "o"],
         ["features_tiny_models"], empty_section("features_tiny_models")),
    Case("stage-features_m3", [S + "features_m3", "--images", "nope", "--clips", "nope",
                               "--samples", "nope", "--out", "o"], ["nope"]),
    Case("stage-m3_shards", [S + "m3_shards", "--samples", "xs", "--features", "nope",
                             "--out", "o"], ["nope"]),
    Case("stage-mimic_synth", [S + "mimic_synth", "--out", "o"], ["mimic_synth"],
         params_edit(lambda d: d["mimic_synth"].update(admissions="lots"))),
    Case("stage-mimic_cohort", [S + "mimic_cohort", "--mimic-iv", "mi", "--out", "o"],
         ["mi/hosp/"]),
    Case("stage-mimic_shards", [S + "mimic_shards", "--cohort", "nope", "--out", "o"],
         ["nope/cohort.parquet"]),
    Case("stage-mimic_release", [S + "mimic_release", "--release", "nope", "--out", "o"],
         ["nope"]),
    Case("stage-m3_missing", [S + "m3_missing", "--p", "0.5", "--translations", "nope",
                              "--out", "o"], ["nope"]),
    Case("stage-m3_eval", [S + "m3_eval", "--translations", "nope"], ["nope"]),
    Case("stage-mimic_eval", [S + "mimic_eval", "--retrieval", "nope"], ["nope"]),
    Case("stage-validate_all", [S + "validate_all", "nope"], ["nope"]),
    Case("stage-report", [S + "report", "--xor", "nope.json"], ["nope.json"]),
    Case("stage-m3_train", [S + "m3_train", "--dataset", "nope", "--method", "symile",
                            "--out", "o"], ["nope"]),
    Case("stage-mimic_train", [S + "mimic_train", "--dataset", "nope", "--method", "symile",
                               "--out", "o"], ["nope"]),
    Case("stage-xor_data-disk-full", [S + "xor_data", "--params", "small.yaml", "--out", "o"],
         ["disk full writing o/p0.0/"], env=full_disk),
]


def _stage_main(name: str):
    spec = importlib.util.spec_from_file_location(f"bad_inputs_{name}",
                                                  REPO / "pipelines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _run(case: Case, t: Path) -> int:
    if case.argv[0].startswith(S):
        return _stage_main(case.argv[0][len(S):])([*case.argv[1:], "--log-level", "ERROR"])
    return cli.main(["--log-level", "ERROR", *case.argv])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2(case, world, tmp_path, monkeypatch, capsys):
    t = tmp_path / "w"
    shutil.copytree(world, t)
    monkeypatch.chdir(t)
    if case.setup:
        case.setup(t)
    if case.env:
        case.env(monkeypatch)
    set_cli_overrides([])            # no --set of an earlier in-process case leaks into a stage
    capsys.readouterr()
    rc = _run(case, t)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert rc == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(("error: ", "configuration error: ")), err
    for s in case.expect:
        assert s in lines[0], (s, lines[0])
    assert "np.int64(" not in lines[0] and "np.float64(" not in lines[0]


def _subcommand_paths(parser, path=()) -> list[tuple[str, ...]]:
    import argparse
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = _subcommand_paths(sub, path + (name,))
                out += inner or [path + (name,)]
    return out


def test_catalogue_covers_every_subcommand_and_stage():
    """Each ``symile-data`` subcommand (from build_parser) and each pipelines/*.py has a case."""
    argvs = [c.argv for c in CASES]
    for path in _subcommand_paths(build_parser()):
        assert any(_after_globals(a)[:len(path)] == list(path) for a in argvs), path
    for script in sorted((REPO / "pipelines").glob("*.py")):
        assert any(a[0] == S + script.stem for a in argvs), script.name
    assert len(CASES) >= 60


def _after_globals(argv: list[str]) -> list[str]:
    """argv without the global ``--set X`` / ``--log-level X`` options in front."""
    i = 0
    while i < len(argv) and argv[i] in ("--set", "--log-level"):
        i += 2
    return argv[i:]


# ---------------------------------------------------------------------------------------------
# real processes: the exit code and stderr a shell / DVC sees
def _proc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=120)


@pytest.mark.parametrize("args,setup,expect", [
    (["-m", "symile_data.cli", "--set", "xor_data.n_train=[1,", "xor-data", "--out", "o"], None,
     "xor_data.n_train"),
    ([str(REPO / "pipelines/xor_data.py"), "--out", "o"], empty_section("xor_data"), "xor_data"),
    ([str(REPO / "pipelines/m3_clips.py"), "--translations", "tr", "--out", "o"],
     params_edit(lambda d: d["m3_clips"].update(voices={"en": 3})), "voices.en"),
    (["-m", "symile_data.cli", "mimic", "import-release", "--release", "rel", "--out", "o"],
     release_tree, "rel/train/cxr_train.pt"),
], ids=["set-not-yaml", "stage-empty-section", "stage-voice-not-string", "truncated-pt"])
def test_real_exit_code(args, setup, expect, world, tmp_path):
    t = tmp_path / "w"
    shutil.copytree(world, t)
    if setup:
        setup(t)
    r = _proc(args, t)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and expect in lines[0], r.stderr


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs (needs root and mount); skipped where it cannot be mounted."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_real_full_disk_is_one_line(world, tmp_path, tiny_tmpfs):
    """A real ENOSPC (pyarrow writing a shard onto a full tmpfs) in a real process."""
    t = tmp_path / "w"
    shutil.copytree(world, t)
    r = _proc(["-m", "symile_data.cli", "--log-level", "ERROR", "xor-data", "--out",
               str(tiny_tmpfs / "o")], t)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: disk full writing {tiny_tmpfs}/o/"), r.stderr
