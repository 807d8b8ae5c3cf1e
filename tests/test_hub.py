"""The Hub path: `push_to_hub` and `from_pretrained("<org>/<repo>")` through the real `huggingface_hub` client.

How: `LocalHub` is a Hub endpoint on 127.0.0.1 (an `http.server` thread) that implements just the routes the
client calls for these operations — repository creation, README validation, pre-upload, commit, revision info,
and `HEAD`/`GET /{repo}/resolve/{revision}/{file}` with the `ETag`, `X-Repo-Commit`, `Content-Length` and
`X-Error-Code` headers the client relies on. Every file is committed as a regular (non-LFS) file, so no Xet or
LFS transfer is involved. The client runs in a fresh interpreter with `HF_ENDPOINT` pointing at the local hub
and a temporary `HF_HOME`: `huggingface_hub` reads both when it is imported, and this test process imported it
long before (through `mamp_hub`), so a subprocess is the only way to configure it as a user does, with the
environment, without patching private constants. A second interpreter then loads the same repository, through
the Auto classes, with `HF_HUB_OFFLINE=1` from the cache the first one filled, and the test checks that it sent
no request at all: both routes (download, then populated cache) are covered.
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
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import torch
from conftest import tiny_config
from huggingface_hub import ModelCard

from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor

ROOT = Path(__file__).resolve().parents[1]
REPO_ID = "mamp-test/mamp-tiny-finetune"


class LocalHub:
    """A minimal Hugging Face Hub on the loopback interface, holding repositories in memory."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def commit_hash(self, repo_id: str) -> str:
        """A 40-hex commit id that changes with the repository's content, as the client expects of a revision."""
        digest = hashlib.sha1()
        for path in sorted(self.repos[repo_id]):
            digest.update(path.encode() + b"\0" + self.repos[repo_id][path])
        return digest.hexdigest()


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

        def _json(self, payload: dict, status: int = 200) -> None:
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
                for line in body.splitlines():
                    operation = json.loads(line)
                    if operation["key"] == "file":
                        value = operation["value"]
                        hub.repos[repo_id][value["path"]] = base64.b64decode(value["content"])
                    elif operation["key"] != "header":
                        return self._reply(400, b"only regular file additions are implemented")
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


def run_client(script: str, *args: str, env: dict[str, str]) -> str:
    """Run `script` in a fresh interpreter (so that `huggingface_hub` reads `env`); return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        check=False,  # the assertion below shows the output on failure
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"client failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def client_env(hub_home: Path, endpoint: str, offline: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hub_home), HF_HUB_DISABLE_TELEMETRY="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


# The client. "push": upload a release folder (model, processor, model card) the way `hf upload` does, push the
# model and the processor again with `push_to_hub`, and load them back with their classes; "load": load them
# with the Auto classes. Both print the logits of a fixed raw sequence, for comparison with the saved originals.
CLIENT = """
    import json, sys
    import numpy as np
    import torch
    from huggingface_hub import HfApi, ModelCard
    from transformers import AutoFeatureExtractor, AutoModelForVideoClassification
    from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor

    mode, source, repo_id = sys.argv[1:]
    if mode == "push":
        api = HfApi()
        api.create_repo(repo_id)
        api.upload_folder(repo_id=repo_id, folder_path=source)
        MampForSkeletonClassification.from_pretrained(source).push_to_hub(repo_id)
        MampSkeletonProcessor.from_pretrained(source).push_to_hub(repo_id)
        model = MampForSkeletonClassification.from_pretrained(repo_id).eval()
        processor = MampSkeletonProcessor.from_pretrained(repo_id)
    else:  # the Auto classes, registered by `import mamp_hub`, resolve the same repository
        model = AutoModelForVideoClassification.from_pretrained(repo_id).eval()
        processor = AutoFeatureExtractor.from_pretrained(repo_id)
        assert type(model) is MampForSkeletonClassification and type(processor) is MampSkeletonProcessor
    sequence = np.random.default_rng(0).normal(size=(3, 50, 25, 3)).astype(np.float32)
    with torch.no_grad():
        logits = model(**processor(sequence)).logits
    card = ModelCard.load(repo_id).text if mode == "push" else ""
    print(json.dumps({"logits": logits.tolist(), "id2label": model.config.id2label,
                      "num_frames": processor.num_frames, "card": card}))
"""


def save_release_folder(folder: Path) -> MampForSkeletonClassification:
    """A tiny classifier, its processor and the model card, as a released repository holds them."""
    torch.manual_seed(0)
    labels = {0: "wave", 1: "kick", 2: "sit down"}
    model = MampForSkeletonClassification(tiny_config(num_labels=3, id2label=labels, classifier_head="finetune"))
    model.eval().save_pretrained(folder)
    MampSkeletonProcessor(num_frames=16).save_pretrained(folder)
    card = (ROOT / "MODEL_CARD.md").read_text().replace("<org>/<repo>", REPO_ID)
    (folder / "README.md").write_text(card)
    return model


def test_push_to_hub_and_from_pretrained_through_http(local_hub, tmp_path):
    source = tmp_path / "release"
    model = save_release_folder(source)
    sequence = np.random.default_rng(0).normal(size=(3, 50, 25, 3)).astype(np.float32)
    with torch.no_grad():
        expected = model(**MampSkeletonProcessor(num_frames=16)(sequence)).logits

    home = tmp_path / "hf_home"
    online = json.loads(run_client(CLIENT, "push", str(source), REPO_ID, env=client_env(home, local_hub.url)))
    torch.testing.assert_close(torch.tensor(online["logits"]), expected)
    assert online["id2label"] == {str(k): v for k, v in model.config.id2label.items()}
    assert online["num_frames"] == 16
    # push_to_hub keeps the card already in the repository instead of writing its generic one.
    assert "# MAMP: Masked Motion Predictors for 3D action recognition" in online["card"]
    assert REPO_ID in online["card"] and "<org>/<repo>" not in online["card"]
    assert set(local_hub.repos[REPO_ID]) == set(os.listdir(source))
    # The files came over HTTP: a HEAD for the metadata, then a GET, on the resolve route.
    commit = local_hub.commit_hash(REPO_ID)
    for method in ("HEAD", "GET"):
        for filename in ("model.safetensors", "preprocessor_config.json"):
            assert any(m == method and re.fullmatch(rf"/{REPO_ID}/resolve/(main|{commit})/{filename}", p)
                       for m, p in local_hub.requests), (method, filename)
    assert (home / "hub" / f"models--{REPO_ID.replace('/', '--')}" / "snapshots" / commit / "config.json").exists()

    requests_before = len(local_hub.requests)
    offline = json.loads(run_client(CLIENT, "load", "", REPO_ID, env=client_env(home, local_hub.url, offline=True)))
    torch.testing.assert_close(torch.tensor(offline["logits"]), expected)
    assert len(local_hub.requests) == requests_before, "HF_HUB_OFFLINE=1 must load from the cache without requests"


def test_release_layout_in_model_card_matches_saved_files(tmp_path):
    save_release_folder(tmp_path)
    text = (ROOT / "MODEL_CARD.md").read_text()
    listing = text.split("## Released repositories")[1].split("```")[1]
    documented = {line.split()[0] for line in listing.strip().splitlines()}
    assert documented == set(os.listdir(tmp_path))


# --- the model card ------------------------------------------------------------------------------


def test_model_card_metadata_and_template_regions():
    text = (ROOT / "MODEL_CARD.md").read_text()
    card = ModelCard(text)
    data = card.data.to_dict()
    for key in ("license", "library_name", "tags", "datasets", "metrics", "pipeline_tag"):
        assert data.get(key), f"MODEL_CARD.md front matter lacks {key}"
    assert data["library_name"] == "transformers"
    for region in ("checkpoint", "results"):
        assert len(re.findall(rf"<!-- mamp:(begin|end) {region} -->", text)) == 2, region
    # The paper's numbers are attributed, in their own section, never under "Measured".
    measured = text.split("### Measured for this checkpoint")[1].split("### Reported by the paper")[0]
    assert "84.9" not in measured and "93.1" not in measured
    assert "not measured by us" in text
