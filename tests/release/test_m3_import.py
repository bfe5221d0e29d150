"""``symile-data m3 import`` on fake releases: rows equal the source, media stored once by
content key, failures recorded with the path, resume after a crash, Hub retry / offline."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from fakes_m3 import make_csv_release, make_parquet_release
from symile_data.cli import main as cli_main
from symile_data.io.reader import split_files
from symile_data.m3 import release_store
from symile_data.m3.release_config import M3ReleaseConfig
from symile_data.m3.release_import import ReleaseError, hub_download, import_release

SPLITS = ("train", "val", "test")


def _samples(out: Path, config: str = "symile-m3-2-xs") -> dict[str, pa.Table]:
    d = out / "samples" / config
    return {s: pq.read_table(split_files(d, s)) for s in SPLITS}


def _media(out: Path) -> tuple[dict, dict]:
    img = pq.read_table(out / "images/images.parquet").to_pylist()
    clip = pq.read_table(out / "clips/clips.parquet").to_pylist()
    return {r["image_key"]: r for r in img}, {r["audio_key"]: r for r in clip}


def _read(table_dir: Path, path: str) -> bytes:
    return (Path(path) if path.startswith("/") else table_dir / path).read_bytes()


def test_parquet_import_rows_and_media_equal_source(tmp_path):
    src = make_parquet_release(tmp_path / "rel", corrupt_rows=2)
    rep = import_release(M3ReleaseConfig(source="parquet", local_dir=str(tmp_path / "rel"),
                                         batch_rows=16), tmp_path / "out")
    got, (images, clips) = _samples(tmp_path / "out"), _media(tmp_path / "out")
    for split in SPLITS:
        t, df = got[split].to_pydict(), src[split]
        assert t["key"] == [f"{split}-{i:09d}" for i in range(len(df))]
        assert t["lang"] == df.lang.tolist() and t["text"] == df.text.tolist()
        assert t["cls_id"] == df.cls_id.tolist() and t["target_word"] == df.target_text.tolist()
        assert t["lang_id"] == [("en", "el").index(x) for x in df.lang]
        assert not any(t["image_missing"] + t["audio_missing"] + t["text_missing"])
        for key, data in zip(t["image_key"], df.image_bytes):      # bytes stored once, equal
            row = images[key]
            if row["status"] == "ok":
                assert _read(tmp_path / "out/images", row["path"]) == data
        for key, data in zip(t["audio_key"], df.audio_bytes):
            assert _read(tmp_path / "out/clips", clips[key]["path"]) == data
    # 4 classes x 3 images + 2 corrupt copies; each stored once however often it is drawn
    assert rep["images"] == {**rep["images"], "unique": 14, "ok": 12, "failed": 2}
    assert all("train-00000-of-00002.parquet" in e and "cannot decode image" in e
               for e in rep["images"]["examples"])
    assert rep["clips"]["unique"] == 6 and rep["clips"]["failed"] == 0
    files = list((tmp_path / "out/images/files").rglob("*.jpg"))
    assert len(files) == 12
    tr = json.loads((tmp_path / "out/translations/translations.json").read_text())
    assert len(tr) == 4 and {"synset_id", "cls_id", "en", "el"} <= set(next(iter(tr.values())))


def test_import_resumes_after_a_crash(tmp_path, monkeypatch):
    make_parquet_release(tmp_path / "rel")
    cfg = M3ReleaseConfig(source="parquet", local_dir=str(tmp_path / "rel"), batch_rows=16)
    clean = import_release(cfg, tmp_path / "clean")
    real, calls = release_store.Parts.write, [0]

    def crash_on_fifth(self, *a, **k):
        calls[0] += 1
        if calls[0] == 5:
            raise KeyboardInterrupt("killed")
        return real(self, *a, **k)
    monkeypatch.setattr(release_store.Parts, "write", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        import_release(cfg, tmp_path / "out")
    assert not (tmp_path / "out/report.json").exists()
    monkeypatch.setattr(release_store.Parts, "write", real)
    rep = import_release(cfg, tmp_path / "out")
    assert rep["splits"]["train"]["skipped"] == 4
    for split in SPLITS:
        a = sorted((tmp_path / "clean/samples/symile-m3-2-xs").glob(f"{split}-*.parquet"))
        b = sorted((tmp_path / "out/samples/symile-m3-2-xs").glob(f"{split}-*.parquet"))
        assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
    assert (tmp_path / "clean/images/images.parquet").read_bytes() == \
        (tmp_path / "out/images/images.parquet").read_bytes()
    assert clean["splits"]["train"]["rows"] == rep["splits"]["train"]["rows"] == 200


def test_csv_import_exact_rows_and_missing_file_recorded(tmp_path):
    src, imagenet, cv = make_csv_release(tmp_path / "rel")
    cfg = M3ReleaseConfig(source="csv", csv_dir=str(tmp_path / "rel"),
                          imagenet_root=str(imagenet), common_voice_root=str(cv), batch_rows=16)
    rep = import_release(cfg, tmp_path / "out")
    got, (images, clips) = _samples(tmp_path / "out"), _media(tmp_path / "out")
    for split in SPLITS:
        t, df = got[split].to_pydict(), src[split]
        assert t["text"] == df.text.tolist() and t["cls_id"] == df.cls_id.tolist()
        assert t["lang"] == df.lang.tolist()
        for key, rel in zip(t["image_key"], df.image_path):
            assert images[key]["source_path"] == str(imagenet / rel)
        for key, rel in zip(t["audio_key"], df.audio_path):
            assert clips[key]["path"] == str(cv / rel) and clips[key]["status"] == "ok"
    gone = str(imagenet / "ILSVRC/Data/CLS-LOC/train/n00000000/gone.JPEG")
    bad = images[got["train"]["image_key"][0].as_py()]
    assert bad["status"] == "failed" and gone in bad["error"] and "unreadable" in bad["error"]
    assert rep["images"]["failed"] == 1 and rep["images"]["ok"] == 12


def test_hub_download_retries_then_offline_error(tmp_path, monkeypatch):
    calls = []

    def flaky(**kw):
        calls.append(kw)
        if len(calls) < 3:
            raise ConnectionError("reset by peer")
        return str(tmp_path)
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda s: None)
    assert hub_download("arsaporta/symile-m3", "symile-m3-2-xs", None, str(tmp_path), 5,
                        flaky) == tmp_path
    assert len(calls) == 3 and calls[0]["allow_patterns"] == ["symile-m3-2-xs/*.parquet",
                                                              "translations.json"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReleaseError, match="arsaporta/symile-m3.*HF_HUB_OFFLINE"):
        hub_download("arsaporta/symile-m3", "symile-m3-2-xs", None, str(tmp_path / "c"), 2)


def test_cli_import_and_bad_config(tmp_path, capsys):
    make_parquet_release(tmp_path / "rel", sizes=(30, 10, 10))
    params = yaml.safe_load((Path(__file__).parents[2] / "profiles/m3-release/params.yaml")
                            .read_text())
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    rc = cli_main(["m3", "import", "--params", str(tmp_path / "p.yaml"), "--source", "parquet",
                   "--local-dir", str(tmp_path / "rel"), "--out", str(tmp_path / "out")])
    assert rc == 0 and json.loads((tmp_path / "out/report.json").read_text())["splits"][
        "val"]["rows"] == 10
    with pytest.raises(ValueError, match="symile-m3-{w}-{size}"):
        release_store.config_w("m3-2-xs")
    with pytest.raises(ReleaseError, match="no test-NNNNN"):
        (tmp_path / "rel/symile-m3-2-xs/test-00000-of-00002.parquet").unlink()
        (tmp_path / "rel/symile-m3-2-xs/test-00001-of-00002.parquet").unlink()
        import_release(M3ReleaseConfig(source="parquet", local_dir=str(tmp_path / "rel")),
                       tmp_path / "out2")


def test_hub_source_reads_the_downloaded_snapshot(tmp_path):
    src = make_parquet_release(tmp_path / "snapshot", sizes=(20, 5, 5))
    asked = []

    def download(**kw):
        asked.append(kw)
        return str(tmp_path / "snapshot")
    rep = import_release(M3ReleaseConfig(source="hub", cache_dir=str(tmp_path / "cache")),
                         tmp_path / "out", download=download)
    assert asked[0]["repo_id"] == "arsaporta/symile-m3" and asked[0]["repo_type"] == "dataset"
    assert rep["splits"]["test"]["rows"] == 5
    assert _samples(tmp_path / "out")["val"]["text"].to_pylist() == src["val"].text.tolist()


def _rows(out: Path) -> dict[str, list]:
    return {s: t.select(["key", "text", "image_key", "audio_key"]).to_pylist()
            for s, t in _samples(out).items()}


def test_reimport_other_release_or_batch_rows_gives_exactly_the_new_rows(tmp_path, caplog):
    """Issue 21: parts of another release / batch_rows in ``.parts`` are not reused."""
    make_parquet_release(tmp_path / "a", sizes=(200, 50, 50))
    make_parquet_release(tmp_path / "b", sizes=(120, 30, 30), n_classes=3)
    a = M3ReleaseConfig(source="parquet", local_dir=str(tmp_path / "a"), batch_rows=16)
    b = M3ReleaseConfig(source="parquet", local_dir=str(tmp_path / "b"), batch_rows=16)
    import_release(b, tmp_path / "clean_b")
    import_release(a, tmp_path / "out")
    import_release(a.__class__(**{**a.__dict__, "batch_rows": 24}), tmp_path / "clean_a24")
    with caplog.at_level("WARNING"):
        rep = import_release(a.__class__(**{**a.__dict__, "batch_rows": 24}), tmp_path / "out")
    assert "params.batch_rows" in caplog.text and "not reused" in caplog.text
    assert {s: len(r) for s, r in _rows(tmp_path / "out").items()} == \
        {"train": 200, "val": 50, "test": 50}
    assert rep["splits"]["train"]["rows"] == 200 and rep["splits"]["train"]["skipped"] == 0
    assert _rows(tmp_path / "out") == _rows(tmp_path / "clean_a24")
    caplog.clear()
    with caplog.at_level("WARNING"):
        rep = import_release(b, tmp_path / "out")          # another release, same --out
    assert "inputs" in caplog.text
    assert _rows(tmp_path / "out") == _rows(tmp_path / "clean_b")
    for name in ("images/images.parquet", "clips/clips.parquet"):   # no rows of release a
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "clean_b" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "out/images/files").rglob("*.jpg")) == \
        sorted(p.name for p in (tmp_path / "clean_b/images/files").rglob("*.jpg"))
    assert rep["images"] == import_release(b, tmp_path / "clean_b")["images"]


def test_reimport_after_media_folders_removed_restores_the_files(tmp_path):
    """Issue 21: the README's CLI import, then ``dvc repro`` (which deletes the outs images/,
    clips/, samples/ first) must not list media that is no longer on disk."""
    import shutil
    make_parquet_release(tmp_path / "rel", sizes=(60, 20, 20))
    cfg = M3ReleaseConfig(source="parquet", local_dir=str(tmp_path / "rel"), batch_rows=16)
    import_release(cfg, tmp_path / "out")
    for d in ("images", "clips", "samples", "translations"):
        shutil.rmtree(tmp_path / "out" / d)
    import_release(cfg, tmp_path / "out")
    images, clips = _media(tmp_path / "out")
    for table_dir, rows in (("images", images), ("clips", clips)):
        ok = [r for r in rows.values() if r["status"] == "ok"]
        assert ok and all((tmp_path / "out" / table_dir / r["path"]).is_file() for r in ok)
    assert {s: len(r) for s, r in _rows(tmp_path / "out").items()} == \
        {"train": 60, "val": 20, "test": 20}
