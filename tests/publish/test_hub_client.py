"""`publish` through the real ``huggingface_hub`` client: HfApi's HTTP path (repo creation,
YAML check, pre-upload, LFS batch + PUT + verify, NDJSON commit, tree listing) against the
loopback Hub of fake_hub.py, with 429/5xx and dropped connections injected; the files that
arrive are compared byte for byte, and a publish cut off mid-upload resumes."""
import sys
from pathlib import Path

from huggingface_hub import constants as hf_constants
import pytest

from symile_data.cli import main
from symile_data.publish.card import build_card
from symile_data.publish.hub import PublishError, publish, retrying

sys.path.insert(0, str(Path(__file__).parent))
from fake_hub import FakeHub  # noqa: E402

SECRET = "hf_TESTtokenVALUE0123456789abcdef"
PER_COMMIT = 5                  # xor_root: 10 shards + 10 markers + 2 manifests + card = 23


@pytest.fixture
def hub(monkeypatch):
    """The fake Hub on 127.0.0.1; the suite's offline switch off for the client, HF_ENDPOINT
    pointing at the server, the token in HF_TOKEN."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with FakeHub(SECRET, page_size=7) as server:      # several pages of tree listing
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def fast():
    return retrying(attempts=4, wait_s=0.0)


def expected(root, repo_id):
    """path in repo -> bytes the Hub must hold after a publish of ``root``."""
    files = {p.relative_to(root).as_posix(): p.read_bytes()
             for p in sorted(root.rglob("*")) if p.is_file()}
    return {**files, "README.md": build_card(root, repo_id=repo_id).encode()}


def held(server, repo_id):
    return {p: d for p, d in server.repos[repo_id].files.items() if p != ".gitattributes"}


def run(root, repo_id="org/xor", per_commit=PER_COMMIT, **kw):
    return publish(root, repo_id, retry=fast(), max_files_per_commit=per_commit,
                   echo=lambda s: None, **kw)


def test_publish_with_faults_arrives_byte_for_byte(xor_root, hub):
    hub.inject("POST", r"^/api/repos/create$", 429, 503)
    hub.inject("GET", r"/tree/", None, 503, "drop")        # the second listing's 2nd page
    hub.inject("POST", r"/preupload/", "drop")
    hub.inject("PUT", r"^/lfs/", None, "drop")             # inside the client's upload threads
    hub.inject("POST", r"/commit/", 500, None, "drop")
    report = run(xor_root, private=True)
    assert report["problems"] == [] and report["uploaded"] == report["files"] == 23
    want = expected(xor_root, "org/xor")
    assert held(hub, "org/xor") == want                   # every byte, card included
    repo = hub.repos["org/xor"]
    parquet = sorted(p for p in want if p.endswith(".parquet"))
    assert sorted(repo.lfs) == parquet                     # shards went through LFS
    assert all(hub.objects[repo.lfs[p]] == want[p] for p in parquet)
    assert len(repo.commits) == 5 and repo.commits[-1][-3:] == [
        "README.md", "p0.2/manifest.json", "p1.0/manifest.json"]
    for method, pattern, outcomes in [
            ("POST", r"^/api/repos/create$", [429, 503, "ok"]),
            ("POST", r"/preupload/", ["drop", "ok"])]:
        assert [c[2] for c in hub.calls(method, pattern)][:len(outcomes)] == outcomes
    assert {c[2] for c in hub.calls("PUT", r"^/lfs/")} == {"ok", "drop"}
    # a second publish finds everything there: no commit, no upload
    n_commits, n_puts = len(hub.calls("POST", r"/commit/")), len(hub.calls("PUT", r"^/lfs/"))
    report = run(xor_root)
    assert report["uploaded"] == 0 and report["problems"] == []
    assert len(hub.calls("POST", r"/commit/")) == n_commits
    assert len(hub.calls("PUT", r"^/lfs/")) == n_puts


def test_resume_after_a_failure_mid_upload(xor_root, hub):
    hub.inject("POST", r"/commit/", None, None, 503, 503, 503, 503)   # commit 3 never lands
    with pytest.raises(PublishError, match="503.*re-run resumes"):
        run(xor_root)
    repo = hub.repos["org/xor"]
    landed = {p for c in repo.commits for p in c}
    assert len(repo.commits) == 2 and len(landed) == 2 * PER_COMMIT
    puts_before = len(hub.calls("PUT", r"^/lfs/"))
    report = run(xor_root)
    assert report["problems"] == [] and report["uploaded"] == 23 - len(landed)
    assert not landed & {p for c in repo.commits[2:] for p in c}   # only what was missing
    puts = [c[1] for c in hub.calls("PUT", r"^/lfs/")]
    assert len(puts) == len(set(puts))                 # no LFS object sent twice
    assert len(puts) > puts_before                     # ... and the rest were sent
    # the same content as one uninterrupted publish (whose card names its own repo)
    run(xor_root, "org/clean")
    assert held(hub, "org/xor") == expected(xor_root, "org/xor")
    assert held(hub, "org/clean") == expected(xor_root, "org/clean")
    assert held(hub, "org/xor").keys() == held(hub, "org/clean").keys()


def test_commit_applied_but_its_answer_lost(xor_root, hub):
    """The Hub applies a commit and the connection drops before the answer: the retry finds
    every file there (pre-upload oids) and makes no second commit (revision lookup)."""
    hub.inject("POST", r"/commit/", "drop-after")
    report = run(xor_root, per_commit=100)
    assert report["problems"] == [] and len(hub.repos["org/xor"].commits) == 1
    assert [c[2] for c in hub.calls("GET", r"/revision/")] == ["ok"]
    assert held(hub, "org/xor") == expected(xor_root, "org/xor")


def test_cli_publish_to_the_endpoint_token_never_shown(xor_root, hub, capsys, caplog):
    caplog.set_level("DEBUG")
    assert main(["publish", str(xor_root), "--repo-id", "org/xor"]) == 0
    cap = capsys.readouterr()
    assert "verified 23 file(s) on org/xor: ok" in cap.out
    assert held(hub, "org/xor") == expected(xor_root, "org/xor")
    for text in (cap.out, cap.err, caplog.text):
        assert SECRET not in text


def test_other_4xx_is_not_retried(xor_root, hub):
    hub.inject("POST", r"/commit/", 403)
    with pytest.raises(PublishError, match="refused.*403"):
        run(xor_root)
    assert [c[2] for c in hub.calls("POST", r"/commit/")] == [403]
