"""Every public option and array is checked for its type: a string, float or bool never stands in for a flag or a
count (`bool("False")` is True), a complex or string array is never cast, and the error names what was wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config
from transformers import pipeline

from mamp_hub import MampForSkeletonClassification, MampModel, MampSkeletonProcessor
from mamp_hub.data import ArraySkeletonDataset, SkeletonDataCollator, load_npz, semi_supervised_indices
from mamp_hub.metrics import top_k_accuracy
from mamp_hub.skeletons import get_id2label, ntu_joint_recipes, to_ntu
from mamp_hub.skeletons.layouts import count_valid_frames
from mamp_hub.tools.onnx_export import export_onnx, verification_batch

CLIP = np.random.default_rng(0).normal(size=(30, 25, 3)).astype(np.float32)
H36M = np.random.default_rng(0).normal(size=(30, 17, 3))
PROCESSOR = MampSkeletonProcessor(num_frames=16)
REAL = "must hold real coordinates"

CASES = [
    # the processor's call options and inputs
    (lambda: PROCESSOR(CLIP, training="False"), r"`training` must be True or False, got 'False'"),
    (lambda: PROCESSOR(CLIP, training=True, generator=3), "`generator` must be a torch.Generator, got int"),
    (lambda: PROCESSOR(CLIP, training=True, seed="3"), "`seed` must be an integer, got '3'"),
    (lambda: PROCESSOR.resolve_layout(CLIP.shape, batched="no"), "`batched` must be True or False, got 'no'"),
    (lambda: PROCESSOR(CLIP > 0), f"{REAL} .*got an array of dtype bool"),
    (lambda: PROCESSOR(torch.from_numpy(CLIP).to(torch.complex64)), f"{REAL} .*dtype complex64"),
    (lambda: PROCESSOR([CLIP, CLIP.astype(str)]), f"Sequence 1 {REAL} .*dtype <U"),
    (lambda: PROCESSOR({"clip": CLIP}), f"{REAL} .*got a dict"),
    # conversion from other skeleton sources
    (lambda: to_ntu(H36M.astype(np.complex128), "h36m"), f"joints {REAL} .*dtype complex128"),
    (lambda: to_ntu(H36M.astype(str), "h36m"), f"joints {REAL} .*dtype <U"),
    (lambda: to_ntu(torch.zeros(17, 3, dtype=torch.bool), "h36m"), f"joints {REAL} .*dtype bool"),
    (lambda: to_ntu(H36M, ["h36m"]), r"Unknown skeleton source \['h36m'\]"),
    (lambda: ntu_joint_recipes(17), "Unknown skeleton source 17"),
    (lambda: get_id2label(["ntu60"]), r"Unknown data set \['ntu60'\]"),
    (lambda: count_valid_frames(np.zeros((30, 150), np.complex64)), f"sequence {REAL} .*complex64"),
    # data sets, collator, metrics
    (lambda: ArraySkeletonDataset("clips.npy", [0]), "sequences is of type str"),
    (lambda: ArraySkeletonDataset(np.zeros((2, 30, 150)), [0, 1], id2label=["a", "b"]), "id2label is of type list"),
    (lambda: SkeletonDataCollator(PROCESSOR, training="yes"), "`training` must be True or False, got 'yes'"),
    (lambda: SkeletonDataCollator(PROCESSOR, return_labels=1), "`return_labels` must be True or False, got 1"),
    (lambda: SkeletonDataCollator(None), "processor is of type NoneType"),
    (lambda: load_npz("data.npz", keys="x_train"), r"keys='x_train' is one string; pass a list .*\['x_train'\]"),
    (lambda: semi_supervised_indices("100", 0.1), "`num_samples` must be a positive integer, got '100'"),
    (lambda: semi_supervised_indices(100, True), "`ratio` must be in .*got True"),
    (lambda: semi_supervised_indices(100, 0.1, seed=0.5), "`seed` must be an integer, got 0.5"),
    (lambda: top_k_accuracy(np.zeros((3, 5)), np.zeros(3, int), ks="15"), "`ks` must be a list .*got '15'"),
    (lambda: top_k_accuracy(np.zeros((3, 5)), np.zeros(3, int), ks=(1, 2.5)), "`ks` must be .*got 2.5"),
    # ONNX export, refused before anything is written
    (lambda: export_onnx(MampModel(tiny_config()), "m.onnx", opset_version="18"), "opset_version .*got '18'"),
    (lambda: export_onnx(MampModel(tiny_config()), "m.onnx", opset_version=18.0), "opset_version .*got 18.0"),
    (lambda: export_onnx(MampModel(tiny_config()), "m.onnx", atol="1e-4"), "atol .*got '1e-4'"),
    (lambda: export_onnx(MampModel(tiny_config()), "m.onnx", verify="no"), "`verify` must be True or False"),
    (lambda: export_onnx(MampModel(tiny_config()), 5), "output_path is of type int"),
    (lambda: verification_batch(tiny_config(), batch_size="2"), "`batch_size` must be a positive integer, got '2'"),
]


@pytest.mark.parametrize(("call", "message"), CASES)
def test_a_value_of_the_wrong_type_is_refused_by_name(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        call()
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifier")
    MampForSkeletonClassification(tiny_config(classifier_head="finetune")).save_pretrained(folder)
    MampSkeletonProcessor(num_frames=16).save_pretrained(folder)
    return pipeline("skeleton-feature-extraction", model=str(folder))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool": "False"}, "`pool` must be True or False, got 'False'"),
        ({"return_tensors": 1}, "`return_tensors` must be True or False, got 1"),
        ({"joint_layout": 17}, "`joint_layout` must be 'ntu' or a skeleton source"),
        ({"pool": True, "layout": 3}, "Unknown layout 3"),
    ],
)
def test_pipeline_options_of_the_wrong_type_are_refused_by_name(embedder, options, message):
    with pytest.raises(ValueError, match=message):
        embedder(CLIP, **options)
