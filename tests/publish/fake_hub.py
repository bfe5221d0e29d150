"""A loopback stand-in for the Hugging Face Hub's HTTP API, for the real ``huggingface_hub``
client (tests/publish/test_hub_client.py).

Answers exactly the endpoints ``HfApi.create_repo`` / ``list_repo_tree`` / ``create_commit``
(huggingface_hub 1.x, basic LFS transfer) call, on 127.0.0.1 only, one thread per request:

  POST /api/repos/create                                  {name, organization, type}: {url}
  POST /api/validate-yaml                                 README front matter must parse
  GET  /api/datasets/{repo}/revision/{rev}                {id, sha, siblings}
  GET  /api/datasets/{repo}/tree/{rev}?recursive=...      pages of files/folders (Link header)
  POST /api/datasets/{repo}/preupload/{rev}               uploadMode lfs|regular, remote oid
  POST /datasets/{repo}.git/info/lfs/objects/batch        upload + verify hrefs ("basic"),
                                                          no actions for stored objects
  PUT  /lfs/{oid}                                         the bytes (sha256 must match)
  POST /lfs-verify                                        {oid, size} stored?
  POST /api/datasets/{repo}/commit/{rev}                  NDJSON: header, file, lfsFile

Faults: ``hub.inject(METHOD, path_regex, *outcomes)`` makes the next matching requests answer
each outcome in turn: ``None`` (answer normally), an HTTP status (429, 500, 503, ...),
``"drop"`` (read the request, close the connection without answering) or ``"drop-after"`` (do
the work, then close without answering). Every request is logged as
(method, path, status or outcome).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

LFS_SUFFIXES = (".parquet", ".tar", ".pt", ".bin", ".npy")   # as the Hub's default .gitattributes
MAX_BODY = 64 << 20                                           # bytes one test request may send
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self):
        self.files: dict[str, bytes] = {".gitattributes": GITATTRIBUTES}
        self.lfs: dict[str, str] = {}        # path -> sha256 of files committed as LFS
        self.commits: list[list[str]] = []   # paths of each commit, in order

    @property
    def sha(self) -> str:
        return hashlib.sha1(json.dumps(self.commits).encode()).hexdigest()

    def entry(self, path: str) -> dict:
        data = self.files[path]
        out = {"type": "file", "path": path, "size": len(data), "oid": git_oid(data)}
        if path in self.lfs:
            out["lfs"] = {"oid": self.lfs[path], "size": len(data), "pointerSize": 134}
        return out


class FakeHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, token: str, page_size: int = 1000):
        super().__init__(("127.0.0.1", 0), Handler)
        self.token, self.page_size = token, page_size
        self.repos: dict[str, Repo] = {}
        self.objects: dict[str, bytes] = {}  # LFS store: sha256 -> bytes
        self.log: list[tuple[str, str, object]] = []
        self.faults: list[list] = []         # [method, compiled regex, outcomes left]
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def inject(self, method: str, pattern: str, *outcomes) -> None:
        self.faults.append([method, re.compile(pattern), list(outcomes)])

    def fault(self, method: str, path: str):
        with self.lock:
            for m, rx, left in self.faults:
                if m == method and left and rx.search(path):
                    return left.pop(0)     # None: this one passes
        return None

    def calls(self, method: str, pattern: str) -> list[tuple[str, str, object]]:
        return [c for c in self.log if c[0] == method and re.search(pattern, c[1])]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


REPO = r"(?P<repo>[^/]+/[^/]+?)"
ROUTES = [  # (method, regex on the path, handler name)
    ("POST", r"^/api/repos/create$", "create"),
    ("POST", r"^/api/validate-yaml$", "validate_yaml"),
    ("GET", rf"^/api/datasets/{REPO}/revision/(?P<rev>[^/]+)$", "revision"),
    ("GET", rf"^/api/datasets/{REPO}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?$", "tree"),
    ("POST", rf"^/api/datasets/{REPO}/preupload/(?P<rev>[^/]+)$", "preupload"),
    ("POST", rf"^/datasets/{REPO}\.git/info/lfs/objects/batch$", "lfs_batch"),
    ("PUT", r"^/lfs/(?P<oid>[0-9a-f]{64})$", "lfs_put"),
    ("POST", r"^/lfs-verify$", "lfs_verify"),
    ("POST", rf"^/api/datasets/{REPO}/commit/(?P<rev>[^/]+)$", "commit"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeHub

    def log_message(self, *args):           # quiet: the server keeps its own log
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while len(out) <= MAX_BODY:     # bounded: one chunk per turn
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return out
                out += chunk
            raise ValueError("request body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(n)

    def _send(self, status: int, obj=None, headers: dict | None = None) -> None:
        body = json.dumps(obj if obj is not None else {"error": f"HTTP {status}"}).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                     "Connection": "close", **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._body()
        outcome = self.server.fault(method, url.path)
        self.server.log.append((method, url.path, outcome or "ok"))
        if outcome == "drop":
            self.close_connection = True
            return
        if isinstance(outcome, int):
            return self._send(outcome)
        for m, rx, name in ROUTES:
            match = re.match(rx, url.path)
            if m == method and match:
                break
        else:
            return self._send(404, {"error": f"fake hub: no route {method} {url.path}"})
        if not url.path.startswith("/lfs/") and (
                self.headers.get("Authorization") != f"Bearer {self.server.token}"):
            return self._send(401, {"error": "Invalid credentials"})
        with self.server.lock:
            status, obj, headers = getattr(self, name)(body, parse_qs(url.query),
                                                       **match.groupdict())
        if outcome == "drop-after":
            self.close_connection = True
            return
        self._send(status, obj, headers)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    # ------------------------------------------------------------------ endpoints
    def _repo(self, repo: str) -> Repo | None:
        return self.server.repos.get(repo)

    def create(self, body, query):
        req = json.loads(body)
        repo_id = f"{req['organization']}/{req['name']}"
        url = f"{self.server.url}/datasets/{repo_id}"
        if req.get("type") != "dataset":
            return 400, {"error": f"expected a dataset repo, got {req.get('type')}"}, None
        if repo_id in self.server.repos:
            return 409, {"error": "You already created this dataset repo", "url": url}, None
        self.server.repos[repo_id] = Repo()
        return 200, {"url": url}, None

    def validate_yaml(self, body, query):
        content = json.loads(body)["content"]
        try:
            yaml.safe_load(content.split("---\n")[1])
        except (IndexError, yaml.YAMLError) as e:
            return 400, {"errors": [{"message": str(e)}]}, None
        return 200, {"errors": [], "warnings": []}, None

    def revision(self, body, query, repo, rev):
        r = self._repo(repo)
        if r is None:
            return 404, None, {"X-Error-Code": "RepoNotFound"}
        return 200, {"id": repo, "sha": r.sha,
                     "siblings": [{"rfilename": p} for p in sorted(r.files)]}, None

    def tree(self, body, query, repo, rev, sub=None):
        r = self._repo(repo)
        if r is None:
            return 404, None, {"X-Error-Code": "RepoNotFound"}
        entries, folders = [], set()
        recursive = query.get("recursive", ["false"])[0]        # httpx sends true / false
        for path in sorted(r.files):
            parts = path.split("/")
            if recursive.lower() != "true" and len(parts) > 1:
                folders.add(parts[0])
                continue
            folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            entries.append(r.entry(path))
        entries += [{"type": "directory", "path": f, "oid": git_oid(f.encode())}
                    for f in sorted(folders)]
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start:start + self.server.page_size]
        headers = None
        if start + self.server.page_size < len(entries):
            nxt = (f"{self.server.url}{urlsplit(self.path).path}?recursive={recursive}"
                   f"&cursor={start + len(page)}")
            headers = {"Link": f'<{nxt}>; rel="next"'}
        return 200, page, headers

    def preupload(self, body, query, repo, rev):
        r = self._repo(repo)
        if r is None:
            return 404, None, {"X-Error-Code": "RepoNotFound"}
        out = []
        for f in json.loads(body)["files"]:
            path = f["path"]
            lfs = path.endswith(LFS_SUFFIXES)
            oid = (r.lfs.get(path) if lfs else
                   (git_oid(r.files[path]) if path in r.files and path not in r.lfs else None))
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False, "oid": oid})
        return 200, {"files": out}, None

    def lfs_batch(self, body, query, repo):
        req = json.loads(body)
        assert req["operation"] == "upload" and "basic" in req["transfers"]
        objects = []
        for o in req["objects"]:
            obj = {"oid": o["oid"], "size": o["size"]}
            if o["oid"] not in self.server.objects:
                obj["actions"] = {"upload": {"href": f"{self.server.url}/lfs/{o['oid']}"},
                                  "verify": {"href": f"{self.server.url}/lfs-verify"}}
            objects.append(obj)
        return 200, {"transfer": "basic", "objects": objects}, None

    def lfs_put(self, body, query, oid):
        if hashlib.sha256(body).hexdigest() != oid:
            return 400, {"error": "sha256 mismatch"}, None
        self.server.objects[oid] = body
        return 200, {}, None

    def lfs_verify(self, body, query):
        req = json.loads(body)
        data = self.server.objects.get(req["oid"])
        ok = data is not None and len(data) == req["size"]
        return (200, {}, None) if ok else (404, {"error": "object not uploaded"}, None)

    def commit(self, body, query, repo, rev):
        r = self._repo(repo)
        if r is None:
            return 404, None, {"X-Error-Code": "RepoNotFound"}
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return 400, {"error": "no commit header"}, None
        staged: dict[str, tuple[bytes, str | None]] = {}
        for item in lines[1:]:
            v = item["value"]
            if item["key"] == "file":
                staged[v["path"]] = (base64.b64decode(v["content"]), None)
            elif item["key"] == "lfsFile":
                data = self.server.objects.get(v["oid"])
                if data is None or len(data) != v["size"]:
                    return 422, {"error": f"LFS object {v['oid']} not uploaded"}, None
                staged[v["path"]] = (data, v["oid"])
            else:
                return 400, {"error": f"unexpected operation {item['key']}"}, None
        for path, (data, sha) in staged.items():            # all or nothing
            r.files[path] = data
            r.lfs.pop(path, None)
            if sha is not None:
                r.lfs[path] = sha
        r.commits.append(sorted(staged))
        return 200, {"commitUrl": f"{self.server.url}/datasets/{repo}/commit/{r.sha}",
                     "commitOid": r.sha, "pullRequestUrl": None}, None
