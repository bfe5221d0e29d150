"""`symile-data export-reference`: the rajesh-lab/symile tensor layout, round-tripped through
torch.load against the shard values."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from symile_data.cli import main
from symile_data.io.reader import ParquetMapDataset, split_files
from symile_data.publish import reference, reference_m3
from symile_data.publish.reference import EXPORT_RECORD, export_reference
from symile_data.publish.reference_meta import EXTRA_KEYS, REFERENCE_KEYS
from symile_data.publish.reference_mimic import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(reference, "BATCH_ROWS", 4)   # batches cross shard/row-group edges


def shard_columns(d, split):
    return ParquetMapDataset(split_files(d, split)).read_all()


def load(path):
    return torch.load(path, weights_only=True)


def test_m3_round_trip(m3_dir, tmp_path):
    d, out = m3_dir(), tmp_path / "ref"
    assert main(["export-reference", str(d), "--out", str(out)]) == 0
    names = reference_m3.class_names()
    for split in ("train", "val", "test"):
        src = shard_columns(d, split)
        n = len(src["key"])
        for name, col in (("image", "image_feat"), ("audio", "audio_feat"),
                          ("text_input_ids", "text_input_ids"),
                          ("text_attention_mask", "text_attention_mask"), ("cls_id", "cls_id")):
            t = load(out / split / f"{name}_{split}.pt")
            assert t.dtype == torch.float32 and t.shape == src[col].shape
            assert torch.equal(t, src[col].to(torch.float32))
        assert torch.equal(load(out / split / f"idx_{split}.pt"), torch.arange(n).float())
        assert torch.equal(load(out / split / f"text_input_ids_{split}.pt").long(),
                           src["text_input_ids"].long())       # the reference loader's .long()
        read = lambda f: (out / split / f"{f}_{split}.txt").read_text(encoding="utf-8")  # noqa
        assert read("lang").split("\n") == src["lang"]
        assert read("words").split("\n") == src["text"]
        expect_cls = (list(names[src["cls_id"].numpy()]) if names is not None
                      else src["synset"])
        assert read("cls").split("\n") == expect_cls and not read("cls").endswith("\n")
        assert not list((out / split).glob("*missingness*"))    # no missing rows
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["image_enc_hidden_sz"] == 8 and meta["audio_enc_hidden_sz"] == 6
    assert meta["text_enc_hidden_sz"] == 12 and meta["max_token_len"] == 7
    assert meta["image_model_id"] == "openai/clip-vit-large-patch14"
    assert meta["missingness_prob"] is None
    record = json.loads((out / EXPORT_RECORD).read_text())
    assert record["complete"] and record["files"]["train/image_train.pt"]["shape"] == [17, 8]


def test_m3_missingness_tensors(m3_dir, tmp_path):
    d = m3_dir(p_missing=0.5, extra={"params": {"missingness_p": 0.65}})
    export_reference(d, tmp_path / "ref")
    for split in ("train", "val"):
        src = shard_columns(d, split)
        for mod in ("text", "image", "audio"):
            t = load(tmp_path / "ref" / split / f"{mod}_missingness_prob65_{split}.pt")
            assert t.dtype == torch.int32
            assert torch.equal(t, src[f"{mod}_missing"].to(torch.int32))
    assert not list((tmp_path / "ref" / "test").glob("*missingness*"))


def test_m3_metadata_keys_and_types(m3_dir, tmp_path):
    """metadata.json holds every key the reference writes/reads (docs/publish.md), typed."""
    d = m3_dir(p_missing=0.5, extra={"missing_p": 0.6})    # as the join records the sampler's p
    export_reference(d, tmp_path / "ref")
    meta = json.loads((tmp_path / "ref" / "metadata.json").read_text())
    assert set(meta) == set(REFERENCE_KEYS) | set(EXTRA_KEYS)
    for key, (typ, _) in REFERENCE_KEYS.items():
        assert type(meta[key]) is typ, key
    for key, types in EXTRA_KEYS.items():
        assert isinstance(meta[key], types), key
    assert meta["missingness_prob"] == 0.6 and meta["text_enc_hidden_sz"] == 12
    assert (tmp_path / "ref" / "val" / "audio_missingness_prob60_val.pt").exists()
    doc = (Path(__file__).parents[2] / "docs" / "publish.md").read_text()
    for key in REFERENCE_KEYS:
        assert f"`{key}`" in doc, f"docs/publish.md does not list {key}"


def test_m3_metadata_text_size(m3_dir, tmp_path, capsys):
    """The text hidden size comes from the text model's config; without one, a clear error
    before any tensor is written, and --text-enc-hidden-sz overrides."""
    import shutil
    d = m3_dir()
    shutil.rmtree(tmp_path / "text-model")
    assert main(["export-reference", str(d), "--out", str(tmp_path / "r")]) == 2
    assert "--text-enc-hidden-sz" in capsys.readouterr().err
    assert not (tmp_path / "r" / "train").exists()
    assert main(["export-reference", str(d), "--out", str(tmp_path / "r"),
                 "--text-enc-hidden-sz", "1024"]) == 0
    assert json.loads((tmp_path / "r" / "metadata.json").read_text())["text_enc_hidden_sz"] == 1024


def test_m3_metadata_needs_encoders(m3_dir, tmp_path):
    d = m3_dir()
    m = json.loads((d / "manifest.json").read_text())
    del m["extra"]["features"]
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="extra.features.image.model"):
        export_reference(d, tmp_path / "r")


def test_m3_missingness_needs_p(m3_dir, tmp_path, capsys):
    d = m3_dir(p_missing=0.5, extra={"seed": 0})
    assert main(["export-reference", str(d), "--out", str(tmp_path / "r")]) == 2
    assert "--missingness-prob" in capsys.readouterr().err
    assert main(["export-reference", str(d), "--out", str(tmp_path / "r"),
                 "--missingness-prob", "0.5"]) == 0
    assert (tmp_path / "r" / "train" / "image_missingness_prob50_train.pt").exists()


def expected_cxr(cxr_u8, side):
    g = cxr_u8.reshape(-1, 1, side, side).astype(np.float32) / np.float32(255)
    return (g - IMAGENET_MEAN[None, :, None, None]) / IMAGENET_STD[None, :, None, None]


def test_mimic_round_trip(mimic_root, tmp_path):
    root, splits = mimic_root()
    out = tmp_path / "ref"
    assert main(["export-reference", str(root), "--out", str(out)]) == 0
    by_id = {}
    for split in ("train", "val", "test"):
        src = shard_columns(root / "samples", split)
        by_id[split] = {int(h): i for i, h in enumerate(src["hadm_id"])}
        by_id[split + "_src"] = src
    for split in ("train", "val"):
        src = by_id[split + "_src"]
        n = len(src["hadm_id"])
        cxr = load(out / split / f"cxr_{split}.pt")
        assert cxr.shape == (n, 3, 4, 4) and cxr.dtype == torch.float32
        np.testing.assert_array_equal(cxr.numpy(), expected_cxr(src["cxr"].numpy(), 4))
        ecg = load(out / split / f"ecg_{split}.pt")
        assert ecg.shape == (n, 1, 3, 12) and ecg.dtype == torch.float32
        assert torch.equal(ecg, src["ecg"].reshape(n, 1, 3, 12))
        assert torch.equal(load(out / split / f"labs_percentiles_{split}.pt"),
                           src["labs_percentiles"])
        miss = load(out / split / f"labs_missingness_{split}.pt")
        assert miss.dtype == torch.int64 and torch.equal(miss, src["labs_observed"].long())
        assert torch.equal(load(out / split / f"hadm_id_{split}.pt"), src["hadm_id"])
    for name, split in (("val_retrieval", "val"), ("test", "test")):
        ret = shard_columns(root / "retrieval", split)
        q = len(ret["query_hadm_id"])
        hadm = load(out / name / f"hadm_id_{name}.pt")
        label = load(out / name / f"label_{name}.pt")
        lab_id = load(out / name / f"label_hadm_id_{name}.pt")
        assert hadm.shape == label.shape == lab_id.shape == (10 * q,)
        assert label.dtype == lab_id.dtype == torch.int64
        assert torch.equal(hadm[:q], ret["query_hadm_id"]) and bool((label[:q] == 1).all())
        assert bool((label[q:] == 0).all()) and torch.equal(lab_id[:q], ret["query_hadm_id"])
        for i in range(q):        # negatives of query i: its candidates minus the true one
            neg = [int(c) for j, c in enumerate(ret["candidate_hadm_ids"][i])
                   if j != int(ret["label"][i])]
            assert hadm[q + 9 * i: q + 9 * (i + 1)].tolist() == neg
            assert bool((lab_id[q + 9 * i: q + 9 * (i + 1)] == ret["query_hadm_id"][i]).all())
        src = by_id[split + "_src"]
        rows = np.array([by_id[split][int(h)] for h in hadm])
        np.testing.assert_array_equal(load(out / name / f"cxr_{name}.pt").numpy(),
                                      expected_cxr(src["cxr"].numpy()[rows], 4))
        assert torch.equal(load(out / name / f"ecg_{name}.pt"),
                           src["ecg"][rows].reshape(-1, 1, 3, 12))
        assert torch.equal(load(out / name / f"labs_missingness_{name}.pt"),
                           src["labs_observed"][rows].long())
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["train size"] == 9 and meta["val retrieval size"] == 110
    assert meta["test size"] == 120 and meta["cxr_crop"] == 4
    assert not (out / "val" / "label_val.pt").exists()


def test_mimic_streamed_in_tiny_batches(mimic_root, tmp_path, monkeypatch):
    """Batches far smaller than a tensor (one CXR row each): the same tensors as whole-batch
    writing, readable by plain and memory-mapped torch.load, and valid zip files."""
    import zipfile
    root, _ = mimic_root()
    assert main(["export-reference", str(root), "--out", str(tmp_path / "big")]) == 0
    monkeypatch.setattr(reference, "BATCH_BYTES", 1)
    seen = []
    real = reference.TensorFile.write
    monkeypatch.setattr(reference.TensorFile, "write",
                        lambda self, start, x: (seen.append(len(x)), real(self, start, x)))
    assert main(["export-reference", str(root), "--out", str(tmp_path / "tiny")]) == 0
    assert max(seen) == 1 and len(seen) > 100
    for f in sorted((tmp_path / "big").rglob("*.pt")):
        g = tmp_path / "tiny" / f.relative_to(tmp_path / "big")
        assert torch.equal(load(f), load(g)) and torch.equal(load(f), torch.load(g, mmap=True))
        assert zipfile.ZipFile(g).testzip() is None


def test_mimic_reference_shapes(mimic_root, tmp_path):
    root, _ = mimic_root(side=320, t=5000, labs=50, sizes=(2, 10, 10))
    export_reference(root, tmp_path / "ref")
    rec = json.loads((tmp_path / "ref" / EXPORT_RECORD).read_text())["files"]
    assert rec["train/cxr_train.pt"]["shape"] == [2, 3, 320, 320]
    assert rec["train/ecg_train.pt"]["shape"] == [2, 1, 5000, 12]
    assert rec["train/labs_percentiles_train.pt"]["shape"] == [2, 50]
    assert rec["test/cxr_test.pt"]["shape"] == [100, 3, 320, 320]


def test_resume_skips_finished_files(m3_dir, tmp_path, monkeypatch):
    d, out = m3_dir(), tmp_path / "ref"
    export_reference(d, out)
    saved = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda t, p: (saved.append(p), real_save(t, p)))
    export_reference(d, out)
    assert saved == []
    (out / "val" / "audio_val.pt").unlink()
    export_reference(d, out)
    assert len(saved) == 1 and (out / "val" / "audio_val.pt").exists()


def test_mimic_errors(mimic_root, tmp_path, capsys):
    root, _ = mimic_root()
    import shutil
    shutil.move(str(root / "retrieval"), str(tmp_path / "ret_elsewhere"))
    assert main(["export-reference", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "retrieval dataset" in capsys.readouterr().err
    assert main(["export-reference", str(root), "--out", str(tmp_path / "o"),
                 "--retrieval", str(tmp_path / "ret_elsewhere")]) == 0
    assert main(["export-reference", str(tmp_path / "ret_elsewhere"), "--out",
                 str(tmp_path / "o2")]) == 2
    assert "exactly one M3" in capsys.readouterr().err


def test_retrieval_label_must_point_at_the_query(mimic_root, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    root, _ = mimic_root()
    shard = sorted((root / "retrieval").glob("test-*.parquet"))[0]
    t = pq.read_table(shard)
    bad = pa.array(((t.column("label").to_numpy() + 1) % 10).astype(np.int8))
    pq.write_table(t.set_column(t.schema.get_field_index("label"), "label", bad), shard)
    with pytest.raises(ValueError, match="not the query's hadm_id"):
        export_reference(root, tmp_path / "o")


def test_export_bytes_do_not_depend_on_the_process(mimic_root, tmp_path, monkeypatch):
    """Two runs in processes of different ids write the same bytes: torch.save names its zip
    archive after the file it writes, so the temp file carries the final name (not the pid)."""
    import os
    import zipfile
    root, _ = mimic_root()
    for pid, out in ((11111, "a"), (22222, "b")):
        monkeypatch.setattr(os, "getpid", lambda p=pid: p)
        export_reference(root, tmp_path / out)
    a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
               if p.is_file())
    assert len(a) == 26 and not [p for p in a if p.name.startswith(".")]   # no temp left
    for rel in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    names = zipfile.ZipFile(tmp_path / "a" / "train" / "cxr_train.pt").namelist()
    assert names[0] == "cxr_train/data.pkl"           # as torch.save(t, "cxr_train.pt")


def test_export_of_other_sources_leaves_no_foreign_file(m3_dir, mimic_root, tmp_path, caplog):
    """Issue 21: exporting other sources into the same --out removes the files of the first
    export; a file changed since it was written (same size) is exported again."""
    d, out = m3_dir(), tmp_path / "ref"
    export_reference(d, out)
    m3_files = json.loads((out / EXPORT_RECORD).read_text())["files"]
    f = out / "val" / "audio_val.pt"
    want = f.read_bytes()
    f.write_bytes(want[:-1] + bytes([want[-1] ^ 1]))              # damaged, same size
    export_reference(d, out)
    assert f.read_bytes() == want
    root, _ = mimic_root()
    with caplog.at_level("WARNING"):
        export_reference(root, out)
    assert "not reused: removing its" in caplog.text
    mimic_files = json.loads((out / EXPORT_RECORD).read_text())["files"]
    left = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert left == set(mimic_files) | {EXPORT_RECORD}
    assert set(m3_files) - set(mimic_files)


def test_killed_export_leaves_nothing_after_the_next_run(mimic_root, tmp_path):
    """An export killed (SIGKILL) while writing a tensor leaves its `.<file>.pt.<pid>.tmp/`
    folder; the next run takes the lock of OUT, sweeps it and completes (it used to stay,
    one with a ~1 GB partial file at full size)."""
    import os
    import subprocess
    import sys
    root, _ = mimic_root()
    out = tmp_path / "ref"
    code = ("import os, sys\nfrom symile_data.publish import reference, tensorfile\n"
            "real = tensorfile.TensorFile.write\n"
            "def die(self, start, x):\n    real(self, start, x)\n    os.kill(os.getpid(), 9)\n"
            "tensorfile.TensorFile.write = die\n"
            "reference.export_reference(sys.argv[1], sys.argv[2])\n")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(out)],
                            env={**os.environ, "PYTHONPATH": str(repo)})
    assert proc.wait() == -9
    left = [p for p in out.rglob(".*.tmp")]
    assert left and all(p.is_dir() and f".{proc.pid}.tmp" in p.name for p in left)
    record = export_reference(root, out)
    assert record["complete"] and not list(out.rglob("*.tmp")) and not list(out.rglob(".*lock"))


def test_m3_text_model_id_works_from_another_folder(m3_dir, tmp_path, monkeypatch):
    """A local text model recorded relative to the features stage's folder is written as an
    absolute path: `--text_model_id <it>` loads from the reference's experiments/ folder."""
    from transformers import AutoConfig
    d = m3_dir()
    m = json.loads((d / "manifest.json").read_text())
    m["extra"]["features"]["text"]["model"] = "text-model"     # relative, as the stage records
    (d / "manifest.json").write_text(json.dumps(m))
    monkeypatch.chdir(tmp_path)                                  # where the stage ran
    export_reference(d, tmp_path / "ref")
    meta = json.loads((tmp_path / "ref" / "metadata.json").read_text())
    experiments = tmp_path / "symile" / "experiments"
    experiments.mkdir(parents=True)
    monkeypatch.chdir(experiments)
    assert Path(meta["text_model_id"]).is_absolute()
    cfg = AutoConfig.from_pretrained(meta["text_model_id"])
    assert cfg.hidden_size == meta["text_enc_hidden_sz"] == 12
    assert meta["image_model_id"] == "openai/clip-vit-large-patch14"    # hub ids unchanged
