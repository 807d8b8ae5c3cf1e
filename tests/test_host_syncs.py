"""No host synchronisation in a training step: the device-side transform, the forward, the loss and the backward of
pre-training and classification never read a value of the device on the host, so a GPU never idles waiting for
Python.

Without a GPU the step runs on the meta device, where tensors have shapes but no values: every host read fails
there (`item`, `bool`, `tolist`, `numpy`), the model's input checks skip their value checks as on any device that is
not the CPU, and `HostReads` names the aten op behind a read or a value-dependent shape (`nonzero`, boolean-mask
indexing, `unique`, ...) with the line of mamp_hub that called it. With a GPU the same steps also run under
`torch.cuda.set_sync_debug_mode("error")`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import numpy as np
import pytest
import torch
from conftest import tiny_config
from torch.utils._python_dispatch import TorchDispatchMode

from mamp_hub import MampForMaskedMotionPrediction, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data import PaddedSkeletonCollator

aten = torch.ops.aten
# Ops whose result the host must wait for: a value read, or an output shape that depends on values.
READS_A_VALUE = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.equal.default}
VALUE_DEPENDENT_SHAPE = {
    aten.nonzero.default,
    aten.masked_select.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.repeat_interleave.Tensor,
}
MASK_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}


class HostRead(AssertionError):
    pass


class HostReads(TorchDispatchMode):
    """Raises `HostRead` at the first op of the block that would make the host wait for the device, naming the op and
    the line of mamp_hub that called it."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.reads_the_device(func, args, kwargs):
            caller = [frame for frame in traceback.extract_stack() if "mamp_hub" in frame.filename]
            where = f"{caller[-1].filename}:{caller[-1].lineno} ({caller[-1].line})" if caller else "outside mamp_hub"
            raise HostRead(f"{func} waits for the device, called at {where}")
        return func(*args, **kwargs)

    @staticmethod
    def reads_the_device(func, args, kwargs) -> bool:
        if func in READS_A_VALUE or func in VALUE_DEPENDENT_SHAPE:
            return not (func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is not None)
        if func in MASK_INDEXING:
            indices = args[1] if len(args) > 1 else kwargs.get("indices", [])
            return any(index is not None and index.dtype in (torch.bool, torch.uint8) for index in indices)
        if func is aten._to_copy.default:  # to the host
            return args[0].device.type != "cpu" and torch.device(kwargs.get("device") or args[0].device).type == "cpu"
        return False


def padded_batch(num_frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A loader batch of `PaddedSkeletonCollator`: 4 clips of 20-300 valid frames, one with two persons."""
    rng = np.random.default_rng(seed)
    items = []
    for index, valid in enumerate([300, 20, 150, 64]):
        rows = np.zeros((300, 2, 75), dtype=np.float32)
        rows[:valid, : 1 + (index == 2)] = rng.normal(size=(valid, 1 + (index == 2), 75))
        items.append({"skeleton_values": rows.reshape(300, 150), "valid_frames": valid, "labels": index % 2})
    return PaddedSkeletonCollator(MampSkeletonProcessor(num_frames=num_frames), layout="ntu_flat")(items)


def training_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], device: str) -> Callable[[], None]:
    """The work of one step on `device` after the loader: transform, forward, loss, backward."""
    model.to(device).train()
    collator = PaddedSkeletonCollator(MampSkeletonProcessor(num_frames=model.config.num_frames))
    batch = {key: value.to(device) for key, value in batch.items()}
    if not isinstance(model, MampForSkeletonClassification):
        batch.pop("labels")

    def step() -> None:
        model(**collator.model_inputs(batch)).loss.backward()

    return step


FINETUNE_HEAD = {"classifier_head": "finetune", "label_smoothing": 0.1}
MODELS = {
    "pretraining": lambda: MampForMaskedMotionPrediction(tiny_config()),
    "pretraining-skip-absent": lambda: MampForMaskedMotionPrediction(tiny_config(pretraining_skip_absent_persons=True)),
    "skeletonmae": lambda: MampForMaskedMotionPrediction(
        tiny_config(masking_strategy="random", pretraining_target="joints")
    ),
    "finetune": lambda: MampForSkeletonClassification(
        tiny_config(**FINETUNE_HEAD, num_labels=2, drop_path_rate=0.1, classifier_batch_norm_group_size=2)
    ),
    "linear-probe": lambda: MampForSkeletonClassification(tiny_config(num_labels=2)),
}


@pytest.mark.parametrize("name", MODELS)
def test_no_host_read_in_a_training_step(name):
    model = MODELS[name]()
    if name == "linear-probe":
        model.freeze_encoder()
    step = training_step(model, padded_batch(model.config.num_frames), "meta")
    with HostReads():
        step()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_host_reads_are_caught():
    """The check can fail: skipping absent persons without the loader's `present_persons` finds them in the input,
    with a `nonzero` (the documented cost of leaving them out), and a value read fails on the meta device."""
    model = MampForMaskedMotionPrediction(tiny_config(pretraining_skip_absent_persons=True)).to("meta")
    skeletons = torch.zeros(2, 2, 16, 25, 3, device="meta")
    with (
        pytest.raises(HostRead, match=r"aten.nonzero.default waits for the device, called at .*layouts.py"),
        HostReads(),
    ):
        model(skeletons)
    with pytest.raises(HostRead, match="_local_scalar_dense"), HostReads():
        skeletons.sum().item()
    with pytest.raises(HostRead, match=r"aten.index.Tensor"), HostReads():
        skeletons[skeletons > 0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", MODELS)
def test_no_synchronisation_on_a_gpu(name):
    model = MODELS[name]()
    step = training_step(model, padded_batch(model.config.num_frames), "cuda")
    step()  # first calls initialise cuBLAS and the allocator, which may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
