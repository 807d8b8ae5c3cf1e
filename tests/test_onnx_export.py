"""ONNX export (`mamp_hub.tools.onnx_export`, `mamp-export-onnx`) and the ONNX Runtime example, on tiny models.

Each exported file is run by ONNX Runtime on batches of other sizes than the export's, with one-person clips (the
second slot all zeros), two-person clips and a mix, and compared with the PyTorch model's own forward.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_example, save_tiny_checkpoint, tiny_config

from mamp_hub import (
    MampForMaskedMotionPrediction,
    MampForSkeletonClassification,
    MampModel,
    MampSkeletonProcessor,
)
from mamp_hub.skeletons import get_id2label
from mamp_hub.skeletons.layouts import present_person_slots
from mamp_hub.tools import onnx_export
from mamp_hub.tools.onnx_export import (
    CONFIG_METADATA_KEY,
    EXPORT_BATCH_SIZE,
    INPUT_NAME,
    OUTPUT_NAMES,
    export_onnx,
    load_for_export,
    main,
)

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ATOL = 1e-4


def clips(batch_size: int, persons: str, seed: int = 0) -> torch.Tensor:
    """`(batch_size, 2, 16, 25, 3)` clips: `"one"` person each, `"two"` each, or a `"mix"` (every other one)."""
    values = torch.randn(batch_size, 2, 16, 25, 3, generator=torch.Generator().manual_seed(seed))
    if persons == "one":
        values[:, 1] = 0
    elif persons == "mix":
        values[::2, 1] = 0
    return values


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("classifier"), classifier_head="finetune")


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("pretrained"), MampForMaskedMotionPrediction, seed=1)


@pytest.fixture(scope="module")
def exported(classifier_dir, pretrained_dir, tmp_path_factory) -> dict[str, tuple[Path, torch.nn.Module]]:
    """The classifier exported by the console script, the pre-trained encoder by `export_onnx` (from train mode)."""
    folder = tmp_path_factory.mktemp("onnx")
    main([str(classifier_dir), str(folder / "classifier.onnx")])
    encoder = load_for_export(pretrained_dir).train()
    result = export_onnx(encoder, folder / "features.onnx")
    assert encoder.training, "the model is left in the mode it was in"
    assert result.task == "features" and max(result.max_abs_difference.values()) <= ATOL
    return {
        "classification": (folder / "classifier.onnx", load_for_export(classifier_dir)),
        "features": (folder / "features.onnx", encoder.eval()),
    }


@pytest.mark.parametrize("task", ["classification", "features"])
def test_onnx_runtime_matches_pytorch_on_other_batch_sizes_and_person_mixes(exported, task):
    path, model = exported[task]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    assert graph_input.name == INPUT_NAME and graph_input.shape == ["batch", 2, 16, 25, 3]
    assert [output.name for output in session.get_outputs()] == list(OUTPUT_NAMES[task])
    for batch_size in (1, EXPORT_BATCH_SIZE + 3):
        for persons in ("one", "two", "mix"):
            skeletons = clips(batch_size, persons, seed=batch_size)
            outputs = session.run(None, {INPUT_NAME: skeletons.numpy()})
            # PyTorch on every slot, and skipping the absent ones as it does given the processor's present_persons.
            with torch.no_grad():
                every_slot = model(skeletons)
                skipping = model(skeletons, present_persons=present_person_slots(skeletons))
            for name, output in zip(OUTPUT_NAMES[task], outputs, strict=True):
                for expected in (every_slot, skipping):
                    np.testing.assert_allclose(output, expected[name].numpy(), rtol=0, atol=ATOL, err_msg=name)


def test_the_file_carries_the_config(exported):
    session = onnxruntime.InferenceSession(str(exported["classification"][0]), providers=["CPUExecutionProvider"])
    config = json.loads(session.get_modelmeta().custom_metadata_map[CONFIG_METADATA_KEY])
    assert config["model_type"] == "mamp" and len(config["id2label"]) == 7 and config["hidden_size"] == 32


def test_auto_task_and_the_encoder_of_a_classifier(classifier_dir, pretrained_dir):
    assert type(load_for_export(classifier_dir)) is MampForSkeletonClassification
    assert type(load_for_export(classifier_dir, "features")) is MampModel
    assert type(load_for_export(pretrained_dir)) is MampModel


def run_failing(argv: list[str], capsys, monkeypatch) -> str:
    """The last stderr line of a refused `mamp-export-onnx` call (exit status 2)."""
    monkeypatch.delenv("MAMP_HUB_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]  # after transformers' progress bars, if it loaded the model
    assert error.startswith("mamp-export-onnx: error: ")
    return error


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_config", "has no config.json"),
        ("not_mamp", "describes a 'bert' model"),
        ("missing_output_folder", "does not exist"),
        ("classification_of_pretrained", "no classification head; pass --task features"),
        ("negative_opset", "opset_version must be an integer between 18 and"),
        ("nan_atol", "atol must be a difference >= 0, got nan"),
    ],
)
def test_console_script_refusals(case, expected, pretrained_dir, tmp_path, capsys, monkeypatch):
    model_dir, output, extra = pretrained_dir, tmp_path / "model.onnx", []
    if case == "no_config":
        model_dir = tmp_path
    elif case == "not_mamp":
        model_dir = tmp_path / "bert"
        model_dir.mkdir()
        (model_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))
    elif case == "missing_output_folder":
        output = tmp_path / "missing" / "model.onnx"
    elif case == "negative_opset":
        extra = ["--opset", "-3"]
    elif case == "nan_atol":
        extra = ["--atol", "nan"]
    else:
        extra = ["--task", "classification"]
    assert expected in run_failing([str(model_dir), str(output), *extra], capsys, monkeypatch)
    assert not output.exists()


def test_without_onnxruntime_verification_is_refused_unless_skipped(pretrained_dir, tmp_path, capsys, monkeypatch):
    find_spec = onnx_export.importlib.util.find_spec
    monkeypatch.setattr(
        onnx_export.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else find_spec(name)
    )
    output = tmp_path / "model.onnx"
    error = run_failing([str(pretrained_dir), str(output)], capsys, monkeypatch)
    assert "needs onnxruntime" in error and "--no-verify" in error and not output.exists()

    main([str(pretrained_dir), str(output), "--no-verify"])
    assert output.is_file() and "not verified" in capsys.readouterr().out


def test_an_export_that_differs_from_pytorch_fails(classifier_dir, tmp_path, capsys, monkeypatch):
    """A graph whose logits are off by 1e-3 (a stand-in for a wrong export) is refused with exit status 2."""
    forward = onnx_export.MampOnnxModule.forward

    def shifted(self, skeleton_values):
        logits, pooler_output = forward(self, skeleton_values)
        return logits + 1e-3, pooler_output

    monkeypatch.setattr(onnx_export.MampOnnxModule, "forward", shifted)
    error = run_failing([str(classifier_dir), str(tmp_path / "model.onnx")], capsys, monkeypatch)
    assert "logits differs from PyTorch's by 1.00e-03, more than atol=0.0001" in error


def test_models_that_cannot_be_exported(tmp_path):
    with pytest.raises(TypeError, match=r"pass its encoder, model.mamp"):
        export_onnx(MampForMaskedMotionPrediction(tiny_config()), tmp_path / "model.onnx")
    with pytest.raises(TypeError, match=r"float32 model, got torch.bfloat16"):
        export_onnx(MampModel(tiny_config()).to(torch.bfloat16), tmp_path / "model.onnx")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        export_onnx(MampModel(tiny_config()), tmp_path)


def test_example_exports_a_tiny_classifier_and_runs_it_with_onnx_runtime(tmp_path, capsys):
    result = load_example("onnx_inference").main(["--output-dir", str(tmp_path)])
    output = capsys.readouterr().out
    assert result["features"].shape == (10, 64) and len(result["top_k"]) == 10
    names = set(get_id2label("ntu60").values())
    assert all(len(top) == 5 and {name for name, _ in top} <= names for top in result["top_k"])
    assert "(2 persons)" in output and "ONNX Runtime vs PyTorch" in output
    assert (tmp_path / "model.onnx").is_file()


def test_processor_output_runs_as_is(exported):
    """What deployment code passes: the processor's numpy output, straight into the session."""
    path, model = exported["features"]
    processor = MampSkeletonProcessor(num_frames=16)
    sequence = np.random.default_rng(0).normal(size=(40, 25, 3)).astype(np.float32)
    inputs = processor([sequence, sequence[:30]], return_tensors="np")
    skeleton_values = inputs[INPUT_NAME]  # the graph's one input: present_persons is for PyTorch's skip
    np.testing.assert_array_equal(present_person_slots(torch.from_numpy(skeleton_values)), inputs["present_persons"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (features,) = session.run(["pooler_output"], {INPUT_NAME: skeleton_values})
    with torch.no_grad():
        expected = model(torch.from_numpy(skeleton_values)).pooler_output.numpy()
    np.testing.assert_allclose(features, expected, rtol=0, atol=ATOL)


def test_bench_onnx_prints_a_table_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_onnx

    path = tmp_path / "onnx.json"
    bench_onnx.main(
        ["--tasks", "features", "--batch-sizes", "1,3", "--num-frames", "16", "--hidden-size", "32", "--layers", "1",
         "--warmup", "0", "--repeats", "1", "--json", str(path)]
    )  # fmt: skip
    rows = json.loads(path.read_text())["results"]
    assert [(row["implementation"], row["items_per_call"]) for row in rows] == [
        ("PyTorch", 1), ("PyTorch", 1), ("ONNX Runtime", 1), ("PyTorch", 3), ("PyTorch", 3), ("ONNX Runtime", 3)
    ]  # fmt: skip
    assert all(row["throughput"] > 0 and row["unit"] == "clips/s" for row in rows)
    assert "| feature extraction | 3 | ONNX Runtime | float32, every person slot |" in capsys.readouterr().out
