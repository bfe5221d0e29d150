"""`symile-data publish`: card, plan, MIMIC refusal, offline/unreachable Hub, retry policy,
resumable upload and remote check -- all against fake Hub objects, never the network."""
import hashlib
import json
import logging

import datasets
import httpx
import huggingface_hub
import numpy as np
import pytest
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import RepoFile

from symile_data.cli import main
from symile_data.io.reader import ParquetMapDataset, split_files
from symile_data.publish import hub
from symile_data.publish.hub import PublishError, UploadFile, plan_commits, publish, retrying

SECRET = "hf_TESTtokenVALUE0123456789abcdef"


class FakeHub:
    """In-memory dataset repo with the HfApi methods publish uses; counts every call."""

    def __init__(self, token=None, fail=None, truncate=None, **_):
        self.token, self.files, self.calls = token, {}, []
        self.fail = list(fail or [])           # exceptions raised by the next calls, in order
        self.truncate = truncate               # path whose upload loses its last byte

    def _maybe_fail(self, name):
        self.calls.append(name)
        if self.fail:
            raise self.fail.pop(0)

    def create_repo(self, repo_id, repo_type=None, private=None, exist_ok=False):
        self._maybe_fail("create_repo")

    def list_repo_tree(self, repo_id, recursive=False, repo_type=None):
        self._maybe_fail("list_repo_tree")
        out = []
        for path, data in sorted(self.files.items()):
            lfs = ({"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 1}
                   if path.endswith(".parquet") else None)
            oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            out.append(RepoFile(path=path, size=len(data), oid=oid, lfs=lfs))
        return out

    def create_commit(self, repo_id, operations, repo_type=None, commit_message=""):
        self._maybe_fail("create_commit")
        assert len(operations) <= 100
        for op in operations:
            with op.as_file() as f:             # a path or in-memory bytes (the card)
                data = f.read()
            self.files[op.path_in_repo] = data[:-1] if op.path_in_repo == self.truncate else data


def http_error(status):
    req = httpx.Request("POST", "https://huggingface.co/api/datasets/org/x/commit/main")
    return HfHubHTTPError(f"{status} error", response=httpx.Response(status, request=req))


@pytest.fixture
def online(monkeypatch):
    """Pretend the Hub is reachable: offline switches off, a token in the environment."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", SECRET)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to build a real HfApi fails the test."""
    def boom(*a, **k):
        raise AssertionError("a real HfApi was built")
    monkeypatch.setattr(huggingface_hub, "HfApi", boom)


def fast():
    return retrying(attempts=4, wait_s=0.0)


def snapshot(root):
    """relative path -> sha256 of every file under ``root`` (what must not change)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_dry_run_prints_plan_and_card_and_writes_nothing(xor_root, capsys, no_network):
    before = snapshot(xor_root)
    assert main(["publish", str(xor_root), "--repo-id", "org/xor", "--dry-run",
                 "--max-files-per-commit", "5"]) == 0
    out = capsys.readouterr().out
    assert snapshot(xor_root) == before                 # nothing written, README.md included
    assert not (xor_root / "README.md").exists()
    shards = sorted(xor_root.glob("*/*.parquet"))
    assert "commit(s) to dataset repo org/xor" in out and "nothing written" in out
    for s in shards:
        rel = s.relative_to(xor_root).as_posix()
        assert f"{rel}  {s.stat().st_size}" in out
    n_files = 2 * len(shards) + 2 + 1          # shards + markers, 2 manifests, README
    assert f"plan: {n_files} file(s)" in out
    assert out.count("commit ") >= n_files // 5
    card = out.split("card (README.md, ", 1)[1]           # the card it would send, printed
    assert "config_name: p0.2" in card and "saporta2024symile" in card
    assert "params hash: `h1`" in card and "seeds: params.seed=0" in card


def test_plan_commits_at_most_100_files_manifests_last(tmp_path):
    files = [UploadFile(f"c/train-{i:05d}.parquet", tmp_path / f"s{i}", 1) for i in range(250)]
    files += [UploadFile("c/manifest.json", tmp_path / "manifest.json", 1),
              UploadFile("README.md", tmp_path / "README.md", 1)]
    commits = plan_commits(files)
    assert [len(c) for c in commits] == [100, 100, 52]
    assert [f.path_in_repo for f in commits[-1][-2:]] == ["c/manifest.json", "README.md"]
    assert sum(len(c) for c in commits) == len(files)


def test_refuses_mimic_derived_before_any_network_call(xor_root, mimic_root, monkeypatch,
                                                       capsys, online):
    root, _ = mimic_root()
    (xor_root / "deep").mkdir()
    root.rename(xor_root / "deep" / "mimic")          # nested two levels below DIR
    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **k: fake)
    assert main(["publish", str(xor_root), "--repo-id", "org/x"]) == 2
    err = capsys.readouterr().err
    assert "MIMIC-derived" in err and "PhysioNet" in err and "symile-mimic-tiny" in err
    assert fake.calls == [] and not (xor_root / "README.md").exists()
    assert main(["publish", str(xor_root), "--repo-id", "org/x", "--dry-run"]) == 2


def _edit_manifest(d, **changes):
    path = d / "manifest.json"
    m = json.loads(path.read_text())
    m.update(changes)
    path.write_text(json.dumps(m))


@pytest.fixture
def recorder(monkeypatch, online):
    """A fake Hub that records every call, and every attempt to build a client."""
    fake, built = FakeHub(), []

    def make(**kwargs):
        built.append(kwargs)
        return fake
    monkeypatch.setattr(huggingface_hub, "HfApi", make)
    return fake, built


def _refused(args, capsys, root, why):
    before = snapshot(root)
    for extra in ([], ["--dry-run"]):
        assert main(["publish", *map(str, args), "--repo-id", "org/x", *extra]) == 2
        err = capsys.readouterr().err
        assert "MIMIC-derived" in err and "Nothing was uploaded" in err and why in err, err
    assert snapshot(root) == before


SCRUB_ALL = {"flags": {"mimic_derived": False}, "name": "innocent", "schema": None,
             "schema_arrow_b64": None, "extra": {}}


@pytest.mark.parametrize("changes,why", [
    ({"flags": {"mimic_derived": False}}, "MIMIC column(s) ['"),      # flag removed by hand
    ({"flags": {}}, "mention ['mimic']"),
    (SCRUB_ALL, "Parquet has MIMIC column(s) ['"),                    # only the shards say it
])
def test_mimic_refused_by_content_whatever_the_manifest_says(mimic_root, recorder, capsys,
                                                             changes, why):
    root, _ = mimic_root()
    for d in (root / "samples", root / "retrieval"):
        _edit_manifest(d, **changes)
    for target in (root, root / "samples", root / "retrieval"):
        _refused([target], capsys, root, why)
    fake, built = recorder
    assert fake.calls == [] and built == []              # no client, no call: nothing sent


def test_mimic_refused_by_recorded_sources(xor_root, recorder, capsys):
    _edit_manifest(xor_root / "p0.2", extra={"sources": {
        "labevents": "/data/physionet.org/files/mimiciv/2.2/hosp/labevents.csv.gz"}})
    _refused([xor_root], capsys, xor_root, "mention ['mimic', 'physionet']")
    assert recorder[0].calls == [] and recorder[1] == []


def test_wds_export_of_unflagged_mimic_is_refused(mimic_root, tmp_path, recorder, capsys):
    root, _ = mimic_root()
    _edit_manifest(root / "samples", **SCRUB_ALL)
    # the exporter refuses to carry MIMIC content without its label (one line, exit 2) ...
    assert main(["export-wds", str(root / "samples"), "--out", str(tmp_path / "wds"),
                 "--samples-per-shard", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "refusing to export 'innocent'" in err and "MIMIC column" in err
    assert not (tmp_path / "wds").exists()
    # ... and tars made without it (by hand) are still refused by publish, by their members
    from symile_data.io.reader import split_files
    from symile_data.io.wds import write_wds_dataset
    from symile_data.publish.wds_export import ParquetSampleSource
    write_wds_dataset(tmp_path / "wds", {s: ParquetSampleSource(split_files(root / "samples", s),
                                                                s)
                                         for s in ("train", "val")},
                      name="innocent", params_hash="x", samples_per_shard=4)
    _refused([tmp_path / "wds"], capsys, tmp_path / "wds", "tar has MIMIC column(s)")
    assert recorder[0].calls == [] and recorder[1] == []


def test_m3_and_xor_are_not_mistaken_for_mimic(m3_dir, xor_root):
    from symile_data.publish.guard import MIMIC_COLUMNS, mimic_evidence
    assert {"hadm_id", "subject_id", "ecg", "cxr", "labs_percentiles",
            "candidate_hadm_ids"} <= MIMIC_COLUMNS
    assert not MIMIC_COLUMNS & {"key", "split", "label", "image_key", "text", "a"}
    assert mimic_evidence(m3_dir()) == [] and mimic_evidence(xor_root / "p0.2") == []


def test_offline_hub_is_a_clear_error(xor_root, monkeypatch, capsys, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["publish", str(xor_root), "--repo-id", "org/x"]) == 2
    assert "offline" in capsys.readouterr().err


def test_unreachable_hub_clear_error_and_token_never_shown(xor_root, monkeypatch, capsys,
                                                           caplog, online):
    seen = {}

    class Unreachable(FakeHub):
        def __init__(self, token=None, **k):
            seen["token"] = token
            super().__init__(fail=[httpx.ConnectError(f"no route (token {token})")] * 10)

    monkeypatch.setattr(huggingface_hub, "HfApi", Unreachable)
    caplog.set_level(logging.DEBUG)
    assert main(["publish", str(xor_root), "--repo-id", "org/x"]) == 2
    cap = capsys.readouterr()
    assert "cannot reach the Hugging Face Hub" in cap.err
    assert seen["token"] == SECRET                      # read from HF_TOKEN ...
    for text in (cap.out, cap.err, caplog.text):        # ... and never shown
        assert SECRET not in text


def test_no_token_is_a_clear_error(xor_root, monkeypatch, capsys, online, no_network):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(hub, "get_token", lambda: None)
    assert main(["publish", str(xor_root), "--repo-id", "org/x"]) == 2
    assert "HF_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_429_and_5xx(xor_root, status, online):
    fake = FakeHub(fail=[http_error(status), http_error(status)])
    report = publish(xor_root, "org/x", api=fake, retry=fast(), echo=lambda s: None)
    assert fake.calls[:3] == ["create_repo"] * 3 and not report["problems"]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_does_not_retry_other_4xx(xor_root, status, online):
    fake = FakeHub(fail=[http_error(status)])
    with pytest.raises(PublishError, match="refused"):
        publish(xor_root, "org/x", api=fake, retry=fast(), echo=lambda s: None)
    assert fake.calls == ["create_repo"]


def test_retries_give_up_after_the_limit(xor_root, online):
    fake = FakeHub(fail=[http_error(503)] * 10)
    with pytest.raises(PublishError, match="503"):
        publish(xor_root, "org/x", api=fake, retry=fast(), echo=lambda s: None)
    assert fake.calls == ["create_repo"] * 4


def test_upload_verify_and_resume(xor_root, tmp_path, monkeypatch, capsys, caplog, online):
    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None, **k: fake)
    caplog.set_level(logging.DEBUG)
    before = snapshot(xor_root)
    assert main(["publish", str(xor_root), "--repo-id", "org/x", "--private"]) == 0
    assert snapshot(xor_root) == before           # the card went from memory: folder untouched
    local = {p.relative_to(xor_root).as_posix(): p.read_bytes()
             for p in xor_root.rglob("*") if p.is_file()}
    card = fake.files.pop("README.md").decode()
    assert fake.files == local                    # shards, markers, manifests (+ the card)
    assert "config_name: p0.2" in card and "saporta2024symile" in card
    # what the Hub now holds loads with `datasets`, configs from the card
    hub_copy = tmp_path / "hub_copy"
    for path, data in {**fake.files, "README.md": card.encode()}.items():
        (hub_copy / path).parent.mkdir(parents=True, exist_ok=True)
        (hub_copy / path).write_bytes(data)
    for config in ("p0.2", "p1.0"):
        ds = datasets.load_dataset(str(hub_copy), config, cache_dir=str(tmp_path / "cache"))
        ref = ParquetMapDataset(split_files(xor_root / config, "train")).read_all()
        assert ds["train"]["key"] == ref["key"]
        np.testing.assert_array_equal(np.array(ds["train"]["a"]), ref["a"].numpy())
    fake.files["README.md"] = card.encode()
    assert fake.calls.count("create_commit") == 1
    cap = capsys.readouterr()
    assert "verified" in cap.out and SECRET not in cap.out + cap.err + caplog.text
    # resume: nothing to do; then one file lost remotely -> only it is uploaded again
    report = publish(xor_root, "org/x", api=fake, retry=fast(), echo=lambda s: None)
    assert report["uploaded"] == 0 and fake.calls.count("create_commit") == 1
    lost = sorted(local)[0]
    del fake.files[lost]
    report = publish(xor_root, "org/x", api=fake, retry=fast(), echo=lambda s: None)
    assert report["uploaded"] == 1 and fake.files[lost] == local[lost]


def test_remote_size_mismatch_is_reported(xor_root, monkeypatch, capsys, online):
    shard = sorted(xor_root.glob("p0.2/train-*.parquet"))[0].relative_to(xor_root).as_posix()
    fake = FakeHub(truncate=shard)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None, **k: fake)
    assert main(["publish", str(xor_root), "--repo-id", "org/x"]) == 1
    out = capsys.readouterr().out
    assert f"{shard}: " in out and "manifest says" in out


def test_bad_repo_id_and_missing_dir(tmp_path, xor_root, capsys):
    assert main(["publish", str(xor_root), "--repo-id", "noslash", "--dry-run"]) == 2
    assert "ORG/NAME" in capsys.readouterr().err
    assert main(["publish", str(tmp_path / "nope"), "--repo-id", "o/n", "--dry-run"]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_docs_publish_match_the_code_and_the_default_build():
    """docs/publish.md: publish writes no card into DIR (as tested above), example sizes are
    the default build's, example outputs go under the gitignored out/."""
    import re
    from pathlib import Path

    import yaml
    repo = Path(__file__).parents[2]
    doc = (repo / "docs" / "publish.md").read_text()
    assert "the card is written into `DIR`" not in doc
    assert "`publish` writes nothing into `DIR`" in doc
    train, val, test = yaml.safe_load((repo / "params.yaml").read_text())[
        "m3_samples"]["custom_sizes"]["demo"]
    assert f"train {train}, validation {val}, test {test}" in doc
    outs = re.findall(r"--out (\S+)", doc)
    assert outs and all(o in ("OUT", "OUT`") or o.startswith("out/") for o in outs), outs
    assert "/out/" in (repo / ".gitignore").read_text().split()
