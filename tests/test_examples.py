"""The examples and the README's quick start, run as a user runs them, with tiny models and synthetic data.

Each example's `main(argv)` is called with the arguments a user would type, pointing `--checkpoint` at a tiny
randomly initialised model saved to a temporary folder (where a user would give a Hub id or a converted
checkpoint). The README test executes the quick-start block exactly as written, except that the checkpoint string
names such a tiny model, in a folder that holds the `my_sequence.npy` the block loads.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
from pathlib import Path
from types import ModuleType

import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import tiny_config

from mamp_hub import (
    MampForMaskedMotionPrediction,
    MampForSkeletonClassification,
    MampModel,
    MampSkeletonProcessor,
)
from mamp_hub.data import NpzSkeletonDataset
from mamp_hub.skeletons import get_id2label
from mamp_hub.tools import convert

ROOT = Path(__file__).resolve().parents[1]
# The examples batch their inputs differently from the checks below, which run the same model on them at once.
ATOL = 1e-5


def load_example(name: str) -> ModuleType:
    """Import `examples/<name>.py` as a module (the folder is not a package: examples are scripts)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def run_saved(model_class: type, folder: Path | str, sequences, layout: str | None = None):
    """The model saved in `folder` (eval mode) and its outputs on `sequences`, prepared in one batch by the
    processor saved with it: what an example's output should agree with."""
    model = model_class.from_pretrained(folder).eval()
    processor = MampSkeletonProcessor.from_pretrained(folder)
    return model, model(**processor(sequences, layout=layout))


def quick_start_block(readme: str) -> str:
    return re.search(r"<!-- quick-start:[^>]*-->\n```python\n(.*?)```", readme, re.DOTALL).group(1)


def printed_top5(output: str) -> list[str]:
    """The list of names the quick start prints after `top-5:`."""
    return ast.literal_eval(output.split("top-5:")[1].strip())


def top5_names(model: MampForSkeletonClassification, logits: torch.Tensor) -> list[str]:
    """The model's five most likely classes for the first sequence of a batch, by name."""
    return [model.config.id2label[i] for i in logits.topk(5).indices[0].tolist()]


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised pre-training checkpoint and its processor, as a released repository holds."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("pretrained")
    MampForMaskedMotionPrediction(tiny_config()).save_pretrained(folder)
    MampSkeletonProcessor(num_frames=16).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised NTU-60 classifier and its processor."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("classifier")
    config = tiny_config(num_labels=60, id2label=get_id2label("ntu60"), classifier_head="finetune")
    MampForSkeletonClassification(config).eval().save_pretrained(folder)
    MampSkeletonProcessor(num_frames=16).save_pretrained(folder)
    return folder


def test_extract_features(pretrained_dir, tmp_path):
    features = load_example("extract_features").main(
        [
            "--checkpoint",
            str(pretrained_dir),
            "--num-synthetic",
            "12",
            "--batch-size",
            "2",
            "--output-dir",
            str(tmp_path),
        ]
    )
    sequences = np.load(tmp_path / "synthetic.npz")["x_test"]  # (N, 300, 150): frames x (persons, joints, xyz)
    assert features.shape == (len(sequences), 32) and np.isfinite(features).all()
    np.testing.assert_array_equal(np.load(tmp_path / "features.npy"), features)
    # The encoder's pooled features of the test split, in order (the example ran them in batches of 2).
    _, outputs = run_saved(MampModel, pretrained_dir, sequences, layout="ntu_flat")
    np.testing.assert_allclose(features, outputs.pooler_output.numpy(), atol=ATOL, rtol=0)

    # The same clips as a .npy batch in the (N, persons, frames, joints, xyz) layout give the same features.
    mtvc = sequences.reshape(len(sequences), 300, 2, 25, 3).transpose(0, 2, 1, 3, 4)
    np.save(tmp_path / "clips.npy", mtvc)
    again = load_example("extract_features").main(
        [
            "--checkpoint",
            str(pretrained_dir),
            "--input",
            str(tmp_path / "clips.npy"),
            "--output-dir",
            str(tmp_path / "npy"),
        ]
    )
    np.testing.assert_allclose(again, features, atol=1e-5)


def test_classify_prints_top5_action_names(classifier_dir, tmp_path, capsys):
    predictions = load_example("classify").main(
        ["--checkpoint", str(classifier_dir), "--limit", "3", "--output-dir", str(tmp_path)]
    )
    # Without --input the example classifies the first test clips of the synthetic file it wrote.
    dataset = NpzSkeletonDataset(tmp_path / "synthetic.npz", split="test")
    model, outputs = run_saved(MampForSkeletonClassification, classifier_dir, dataset.sequences[:3], "ntu_flat")
    expected = outputs.logits.softmax(dim=-1).topk(5)
    assert len(predictions) == 3
    for index, record in enumerate(predictions):
        assert record["index"] == index and record["true_action"] == dataset.id2label[dataset.labels[index]]
        names = [model.config.id2label[i] for i in expected.indices[index].tolist()]
        assert [p["action"] for p in record["top_k"]] == names
        # The example rounds probabilities to 4 decimals.
        assert [p["probability"] for p in record["top_k"]] == pytest.approx(expected.values[index].tolist(), abs=1e-4)
    assert json.loads((tmp_path / "predictions.json").read_text()) == predictions
    assert "sequence 0:" in capsys.readouterr().out


def test_finetune_with_trainer_then_classify_with_the_result(pretrained_dir, tmp_path):
    metrics = load_example("finetune").main(
        [
            "--checkpoint",
            str(pretrained_dir),
            "--num-synthetic",
            "16",
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--output-dir",
            str(tmp_path),
        ]
    )
    model_dir = tmp_path / "model"
    model = MampForSkeletonClassification.from_pretrained(model_dir).eval()
    # The reported accuracy is the saved model's on every test clip with the central crop.
    test_set = NpzSkeletonDataset(tmp_path / "synthetic.npz", split="test")
    inputs = MampSkeletonProcessor.from_pretrained(model_dir)([item["skeleton_values"] for item in test_set])
    with torch.no_grad():
        predicted = model(**inputs).logits.argmax(-1)
    labels = torch.tensor([int(item["labels"]) for item in test_set])
    assert metrics["eval_top1"] == pytest.approx(100.0 * (predicted == labels).float().mean().item())
    # The encoder came from the pre-trained checkpoint (and was trained on), the head is new.
    assert model.config.classifier_head == "finetune" and model.config.hidden_size == 32
    predictions = load_example("classify").main(
        [
            "--checkpoint",
            str(model_dir),
            "--input",
            str(tmp_path / "synthetic.npz"),
            "--limit",
            "2",
            "--output-dir",
            str(tmp_path / "classify"),
        ]
    )
    assert [record["top_k"][0]["action"] for record in predictions] == [
        model.config.id2label[i] for i in predicted[:2].tolist()
    ]
    assert [record["true_action"] for record in predictions] == [test_set.id2label[i] for i in labels[:2].tolist()]


def test_visualize_masking_writes_a_png(pretrained_dir, tmp_path, capsys):
    path = load_example("visualize_masking").main(
        ["--checkpoint", str(pretrained_dir), "--num-panels", "4", "--output-dir", str(tmp_path)]
    )
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    # Motion-aware masking hides the moving joints: masked tokens had the higher masking probability.
    masked, visible = map(float, re.search(r"masked tokens (\S+) vs visible (\S+)", capsys.readouterr().out).groups())
    assert masked > visible


def test_readme_quick_start(classifier_dir, tmp_path, monkeypatch, capsys):
    block = quick_start_block((ROOT / "README.md").read_text())
    assert len(block.strip().splitlines()) <= 15, "the quick start should stay short"
    checkpoint = re.search(r'^checkpoint = "([^"]+)"', block, re.MULTILINE).group(1)
    block = block.replace(f'"{checkpoint}"', repr(str(classifier_dir)))

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.save("my_sequence.npy", rng.normal(scale=0.3, size=(70, 25, 3)).astype(np.float32))
    exec(compile(block, "README.md quick start", "exec"), {"__name__": "__main__"})

    output = capsys.readouterr().out
    assert "features: (1, 32)" in output
    model, outputs = run_saved(MampForSkeletonClassification, classifier_dir, [np.load("my_sequence.npy")])
    assert printed_top5(output) == top5_names(model, outputs.logits)


def test_newcomer_converts_an_official_checkpoint_then_runs_the_quick_start(reference, tmp_path, monkeypatch, capsys):
    """The README path from an authors' fine-tuned `.pth` to a prediction, with no substitution in the quick start.

    The official file is the reference run's fine-tuned model in the authors' checkpoint layout; it has 4 heads
    and 7 classes, so the README's `mamp-convert` line runs with `--num-heads 4` and without `--id2label ntu60`.
    """
    monkeypatch.chdir(tmp_path)
    torch.save({"model": reference.state_dict("finetune")}, "finetune-checkpoint.pth")
    readme = (ROOT / "README.md").read_text()
    command = shlex.split(re.search(r"^mamp-convert finetune-checkpoint\.pth .*$", readme, re.MULTILINE).group(0))
    arguments = " ".join(command[1:]).replace("--num-heads 8", "--num-heads 4").replace(" --id2label ntu60", "")
    convert.main(arguments.split())

    block = quick_start_block(readme)
    checkpoint = re.search(r'^checkpoint = "([^"]+)"', block, re.MULTILINE).group(1)
    # The converted folder computes the authors' fine-tuned model: their logits on the reference input.
    model = MampForSkeletonClassification.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        logits = model(reference.skeleton_values).logits
    torch.testing.assert_close(logits, reference["finetune.logits"], atol=ATOL, rtol=0)

    np.save("my_sequence.npy", np.random.default_rng(0).normal(scale=0.3, size=(70, 25, 3)).astype(np.float32))
    exec(compile(block, "README.md quick start", "exec"), {"__name__": "__main__"})
    output = capsys.readouterr().out
    assert "features: (1, 32)" in output
    _, outputs = run_saved(MampForSkeletonClassification, checkpoint, [np.load("my_sequence.npy")])
    assert printed_top5(output) == top5_names(model, outputs.logits)
