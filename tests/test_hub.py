"""The Hub path: `push_to_hub` and `from_pretrained("<org>/<repo>")` through the real `huggingface_hub` client.

How: `hub_server.LocalHub` is a Hub endpoint on 127.0.0.1 that the real client talks to over HTTP, from a fresh
interpreter configured by the environment (`HF_ENDPOINT`, a temporary `HF_HOME`). A second interpreter then loads
the same repository, through the Auto classes, with `HF_HUB_OFFLINE=1` from the cache the first one filled, and the
test checks that it sent no request at all: both routes (download, then populated cache) are covered.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import torch
from conftest import save_tiny_checkpoint
from hub_server import ROOT, client_env, run_client
from huggingface_hub import ModelCard

from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor

REPO_ID = "mamp-test/mamp-tiny-finetune"


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
    labels = {0: "wave", 1: "kick", 2: "sit down"}
    save_tiny_checkpoint(folder, num_labels=3, id2label=labels, classifier_head="finetune")
    model = MampForSkeletonClassification.from_pretrained(folder).eval()
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
            assert any(
                m == method and re.fullmatch(rf"/{REPO_ID}/resolve/(main|{commit})/{filename}", p)
                for m, p in local_hub.requests
            ), (method, filename)
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
