"""A Hugging Face Hub on 127.0.0.1 for the tests that push and pull through the real `huggingface_hub` client.

`LocalHub` is an `http.server` thread that implements just the routes the client calls for these operations —
repository creation, README validation, pre-upload, commit, revision info, the file tree, and
`HEAD`/`GET /{repo}/resolve/{revision}/{file}` with the `ETag`, `X-Repo-Commit`, `Content-Length` and
`X-Error-Code` headers the client relies on. Every file is committed as a regular (non-LFS) file, so no Xet or
LFS transfer is involved. `refuse_next_commit` makes the next commit to a repository fail once, as a network or
server failure half-way through a release would.

The client runs in a fresh interpreter (`run_client`) with `HF_ENDPOINT` pointing at the local hub and a temporary
`HF_HOME` (`client_env`): `huggingface_hub` reads both when it is imported, and the test process imported it long
before (through `mamp_hub`), so a subprocess is the only way to configure it as a user does, with the environment,
without patching private constants.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]


class LocalHub:
    """A minimal Hugging Face Hub on the loopback interface, holding repositories in memory."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.commits: Counter[str] = Counter()  # successful commits per repository
        self.refused_commits: set[str] = set()  # repositories whose next commit fails (once)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def refuse_next_commit(self, repo_id: str) -> None:
        self.refused_commits.add(repo_id)

    def commit_hash(self, repo_id: str) -> str:
        """A 40-hex commit id that changes with the repository's content, as the client expects of a revision."""
        digest = hashlib.sha1()
        for path in sorted(self.repos[repo_id]):
            digest.update(path.encode() + b"\0" + self.repos[repo_id][path])
        return digest.hexdigest()


def git_blob_id(content: bytes) -> str:
    """The git object id of a file, which the Hub reports as a regular file's `oid`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _make_handler(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, payload: dict | list, status: int = 200) -> None:
            self._reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def _route(self) -> str:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            return path

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = self._route()
            if match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                repo_id, revision, filename = match.groups()
                files = self._repo_at(repo_id, revision)
                if files is None:
                    return
                commit = hub.commit_hash(repo_id)
                if filename not in files:
                    return self._reply(404, headers={"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
                content = files[filename]
                etag = f'"{hashlib.sha256(content).hexdigest()}"'
                return self._reply(200, content, {"ETag": etag, "X-Repo-Commit": commit})
            if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path):
                repo_id, revision = match.groups()
                files = self._repo_at(repo_id, revision)
                if files is None:
                    return
                siblings = [{"rfilename": name} for name in sorted(files)]
                return self._json({"id": repo_id, "sha": hub.commit_hash(repo_id), "siblings": siblings})
            if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)/?", path):
                repo_id, revision = match.groups()
                files = self._repo_at(repo_id, revision)
                if files is None:
                    return
                tree = [
                    {"type": "file", "path": name, "size": len(content), "oid": git_blob_id(content)}
                    for name, content in sorted(files.items())
                ]
                return self._json(tree)
            self._reply(404)

        def do_POST(self) -> None:
            path = self._route()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if path == "/api/repos/create":
                request = json.loads(body)
                repo_id = f"{request['organization']}/{request['name']}"
                hub.repos.setdefault(repo_id, {})
                return self._json({"url": f"{hub.url}/{repo_id}"})
            if path == "/api/validate-yaml":
                return self._json({"errors": [], "warnings": []})
            if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", path):
                files = [
                    {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for item in json.loads(body)["files"]
                ]
                return self._json({"files": files})
            if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path):
                repo_id = match.group(1)
                if repo_id not in hub.repos:
                    return self._reply(404, headers={"X-Error-Code": "RepoNotFound"})
                if repo_id in hub.refused_commits:
                    hub.refused_commits.discard(repo_id)
                    # 403, as for a token without write access: the client retries 5xx answers itself.
                    return self._reply(403, headers={"X-Error-Message": "commit refused by the test hub"})
                files = dict(hub.repos[repo_id])  # a commit lands whole or not at all
                for line in body.splitlines():
                    operation = json.loads(line)
                    if operation["key"] == "file":
                        value = operation["value"]
                        files[value["path"]] = base64.b64decode(value["content"])
                    elif operation["key"] != "header":
                        return self._reply(400, b"only regular file additions are implemented")
                hub.repos[repo_id] = files
                hub.commits[repo_id] += 1
                commit = hub.commit_hash(repo_id)
                return self._json({"commitUrl": f"{hub.url}/{repo_id}/commit/{commit}", "commitOid": commit})
            self._reply(404)

        def _repo_at(self, repo_id: str, revision: str) -> dict[str, bytes] | None:
            """The repository's files, or None after answering 404 for an unknown repository or revision."""
            if repo_id not in hub.repos:
                self._reply(404, headers={"X-Error-Code": "RepoNotFound"})
                return None
            if revision not in ("main", hub.commit_hash(repo_id)):
                self._reply(404, headers={"X-Error-Code": "RevisionNotFound"})
                return None
            return hub.repos[repo_id]

    return Handler


@pytest.fixture
def local_hub() -> Iterator[LocalHub]:
    hub = LocalHub()
    yield hub
    hub.close()


def run_python(arguments: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python arguments...` in a fresh interpreter with `env`, from the repository root; the caller checks it."""
    return subprocess.run(
        [sys.executable, *arguments], check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def run_client(script: str, *args: str, env: dict[str, str]) -> str:
    """Run `script` in a fresh interpreter (so that `huggingface_hub` reads `env`); return its stdout."""
    result = run_python(["-c", textwrap.dedent(script), *args], env)
    assert result.returncode == 0, f"client failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def client_env(hub_home: Path, endpoint: str, offline: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hub_home), HF_HUB_DISABLE_TELEMETRY="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env
