"""Issue 22: the documented release commands work as written.

- ``m3 import --source csv --csv-dir ROOT`` on the published layout (Parquet ``{config}/``
  folders beside ``.csv_files/{config}/``, translations.json at the root); the explicit forms
  (``--csv-dir ROOT/.csv_files``, ``--translations``) still work; a folder without the CSVs is
  one line naming what was looked for.
- ``m3 import`` without ``--params`` reads the profile (the main params.yaml has no
  m3_release section).
- ``export-reference`` of an imported MIMIC samples folder finds the retrieval sets beside it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from fakes_m3 import make_csv_release, make_parquet_release
from fakes_mimic import make_mimic_release
from symile_data.cli import main as cli_main
from symile_data.io.reader import split_files

REPO = Path(__file__).resolve().parents[2]


def _published(root: Path):
    """The Hub layout: {config}/*.parquet, .csv_files/{config}/*.csv, translations.json."""
    make_parquet_release(root, sizes=(30, 10, 10))
    return make_csv_release(root, sizes=(24, 8, 8))


def _texts(out: Path) -> list[str]:
    d = out / "samples/symile-m3-2-xs"
    return pq.read_table(split_files(d, "train"))["text"].to_pylist()


def test_csv_import_accepts_the_published_root(tmp_path, monkeypatch, capsys):
    src, imagenet, cv = _published(tmp_path / "rel")
    monkeypatch.chdir(REPO)        # documented commands run in the repository root
    media = ["--params", "profiles/m3-release/params.yaml", "--imagenet-root", str(imagenet),
             "--common-voice-root", str(cv)]
    rc = cli_main(["m3", "import", "--source", "csv", "--csv-dir", str(tmp_path / "rel"),
                   *media, "--out", str(tmp_path / "a")])
    assert rc == 0, capsys.readouterr().err
    assert _texts(tmp_path / "a") == src["train"].text.tolist()
    # the explicit forms: the .csv_files folder (translations found above it), or with
    # --translations
    for out, extra in (("b", []), ("c", ["--translations", str(tmp_path / "rel/translations.json")])):
        rc = cli_main(["m3", "import", "--source", "csv", "--csv-dir",
                       str(tmp_path / "rel/.csv_files"), *media, *extra,
                       "--out", str(tmp_path / out)])
        assert rc == 0, capsys.readouterr().err
        assert _texts(tmp_path / out) == src["train"].text.tolist()
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    rc = cli_main(["m3", "import", "--source", "csv", "--csv-dir", str(tmp_path / "empty"),
                   *media, "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "no split CSVs of symile-m3-2-xs" in err[0] and ".csv_files/symile-m3-2-xs" in err[0]


def test_m3_import_without_params_reads_the_profile(tmp_path, monkeypatch, capsys):
    src = make_parquet_release(tmp_path / "rel", sizes=(20, 5, 5))
    monkeypatch.chdir(REPO)
    rc = cli_main(["m3", "import", "--source", "parquet", "--local-dir", str(tmp_path / "rel"),
                   "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    assert _texts(tmp_path / "out") == src["train"].text.tolist()


def test_export_reference_finds_the_retrieval_sets_beside_the_samples(tmp_path, capsys):
    fake = make_mimic_release(tmp_path / "fake", admissions=90)
    shards = tmp_path / "import"
    assert cli_main(["mimic", "import-release", "--release", str(fake["release"]),
                     "--out", str(shards)]) == 0
    capsys.readouterr()
    rc = cli_main(["export-reference", str(shards / "symile-mimic"), "--out",
                   str(tmp_path / "ref")])
    assert rc == 0, capsys.readouterr().err
    meta = sorted(p.name for p in (tmp_path / "ref/test").iterdir())
    assert "label_test.pt" in meta and "cxr_test.pt" in meta
    # no retrieval sets anywhere near: one line naming the flag
    lone = tmp_path / "lone"
    lone.mkdir()
    (shards / "symile-mimic").rename(lone / "symile-mimic")
    rc = cli_main(["export-reference", str(lone / "symile-mimic"), "--out",
                   str(tmp_path / "ref2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--retrieval" in err[0]
    assert not (tmp_path / "ref2").exists()
    assert json.loads((shards / "report.json").read_text())["flags"]["mimic_derived"] is True
