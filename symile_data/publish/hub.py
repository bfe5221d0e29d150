"""Upload dataset directories to the Hugging Face Hub, resumably, then verify the remote copy.

Order of work: refuse MIMIC-derived data by content (symile_data.publish.guard: flag, schema
name, columns, recorded sources; before anything else, before any network call), render the
card in memory (README.md of the repo; nothing is written into the dataset folder, which DVC
tracks), plan the files (shards, markers, manifests, card) into commits of at most 100 files,
skip files already on the Hub with the same content (so an interrupted upload resumes), upload
the rest commit by commit (manifests and the card in the last commit, so a remote config only
looks complete once its shards are there), then compare the remote file list and sizes with the
manifests. ``--dry-run`` writes nothing anywhere: it prints the files, commits and card.

HTTP 429 and 5xx, and a connection the Hub dropped mid-exchange, are retried with exponential
backoff (tenacity), also when the client wraps them (an LFS upload error arrives as a
RuntimeError whose cause is the HTTP error); other HTTP errors, a Hub that cannot be reached at
all and offline mode fail at once with a clear message. The client talks to ``HF_ENDPOINT``
(read when publish runs; default https://huggingface.co). The token comes from HF_TOKEN or the
``huggingface_hub`` login; it is never printed or logged, and is masked in any error text.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Callable

import tenacity

from symile_data.hashing import sha256_file
from symile_data.io.manifest import MANIFEST, marker_path, read_manifest
from symile_data.publish.card import build_card
from symile_data.publish.guard import PublishError, dataset_dirs, refuse_mimic_derived

__all__ = ["PublishError", "UploadFile", "dataset_dirs", "plan_commits", "plan_files",
           "publish", "refuse_mimic_derived", "retrying"]

log = logging.getLogger(__name__)

MAX_FILES_PER_COMMIT = 100
REPO_TYPE = "dataset"
LFS_SUFFIXES = (".parquet", ".tar", ".pt")   # large binaries the Hub stores in LFS/Xet


@dataclasses.dataclass(frozen=True)
class UploadFile:
    path_in_repo: str       # posix path relative to the published root
    local: Path | None      # the file on disk; None for content made in memory (the card)
    size: int               # bytes
    data: bytes | None = None

    def content(self) -> bytes:
        return self.data if self.data is not None else self.local.read_bytes()  # type: ignore


# ---------------------------------------------------------------- planning
def plan_files(root: Path, dirs: list[Path], card: str) -> list[UploadFile]:
    """Shards and markers first, then manifests, then the card as README.md (last)."""
    data, manifests = [], []
    for d in dirs:
        m = read_manifest(d)
        for split, info in m["splits"].items():
            for entry in info["shards"]:
                shard = d / entry["file"]
                if not shard.exists() or shard.stat().st_size != entry["bytes"]:
                    raise PublishError(f"{shard}: missing or not the size in {d / MANIFEST} "
                                       f"(run `symile-data validate {d}`)")
                data.append(shard)
                if marker_path(shard).exists():
                    data.append(marker_path(shard))
        manifests.append(d / MANIFEST)
    files = sorted(data, key=lambda p: p.relative_to(root).as_posix()) + manifests
    card_bytes = card.encode("utf-8")
    return ([UploadFile(p.relative_to(root).as_posix(), p, p.stat().st_size) for p in files]
            + [UploadFile("README.md", None, len(card_bytes), card_bytes)])


def plan_commits(files: list[UploadFile], max_files: int = MAX_FILES_PER_COMMIT
                 ) -> list[list[UploadFile]]:
    """Consecutive batches of at most ``max_files``; the last batch holds every manifest and the
    card (so they land after all data)."""
    if max_files <= 0:
        raise ValueError(f"max_files must be > 0, got {max_files}")
    tail = [f for f in files if Path(f.path_in_repo).name in (MANIFEST, "README.md")]
    if len(tail) > max_files:
        raise PublishError(f"{len(tail)} manifests + card exceed {max_files} files per commit")
    head = [f for f in files if f not in tail]
    batches = [head[i:i + max_files] for i in range(0, len(head), max_files)]
    if batches and len(batches[-1]) + len(tail) <= max_files:
        batches[-1] = batches[-1] + tail
    else:
        batches.append(tail)
    return batches


def format_plan(repo_id: str, commits: list[list[UploadFile]], skipped: int = 0) -> str:
    total = sum(f.size for c in commits for f in c)
    lines = [f"plan: {sum(len(c) for c in commits)} file(s), {total} bytes, {len(commits)} "
             f"commit(s) to dataset repo {repo_id}" + (f" ({skipped} already there)" if skipped
                                                       else "")]
    for i, c in enumerate(commits):
        lines.append(f"commit {i + 1}/{len(commits)}: {len(c)} file(s), "
                     f"{sum(f.size for f in c)} bytes")
        lines += [f"  {f.path_in_repo}  {f.size}" for f in c]
    return "\n".join(lines)


# ---------------------------------------------------------------- retries and errors
def causes(exc: BaseException | None, limit: int = 16):
    """``exc`` and the exceptions it was raised from (``__cause__`` / ``__context__``), at most
    ``limit`` of them: the client wraps transport and HTTP errors of its upload threads."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < limit:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def http_status(exc: BaseException) -> int | None:
    for e in causes(exc):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
    return None


def dropped_connection(exc: BaseException) -> bool:
    """The Hub hung up in the middle of an exchange (no answer, reset): worth another try,
    unlike a Hub that cannot be reached at all (``httpx.ConnectError``)."""
    import httpx
    return any(isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))
               for e in causes(exc))


def is_retryable(exc: BaseException) -> bool:
    """HTTP 429 (rate limit) and 5xx (server), or a dropped connection."""
    status = http_status(exc)
    if status is not None:
        return status == 429 or 500 <= status < 600
    return dropped_connection(exc)


def retrying(attempts: int = 6, wait_s: float = 2.0, max_wait_s: float = 60.0
             ) -> tenacity.Retrying:
    def _log(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception()
        what = (f"HTTP {http_status(exc)}" if http_status(exc) is not None
                else f"a dropped connection ({type(list(causes(exc))[-1]).__name__})")
        log.warning("Hub: %s; retry %d/%d", what, state.attempt_number, attempts - 1)
    return tenacity.Retrying(retry=tenacity.retry_if_exception(is_retryable),
                             wait=tenacity.wait_exponential(multiplier=wait_s, max=max_wait_s),
                             stop=tenacity.stop_after_attempt(attempts), reraise=True,
                             before_sleep=_log)


def is_connection_error(exc: BaseException) -> bool:
    from huggingface_hub.errors import OfflineModeIsEnabled
    kinds: tuple[type, ...] = (OfflineModeIsEnabled, ConnectionError, TimeoutError)
    try:
        import httpx
        kinds += (httpx.TransportError,)
    except ImportError:  # pragma: no cover -- huggingface_hub >= 1.0 depends on httpx
        pass
    try:
        import requests
        kinds += (requests.ConnectionError,)
    except ImportError:  # pragma: no cover
        pass
    return any(isinstance(e, kinds) for e in causes(exc))


def hub_offline() -> bool:
    """Offline as the client sees it (``constants.HF_HUB_OFFLINE``, read when huggingface_hub
    was imported, also from TRANSFORMERS_OFFLINE) or as the environment says now."""
    from huggingface_hub import constants
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.is_offline_mode()) or env in {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` as set when publish runs (the client reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None


def redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def git_blob_sha1(data: bytes) -> str:
    """The git object id of some content (what the Hub reports as blob_id for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def same_content(remote: Any, f: UploadFile) -> bool:
    if getattr(remote, "size", None) != f.size:
        return False
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        local_sha = (hashlib.sha256(f.data).hexdigest() if f.data is not None
                     else sha256_file(f.local))
        return getattr(lfs, "sha256", None) == local_sha
    return getattr(remote, "blob_id", None) == git_blob_sha1(f.content())


# ---------------------------------------------------------------- the Hub calls
def get_token() -> str | None:
    """HF_TOKEN from the environment, else the ``huggingface_hub`` login; never printed."""
    from huggingface_hub import get_token as hf_get_token
    return hf_get_token()


def remote_files(api: Any, repo_id: str, call: Callable) -> dict[str, Any]:
    """path -> RepoFile of every file in the dataset repo (folders left out)."""
    entries = call(lambda: list(api.list_repo_tree(repo_id, recursive=True,
                                                   repo_type=REPO_TYPE)))
    return {e.path: e for e in entries if getattr(e, "size", None) is not None
            and hasattr(e, "blob_id")}


def verify_remote(remote: dict[str, Any], files: list[UploadFile], root: Path,
                  dirs: list[Path]) -> list[str]:
    """Problems: planned files missing or of another size remotely; every manifest shard is
    checked against the manifest's byte count."""
    problems = []
    for f in files:
        r = remote.get(f.path_in_repo)
        if r is None:
            problems.append(f"{f.path_in_repo}: not on the Hub")
        elif r.size != f.size:
            problems.append(f"{f.path_in_repo}: {r.size} bytes on the Hub, {f.size} locally")
    for d in dirs:
        prefix = d.relative_to(root).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        for info in read_manifest(d)["splits"].values():
            for entry in info["shards"]:
                r = remote.get(prefix + entry["file"])
                if r is not None and r.size != entry["bytes"]:
                    problems.append(f"{prefix}{entry['file']}: {r.size} bytes on the Hub, "
                                    f"manifest says {entry['bytes']}")
    return problems


def publish(root: str | Path, repo_id: str, *, private: bool = False, dry_run: bool = False,
            api: Any = None, max_files_per_commit: int = MAX_FILES_PER_COMMIT,
            retry: tenacity.Retrying | None = None, license: str = "other",
            echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Publish every dataset under ``root`` as one dataset repo; returns a report dict.

    ``api`` is an ``HfApi``-like object (tests pass a fake); by default one is built with the
    token from the environment or the login. Raises PublishError on refusal or failure."""
    root = Path(root)
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PublishError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    dirs = refuse_mimic_derived(root)            # before the card, before any network call
    card = build_card(root, repo_id=repo_id, license=license)     # in memory only
    files = plan_files(root, dirs, card)
    if dry_run:
        echo(format_plan(repo_id, plan_commits(files, max_files_per_commit)))
        echo(f"card (README.md, {files[-1].size} bytes):\n{card}")
        echo("dry run: nothing written, nothing uploaded")
        return {"repo_id": repo_id, "dry_run": True, "files": len(files),
                "bytes": sum(f.size for f in files), "uploaded": 0, "problems": []}
    if hub_offline():
        raise PublishError("the Hugging Face Hub is offline here (HF_HUB_OFFLINE is set): "
                           "unset it to publish, or use --dry-run to see the plan")
    token = None
    if api is None:
        token = get_token()
        if not token:
            raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login` "
                               "(the token is read from there only, never from arguments)")
        from huggingface_hub import HfApi
        api = HfApi(token=token, endpoint=hub_endpoint())
    retry = retry or retrying()
    try:
        return _upload(api, root, repo_id, dirs, files, private, max_files_per_commit,
                       retry, echo)
    except PublishError:
        raise
    except Exception as e:  # noqa: BLE001 -- mapped to a clear, token-free message
        what = ("cannot reach the Hugging Face Hub" if is_connection_error(e)
                else "the Hugging Face Hub refused the upload")
        raise PublishError(redact(f"{what} ({type(e).__name__}: {e}); files already uploaded "
                                  f"stay there and a re-run resumes", token)) from None


def _upload(api: Any, root: Path, repo_id: str, dirs: list[Path], files: list[UploadFile],
            private: bool, max_files: int, retry: tenacity.Retrying,
            echo: Callable[[str], None]) -> dict[str, Any]:
    from huggingface_hub import CommitOperationAdd
    call = lambda fn: retry(fn)  # noqa: E731
    call(lambda: api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True))
    remote = remote_files(api, repo_id, call)
    todo = [f for f in files if not (f.path_in_repo in remote
                                      and same_content(remote[f.path_in_repo], f))]
    commits = plan_commits(todo, max_files) if todo else []
    echo(format_plan(repo_id, commits, skipped=len(files) - len(todo)))
    for i, batch in enumerate(commits):
        # operations are rebuilt on every attempt: a failed commit may have consumed them
        call(lambda: api.create_commit(
            repo_id, [CommitOperationAdd(path_in_repo=f.path_in_repo,
                                         path_or_fileobj=f.data if f.data is not None
                                         else str(f.local)) for f in batch],
            repo_type=REPO_TYPE,
            commit_message=f"symile-data publish: commit {i + 1}/{len(commits)} "
                           f"({len(batch)} files)"))
        echo(f"committed {i + 1}/{len(commits)} ({len(batch)} files)")
    problems = verify_remote(remote_files(api, repo_id, call), files, root, dirs)
    for p in problems:
        echo(f"verify: {p}")
    echo(f"verified {len(files)} file(s) on {repo_id}: "
         + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return {"repo_id": repo_id, "dry_run": False, "files": len(files),
            "bytes": sum(f.size for f in files), "uploaded": len(todo), "problems": problems}
