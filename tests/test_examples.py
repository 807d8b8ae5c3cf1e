"""The examples, and the README's and docs/' code blocks, run as a user runs them, with tiny models and synthetic data.

Each example's `main(argv)` is called with the arguments a user would type, pointing `--checkpoint` at a tiny
randomly initialised model saved to a temporary folder (where a user would give a Hub id or a converted
checkpoint). The blocks marked "runs as written after the two commands" in README.md and docs/*.md run unchanged in
a working directory laid out as `python -m training.tiny_recipe --output_dir outputs/tiny_recipe` leaves it, with a
tiny classifier in place of the recipe's (made in a second, not in the recipe's minutes).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import ROOT, load_example, run_saved, save_tiny_checkpoint

from mamp_hub import (
    MampConfig,
    MampForMaskedMotionPrediction,
    MampForSkeletonClassification,
    MampModel,
    MampSkeletonProcessor,
)
from mamp_hub.configuration_mamp import check_local_folder
from mamp_hub.data import NpzSkeletonDataset
from mamp_hub.data.synthetic import write_synthetic_npz
from mamp_hub.skeletons import get_id2label
from mamp_hub.tools import convert

# The examples batch their inputs differently from the checks below, which run the same model on them at once.
ATOL = 1e-5
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = re.compile(
    r"<!-- (quick start: )?runs as written after the two commands[^>]*-->\n```python\n(.*?)```", re.DOTALL
)


def runnable_blocks() -> list[tuple[str, bool, str]]:
    """(document, whether it is the quick start, code) of every block marked to run as written."""
    return [
        (f"{path.relative_to(ROOT)} block {index + 1}", bool(quick_start), code)
        for path in DOCUMENTS
        for index, (quick_start, code) in enumerate(RUNNABLE.findall(path.read_text(encoding="utf-8")))
    ]


def quick_start_block() -> str:
    (code,) = [code for _, quick_start, code in runnable_blocks() if quick_start]
    return code


def printed_top5(output: str) -> list[str]:
    """The list of names the quick start prints after `top-5:`."""
    return ast.literal_eval(output.split("top-5:")[1].strip())


def top5_names(id2label: dict[int, str], logits: torch.Tensor) -> list[str]:
    """The five most likely classes for the first sequence of a batch, by name."""
    return [id2label[i] for i in logits.topk(5).indices[0].tolist()]


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised pre-training checkpoint and its processor, as a released repository holds."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("pretrained"), MampForMaskedMotionPrediction)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised NTU-60 classifier and its processor."""
    folder = tmp_path_factory.mktemp("classifier")
    return save_tiny_checkpoint(folder, num_labels=60, id2label=get_id2label("ntu60"), classifier_head="finetune")


@pytest.fixture(scope="module")
def after_the_two_commands(tmp_path_factory) -> Path:
    """A working directory as the README's first command leaves it: `outputs/tiny_recipe/synthetic.npz` and the
    fine-tuned classifier of its classes in `outputs/tiny_recipe/finetune_mamp/` (here tiny and untrained)."""
    command = re.search(r"^python -m training\.tiny_recipe .*$", (ROOT / "README.md").read_text(), re.MULTILINE)
    output_dir = shlex.split(command.group(0).split("#")[0])[-1]
    # The recipe's own names for its data file and its fine-tuned stage.
    recipe = (ROOT / "training" / "tiny_recipe.py").read_text()
    assert '"synthetic.npz"' in recipe and '"finetune_mamp"' in recipe
    root = tmp_path_factory.mktemp("after_the_two_commands")
    (root / output_dir).mkdir(parents=True)
    data = write_synthetic_npz(root / output_dir / "synthetic.npz", num_samples=20, seed=0)
    id2label = NpzSkeletonDataset(data, split="test").id2label
    folder = root / output_dir / "finetune_mamp"
    save_tiny_checkpoint(folder, num_labels=len(id2label), id2label=id2label, classifier_head="finetune")
    return root


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
    outputs = run_saved(pretrained_dir, sequences, MampModel, layout="ntu_flat")
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
    outputs = run_saved(classifier_dir, dataset.sequences[:3], layout="ntu_flat")
    id2label = MampConfig.from_pretrained(classifier_dir).id2label
    expected = outputs.logits.softmax(dim=-1).topk(5)
    assert len(predictions) == 3
    for index, record in enumerate(predictions):
        assert record["index"] == index and record["true_action"] == dataset.id2label[dataset.labels[index]]
        names = [id2label[i] for i in expected.indices[index].tolist()]
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


@pytest.mark.parametrize(
    ("document", "quick_start", "code"), [pytest.param(*block, id=block[0]) for block in runnable_blocks()]
)
def test_documented_blocks_run_as_written_after_the_two_commands(
    document, quick_start, code, after_the_two_commands, monkeypatch, capsys
):
    monkeypatch.chdir(after_the_two_commands)
    exec(compile(code, document, "exec"), {"__name__": "__main__"})
    if not quick_start:
        return
    assert len(code.strip().splitlines()) <= 15, "the quick start should stay short"
    output = capsys.readouterr().out
    assert "features: (1, 32)" in output  # the tiny model's width; the tiny recipe's is 64
    checkpoint = re.search(r'^checkpoint = "([^"]+)"', code, re.MULTILINE).group(1)
    clip = np.load("outputs/tiny_recipe/synthetic.npz")["x_test"][0]
    outputs = run_saved(checkpoint, [clip])
    assert printed_top5(output) == top5_names(MampConfig.from_pretrained(checkpoint).id2label, outputs.logits)


def test_the_readme_and_docs_pipelines_have_their_runnable_blocks():
    """The marker that puts a block under test is on the quick start, the README's pipeline block and the
    pipeline page's (a marker lost in an edit would silently stop testing it)."""
    documents = [document.split(" block")[0] for document, _, _ in runnable_blocks()]
    assert documents.count("README.md") >= 2 and "docs/pipelines.md" in documents
    assert "outputs/tiny_recipe/finetune_mamp" in quick_start_block()


@pytest.mark.parametrize(
    "load",
    [MampConfig.from_pretrained, MampSkeletonProcessor.from_pretrained, MampForSkeletonClassification.from_pretrained],
    ids=["config", "processor", "model"],
)
def test_a_missing_local_folder_fails_at_once_naming_it(load, tmp_path, monkeypatch):
    """A name that only a folder can have is refused before transformers looks it up on the Hub (which, offline,
    retries for about 23 s per file and then blames the connection); transformers itself raises OSError there too."""
    monkeypatch.chdir(tmp_path)
    for name in ("outputs/tiny_recipe/finetune_mamp", "./converted/ntu60-xsub-finetune", "../elsewhere", "/no/such"):
        with pytest.raises(FileNotFoundError, match=re.escape(f"{name!r} is not a folder (looked in {tmp_path})")):
            load(name)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load(Path("converted") / "ntu60-xsub-finetune")  # a Path is a folder, whatever its shape


def test_a_name_that_could_be_a_hub_id_or_an_existing_folder_is_left_to_transformers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_local_folder("converted/ntu60-xsub-finetune")  # "<org>/<name>": looked up on the Hub
    check_local_folder("mamp-ntu60-xsub-finetune")
    (tmp_path / "a" / "b").mkdir(parents=True)
    check_local_folder("a/b/")
    check_local_folder(Path("a") / "b")


def test_newcomer_converts_an_official_checkpoint_then_runs_the_quick_start(reference, tmp_path, monkeypatch, capsys):
    """The README path from an authors' fine-tuned `.pth` to a prediction: the quick start runs on the folder that
    the README's `mamp-convert` line writes, which its `checkpoint` line names beside the tiny recipe's.

    The official file is the reference run's fine-tuned model in the authors' checkpoint layout; it has 4 heads
    and 7 classes, so the README's `mamp-convert` line runs with `--num-heads 4` and without `--id2label ntu60`.
    """
    monkeypatch.chdir(tmp_path)
    torch.save({"model": reference.state_dict("finetune")}, "finetune-checkpoint.pth")
    readme = (ROOT / "README.md").read_text()
    command = shlex.split(re.search(r"^mamp-convert finetune-checkpoint\.pth .*$", readme, re.MULTILINE).group(0))
    arguments = " ".join(command[1:]).replace("--num-heads 8", "--num-heads 4").replace(" --id2label ntu60", "")
    convert.main(arguments.split())
    converted = command[2]

    block = quick_start_block()
    line = re.search(r'^checkpoint = "([^"]+)".*$', block, re.MULTILINE)
    assert f'"{converted}"' in line.group(0), "the quick start names the converted folder beside the tiny recipe's"
    block = block.replace(f'"{line.group(1)}"', f'"{converted}"', 1)
    # The converted folder computes the authors' fine-tuned model: their logits on the reference input.
    model = MampForSkeletonClassification.from_pretrained(converted).eval()
    with torch.no_grad():
        logits = model(reference.skeleton_values).logits
    torch.testing.assert_close(logits, reference["finetune.logits"], atol=ATOL, rtol=0)

    Path("outputs/tiny_recipe").mkdir(parents=True)
    write_synthetic_npz("outputs/tiny_recipe/synthetic.npz", num_samples=20, seed=0)  # the clip the block reads
    exec(compile(block, "README.md quick start", "exec"), {"__name__": "__main__"})
    output = capsys.readouterr().out
    assert "features: (1, 32)" in output
    outputs = run_saved(converted, [np.load("outputs/tiny_recipe/synthetic.npz")["x_test"][0]])
    assert printed_top5(output) == top5_names(model.config.id2label, outputs.logits)
