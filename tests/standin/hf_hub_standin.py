"""STAND-IN for the Hugging Face Hub: a local file server that answers the requests the real
`huggingface_hub` 2.4 client makes, for the pull tests (no hub can be reached from here).
It is NOT the hub: it serves a few model repos from local folders, on loopback.

Paths and headers, as huggingface_hub 2.4 reads them (file_download.py, hf_api.py,
utils/_http.py):
- `GET /api/models/{repo}[/revision/{rev}]` (`?blobs=true`: sizes) -> {id, sha, gated,
  siblings: [{rfilename, size, blobId, lfs: {size, sha256, pointerSize}}]}
- `GET /api/models/{repo}/tree/{rev}[/{path}]` -> [{type, path, size, oid, lfs: {oid, size,
  pointerSize}}]
- `HEAD|GET /{repo}/resolve/{rev}/{file}` -> the bytes, with `ETag` (the git blob id, or the
  sha256 of an LFS file: the weights), `X-Repo-Commit`, `Content-Length`, `Accept-Ranges`;
  `Range: bytes=N-` -> 206 with `Content-Range`.
- Errors carry `X-Error-Code` like the hub's: RepoNotFound (401), RevisionNotFound (404),
  EntryNotFound (404), GatedRepo (401 without a token, 403 with a wrong one).

Switches (attributes, settable while it runs): `drop[(repo, file)] = (offset, times)` cuts
the next `times` responses of that file that reach byte `offset` (the connection closes
mid-body); `rate` (bytes/s) slows every file body down; `declared[(repo, file)] = size`
`scan(..., declared={file: size})` lists a file with a size it does not have (a
10 PB weight for the disk-space check).
`requests` records (method, path, Range header, Authorization present, bytes sent).

Usage: python hf_hub_standin.py --port P --repo org/name=DIR [--repo ...] [--gated org/name]
       [--token T] [--rate BYTES_PER_S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack")


@dataclass
class RepoFileInfo:
    path: str
    size: int
    blob_id: str
    sha256: str | None  # LFS files only
    source: Path | None  # None: declared only (never served in full)

    @property
    def etag(self) -> str:
        return self.sha256 or self.blob_id


@dataclass
class Repo:
    repo_id: str
    folder: Path
    gated: bool = False
    files: dict[str, RepoFileInfo] = field(default_factory=dict)
    commit: str = ""


def scan(repo_id: str, folder: Path, gated: bool = False,
         declared: dict[str, int] | None = None) -> Repo:
    """A repo of every file under `folder` (plus `declared` files that exist only in the listing)."""
    repo = Repo(repo_id, folder, gated)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(folder).as_posix()
        blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        sha256 = hashlib.sha256(data).hexdigest() if rel.endswith(LFS_SUFFIXES) else None
        repo.files[rel] = RepoFileInfo(rel, len(data), blob_id, sha256, path)
    for rel, size in (declared or {}).items():
        digest = hashlib.sha256(f"{rel}:{size}".encode()).hexdigest()
        repo.files[rel] = RepoFileInfo(rel, size, digest[:40], digest, None)
    listing = json.dumps([(f.path, f.etag) for f in repo.files.values()]).encode()
    repo.commit = hashlib.sha1(listing).hexdigest()
    return repo


class HubStandin:
    """The stand-in hub, in a thread of the test (`start`/`stop`, or a `with` block)."""

    def __init__(self, repos: list[Repo], token: str | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        self.repos = {r.repo_id: r for r in repos}
        self.token = token  # the token a gated repo takes (None: any token)
        self.drop: dict[tuple[str, str], tuple[int, int]] = {}
        self.rate: float | None = None
        self.requests: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.hub = self  # type: ignore[attr-defined]
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubStandin:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HubStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, entry: dict[str, object]) -> dict[str, object]:
        with self.lock:
            self.requests.append(entry)
        return entry

    def downloads(self, file: str) -> list[dict[str, object]]:
        """The GET requests of one file's bytes."""
        return [r for r in self.requests if r["method"] == "GET" and str(r["path"]).endswith("/" + file)
                and "/resolve/" in str(r["path"])]


class Handler(BaseHTTPRequestHandler):
    """One request to the stand-in hub (its state: `self.server.hub`)."""

    protocol_version = "HTTP/1.1"

    @property
    def hub(self) -> HubStandin:
        return self.server.hub  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._route(head=False)

    # ------------------------------------------------------------ routing

    def _route(self, head: bool) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        entry = self.hub.record({"method": self.command, "path": path, "range": self.headers.get("Range"),
                            "auth": bool(self.headers.get("Authorization")), "sent": 0})
        if path.startswith("/api/models/"):
            self._api(path[len("/api/models/"):], parse_qs(url.query))
        elif "/resolve/" in path:
            self._resolve(path.lstrip("/"), head, entry)
        else:
            self._error(404, "RepoNotFound", "not a hub path")

    def _find(self, text: str) -> tuple[Repo | None, str]:
        parts = text.split("/")
        for n in (2, 1):
            repo = self.hub.repos.get("/".join(parts[:n]))
            if repo is not None:
                return repo, "/".join(parts[n:])
        return None, ""

    def _revision_ok(self, repo: Repo, rev: str) -> bool:
        if unquote(rev) in ("main", repo.commit):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", repo.commit)
        return False

    def _api(self, rest: str, query: dict[str, list[str]]) -> None:
        repo, tail = self._find(rest)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return
        if tail.startswith("tree/"):
            rev, _, sub = tail[len("tree/"):].partition("/")
            if self._revision_ok(repo, rev):
                self._json([_tree_entry(f) for f in repo.files.values()
                            if not sub or f.path.startswith(sub.rstrip("/") + "/")])
            return
        rev = tail[len("revision/"):] if tail.startswith("revision/") else "main"
        if not self._revision_ok(repo, rev):
            return
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        self._json({"_id": repo.commit[:24], "id": repo.repo_id, "modelId": repo.repo_id,
                    "sha": repo.commit, "private": False, "disabled": False,
                    "gated": "manual" if repo.gated else False, "tags": [], "downloads": 0,
                    "likes": 0, "library_name": "transformers",
                    "siblings": [_sibling(f, blobs) for f in repo.files.values()]})

    def _authorized(self, repo: Repo) -> bool:
        if not repo.gated:
            return True
        auth = self.headers.get("Authorization", "")
        if not auth:
            self._error(401, "GatedRepo", "Access to model is restricted. You must have access"
                        " to it and be authenticated to access it. Please log in.", repo.commit)
            return False
        if self.hub.token is not None and auth != f"Bearer {self.hub.token}":
            self._error(403, "GatedRepo", "Access to model is restricted and you are not in the"
                        " authorized list.", repo.commit)
            return False
        return True

    def _resolve(self, rest: str, head: bool, entry: dict[str, object]) -> None:
        repo_part, _, tail = rest.partition("/resolve/")
        repo = self.hub.repos.get(repo_part)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return
        rev, _, file = tail.partition("/")
        if not self._revision_ok(repo, rev) or not self._authorized(repo):
            return
        info = repo.files.get(file)
        if info is None:
            self._error(404, "EntryNotFound", f"{file} does not exist", repo.commit)
            return
        start = 0
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start = int(ranged[len("bytes="):].split("-")[0] or 0)
        if start >= info.size > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{info.size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("ETag", f'"{info.etag}"')
        if info.sha256:
            self.send_header("X-Linked-Etag", f'"{info.sha256}"')
            self.send_header("X-Linked-Size", str(info.size))
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(info.size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{info.size - 1}/{info.size}")
        self.end_headers()
        if not head:
            self._body(repo, info, start, entry)

    def _body(self, repo: Repo, info: RepoFileInfo, start: int, entry: dict[str, object]) -> None:
        if info.source is None:  # declared only: there are no bytes to send
            self.close_connection = True
            return
        data = info.source.read_bytes()[start:]
        cut = None
        with self.hub.lock:
            offset, times = self.hub.drop.get((repo.repo_id, info.path), (0, 0))
            if times > 0 and start + len(data) > offset:
                cut = max(0, offset - start)
                self.hub.drop[(repo.repo_id, info.path)] = (offset, times - 1)
        chunk = 4096
        limit = len(data) if cut is None else cut
        sent = 0
        while sent < limit:
            piece = data[sent:min(limit, sent + chunk)]
            self.wfile.write(piece)
            self.wfile.flush()
            sent += len(piece)
            entry["sent"] = sent
            if self.hub.rate:
                time.sleep(len(piece) / self.hub.rate)
        if cut is not None:  # the connection drops mid-body
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------ answers

    def _json(self, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: int, error_code: str, message: str, commit: str | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(code)
        self.send_header("X-Error-Code", error_code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)



def _sibling(f: RepoFileInfo, blobs: bool) -> dict[str, object]:
    out: dict[str, object] = {"rfilename": f.path}
    if blobs:
        out.update(size=f.size, blobId=f.blob_id)
        if f.sha256:
            out["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 134}
    return out


def _tree_entry(f: RepoFileInfo) -> dict[str, object]:
    out: dict[str, object] = {"type": "file", "path": f.path, "size": f.size, "oid": f.blob_id}
    if f.sha256:
        out["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--repo", action="append", default=[], help="org/name=DIR")
    parser.add_argument("--gated", action="append", default=[])
    parser.add_argument("--token")
    parser.add_argument("--rate", type=float)
    args = parser.parse_args()
    repos = [scan(spec.split("=", 1)[0], Path(spec.split("=", 1)[1]), spec.split("=", 1)[0] in args.gated)
             for spec in args.repo]
    hub = HubStandin(repos, args.token, port=args.port)
    hub.rate = args.rate
    print(f"hub stand-in on {hub.url}", flush=True)
    hub.server.serve_forever()


if __name__ == "__main__":
    main()
