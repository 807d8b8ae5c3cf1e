"""The recipes' GPU switches, run on the CPU: the training transform in the training step (`data.device_transform`),
fused optimizers (`optimizer.fused`), and bf16 autocast with `torch.compile` (`trainer.bf16`, `trainer.torch_compile`)
through the same `python -m training` code."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import pretrain_recipe, tiny_config

import mamp_hub.data.collator
from mamp_hub import MampForMaskedMotionPrediction, MampSkeletonProcessor
from mamp_hub.data import PaddedSkeletonCollator, SkeletonDataCollator
from training.data import training_collator
from training.optimization import optimizer_class_and_kwargs
from training.recipe import run


def test_device_transform_is_on_where_the_batch_is_trained_on_an_accelerator():
    processor = MampSkeletonProcessor()
    for setting, device, expected in [
        ("auto", "cuda", PaddedSkeletonCollator),
        ("auto", "cpu", SkeletonDataCollator),
        (True, "cpu", PaddedSkeletonCollator),
        (False, "cuda", SkeletonDataCollator),
    ]:
        collator = training_collator({"device_transform": setting}, processor, return_labels=False, device_type=device)
        assert type(collator) is expected and not collator.return_labels, (setting, device)
    assert type(training_collator({}, processor, True, "cuda")) is PaddedSkeletonCollator  # the default is auto
    with pytest.raises(ValueError, match=r"data.device_transform must be true, false or auto, got 'gpu'"):
        training_collator({"device_transform": "gpu"}, processor, True, "cuda")


def test_fused_optimizers_on_accelerators():
    model = MampForMaskedMotionPrediction(tiny_config())
    adamw = {"name": "adamw", "betas": [0.9, 0.95]}
    assert optimizer_class_and_kwargs(model, adamw, 1e-3, "cuda")[1]["fused"] is True
    assert "fused" not in optimizer_class_and_kwargs(model, adamw, 1e-3, "cpu")[1]  # the default: auto
    assert "fused" not in optimizer_class_and_kwargs(model, {**adamw, "fused": False}, 1e-3, "cuda")[1]
    sgd_class, sgd = optimizer_class_and_kwargs(model, {"name": "sgd", "fused": True}, 0.1, "cpu")
    optimizer = sgd_class(**sgd)  # PyTorch has fused SGD and AdamW kernels for CPUs too
    assert optimizer.defaults["fused"] is True
    with pytest.raises(ValueError, match=r"optimizer.fused must be true, false or auto, got 'yes'"):
        optimizer_class_and_kwargs(model, {**adamw, "fused": "yes"}, 1e-3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.device_transform=gpu", r"data.device_transform must be true or false or one of \['auto'\], got 'gpu'"),
        ("optimizer.fused=1", r"optimizer.fused must be true or false or one of \['auto'\], got 1"),
    ],
)
def test_bad_switch_values_are_refused_with_the_key(tmp_path, synthetic_npz, override, message):
    with pytest.raises(ValueError, match=message):
        pretrain_recipe(synthetic_npz, tmp_path, override)


def test_a_recipe_with_the_device_transform_trains(tmp_path, synthetic_npz, monkeypatch):
    """`data.device_transform=true` on the CPU: the loader yields padded rows, the training step transforms them."""
    calls = []
    transform = mamp_hub.data.collator.transform_padded_batch
    monkeypatch.setattr(
        mamp_hub.data.collator, "transform_padded_batch", lambda *args: calls.append(args[1].shape) or transform(*args)
    )
    metrics = run(pretrain_recipe(synthetic_npz, tmp_path, "data.device_transform=true", "optimizer.fused=true"))
    steps = json.loads((tmp_path / "trainer_state.json").read_text())["global_step"]
    assert len(calls) == steps == 3 and all(shape[0] == 16 and shape[2] == 150 for shape in calls)
    assert math.isfinite(metrics["train_loss"])


@pytest.mark.slow
def test_bf16_and_torch_compile_recipe(tmp_path, synthetic_npz):
    """bf16 autocast and a compiled model (inductor on the CPU here) train, and the saved model loads in float32."""
    overrides = ["trainer.bf16=true", "trainer.torch_compile=true", "data.device_transform=true"]
    metrics = run(pretrain_recipe(synthetic_npz, tmp_path, *overrides, "schedule.epochs=2"))
    assert math.isfinite(metrics["train_loss"])
    losses = [
        e["loss"] for e in json.loads((tmp_path / "trainer_state.json").read_text())["log_history"] if "loss" in e
    ]
    assert len(losses) == 6 and all(map(math.isfinite, losses))
    model = MampForMaskedMotionPrediction.from_pretrained(tmp_path)
    assert model.dtype == torch.float32 and model.config.hidden_size == 32
