"""Checkpoints saved with their code (`mamp_hub.tools.remote_code`) load with `trust_remote_code=True` where `mamp_hub` is not
importable: pushed to the loopback Hub (`hub_server.LocalHub`), then loaded through the Auto classes by an
interpreter in which `import mamp_hub` fails.
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import torch
from conftest import tiny_config
from hub_server import client_env, run_client

from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.registration import auto_map
from mamp_hub.tools.remote_code import save_with_code

REPO_ID = "mamp-test/mamp-tiny-finetune-with-code"
CODE_FILES = {"configuration_mamp.py", "modeling_mamp.py", "processing_mamp.py"}

PUSH = """
    import sys
    from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor
    from mamp_hub.tools.remote_code import push_with_code

    source, repo_id = sys.argv[1:]
    model = MampForSkeletonClassification.from_pretrained(source)
    push_with_code(model, MampSkeletonProcessor.from_pretrained(source), repo_id)
"""

# The first statement makes every `import mamp_hub...` fail, whatever makes the package importable here (the
# working directory, an editable install's finder): the finder is asked before all others.
LOAD_WITHOUT_PACKAGE = """
    import importlib.abc
    import sys

    class NoMampHub(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "mamp_hub":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoMampHub())
    try:
        import mamp_hub
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("mamp_hub is importable: the test would prove nothing")

    import json
    import numpy as np
    import torch
    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForVideoClassification

    repo_id = sys.argv[1]
    classifier = AutoModelForVideoClassification.from_pretrained(repo_id, trust_remote_code=True).eval()
    encoder = AutoModel.from_pretrained(repo_id, trust_remote_code=True).eval()
    processor = AutoFeatureExtractor.from_pretrained(repo_id, trust_remote_code=True)
    sequence = np.random.default_rng(0).normal(size=(3, 50, 25, 3)).astype(np.float32)
    inputs = processor(sequence)
    with torch.no_grad():
        logits = classifier(**inputs).logits
        features = encoder(**inputs).pooler_output
    print(json.dumps({
        "logits": logits.tolist(),
        "features": features.tolist(),
        "classes": [type(classifier).__module__, type(encoder).__module__, type(processor).__module__],
        "names": [type(classifier).__name__, type(encoder).__name__, type(processor).__name__],
        "mamp_hub_loaded": any(name.partition(".")[0] == "mamp_hub" for name in sys.modules),
    }))
"""


def tiny_classifier() -> tuple[MampForSkeletonClassification, MampSkeletonProcessor]:
    torch.manual_seed(0)
    config = tiny_config(num_labels=3, id2label={0: "wave", 1: "kick", 2: "sit down"}, classifier_head="finetune")
    return MampForSkeletonClassification(config).eval(), MampSkeletonProcessor(num_frames=16)


def test_save_with_code_writes_the_modules_and_the_auto_map(tmp_path):
    model, processor = tiny_classifier()
    copied = {path.name for path in save_with_code(model, processor, tmp_path)}
    assert copied >= CODE_FILES and copied <= {path.name for path in tmp_path.iterdir()}
    assert "skeletons_layouts.py" in copied and "_compat.py" in copied  # the package's modules, flattened
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == auto_map()
    assert config["auto_map"]["AutoModelForVideoClassification"] == "modeling_mamp.MampForSkeletonClassification"
    preprocessor = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert preprocessor["auto_map"] == {"AutoFeatureExtractor": "processing_mamp.MampSkeletonProcessor"}
    # The copies import each other (relatively) and installed packages, never a `mamp_hub` module left behind.
    for name in copied:
        for node in ast.walk(ast.parse((tmp_path / name).read_text())):
            if isinstance(node, ast.ImportFrom):
                imported = [f"{node.module}.py" in copied if node.level else not node.module.startswith("mamp_hub")]
            elif isinstance(node, ast.Import):
                imported = [not alias.name.startswith("mamp_hub") for alias in node.names]
            else:
                continue
            assert all(imported), (name, ast.unparse(node))
    # The caller's objects are untouched: a later plain save copies no code.
    assert getattr(model.config, "auto_map", None) is None and not model.is_remote_code()
    model.save_pretrained(tmp_path / "plain")
    assert not any(path.suffix == ".py" for path in (tmp_path / "plain").iterdir())


def test_save_with_code_refuses_other_models_and_processors_before_writing_anything(tmp_path):
    with pytest.raises(TypeError, match="not Linear; pass a MampModel"):
        save_with_code(torch.nn.Linear(2, 2), MampSkeletonProcessor(), tmp_path)
    with pytest.raises(TypeError, match="got NoneType; pass the MampSkeletonProcessor"):
        save_with_code(tiny_classifier()[0], None, tmp_path / "folder")
    assert not (tmp_path / "folder").exists()


@pytest.mark.slow
def test_trust_remote_code_loads_without_the_package(local_hub, tmp_path):
    model, processor = tiny_classifier()
    source = tmp_path / "source"
    model.save_pretrained(source)
    processor.save_pretrained(source)
    sequence = np.random.default_rng(0).normal(size=(3, 50, 25, 3)).astype(np.float32)
    with torch.no_grad():
        outputs = model(**processor(sequence))

    env = client_env(tmp_path / "hf_home", local_hub.url)
    run_client(PUSH, str(source), REPO_ID, env=env)
    assert local_hub.commits[REPO_ID] == 1
    assert set(local_hub.repos[REPO_ID]) >= CODE_FILES

    loaded = json.loads(run_client(LOAD_WITHOUT_PACKAGE, REPO_ID, env=env).splitlines()[-1])
    assert not loaded["mamp_hub_loaded"]
    # The classes come from the repository's copies, which transformers imports as `transformers_modules...`.
    assert all(module.startswith("transformers_modules.") for module in loaded["classes"]), loaded["classes"]
    assert loaded["names"] == ["MampForSkeletonClassification", "MampModel", "MampSkeletonProcessor"]
    torch.testing.assert_close(torch.tensor(loaded["logits"]), outputs.logits)
    torch.testing.assert_close(torch.tensor(loaded["features"]), outputs.pooler_output)
    downloaded = {path for method, path in local_hub.requests if method == "GET"}
    assert {f"/{REPO_ID}/resolve/main/{name}" for name in CODE_FILES} <= downloaded
