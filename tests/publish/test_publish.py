"""`symile-data publish`: card, plan, MIMIC refusal, offline/unreachable Hub, retry policy,
resumable upload and remote check -- all against fake Hub objects, never the network."""
import hashlib
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
            with open(op.path_or_fileobj, "rb") as f:
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


def test_dry_run_prints_plan_and_card_loads_offline(xor_root, capsys, no_network):
    assert main(["publish", str(xor_root), "--repo-id", "org/xor", "--dry-run",
                 "--max-files-per-commit", "5"]) == 0
    out = capsys.readouterr().out
    shards = sorted(xor_root.glob("*/*.parquet"))
    assert "commit(s) to dataset repo org/xor" in out and "dry run" in out
    for s in shards:
        rel = s.relative_to(xor_root).as_posix()
        assert f"{rel}  {s.stat().st_size}" in out
    n_files = 2 * len(shards) + 2 + 1          # shards + markers, 2 manifests, README
    assert f"plan: {n_files} file(s)" in out
    assert out.count("commit ") >= n_files // 5
    card = (xor_root / "README.md").read_text()
    assert "config_name: p0.2" in card and "saporta2024symile" in card
    assert "params hash: `h1`" in card and "seeds: params.seed=0" in card
    for config in ("p0.2", "p1.0"):
        ds = datasets.load_dataset(str(xor_root), config)
        ref = ParquetMapDataset(split_files(xor_root / config, "train")).read_all()
        assert ds["train"].num_rows == len(ref["key"])
        assert ds["train"]["key"] == ref["key"]
        np.testing.assert_array_equal(np.array(ds["train"]["a"]), ref["a"].numpy())


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


def test_upload_verify_and_resume(xor_root, monkeypatch, capsys, caplog, online):
    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None, **k: fake)
    caplog.set_level(logging.DEBUG)
    assert main(["publish", str(xor_root), "--repo-id", "org/x", "--private"]) == 0
    local = {p.relative_to(xor_root).as_posix(): p.read_bytes()
             for p in xor_root.rglob("*") if p.is_file()}
    assert fake.files == local                    # shards, markers, manifests, card
    assert fake.calls.count("create_commit") == 1
    cap = capsys.readouterr()
    assert "verified" in cap.out and SECRET not in cap.out + cap.err + caplog.text
    # resume: nothing to do; then one file lost remotely -> only it is uploaded again
    report = publish(xor_root, "org/x", api=fake, retry=fast(), echo=lambda s: None)
    assert report["uploaded"] == 0 and fake.calls.count("create_commit") == 1
    lost = sorted(fake.files)[0]
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
