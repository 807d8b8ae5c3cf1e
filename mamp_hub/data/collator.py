"""Batches raw skeleton items into model inputs: with one processor call per batch in the data loader
(`SkeletonDataCollator`), or as zero-padded rows whose transform runs later where the batch lives, e.g. on the GPU in
the training step (`PaddedSkeletonCollator`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..checks import checked, flag
from ..processing_mamp import MampSkeletonProcessor, _check_finite
from ..transforms import transform_padded_batch


@dataclass
class SkeletonDataCollator:
    """`data_collator` for `Trainer` / `DataLoader(collate_fn=...)` over the skeleton data sets.

    Hands the items' raw sequences to `processor` as one list (their lengths may differ; nothing is stacked
    or padded, so rows of a memory map are read in place), with their `valid_frames` when every item has them,
    and returns
    `{"skeleton_values": (B, M, T, V, C) float32, "present_persons": (P,) int64, "labels": (B,) int64}`
    (`present_persons`: the person slots that hold a skeleton, for the models' absent-person skip; `labels` only when
    items have them and `return_labels`).

    `Trainer` uses one collator for training and evaluation; to train with the random crop and evaluate with
    the central crop, give its training dataloader a collator with `training=True` and its evaluation
    dataloader one with `training=False`.

    Args:
        processor: the `MampSkeletonProcessor` saved with the model.
        training: random crop and rotation (True) or the central evaluation crop (False).
        layout: layout of one item's sequence (pass the data set's `layout`); inferred from the first item's
            shape when None.
        generator: optional torch generator for the training randomness (default: torch's global generator,
            which `DataLoader` seeds per worker).
        return_labels: whether to return the items' labels; False for pre-training, whose model takes none.
    """

    processor: MampSkeletonProcessor
    training: bool = False
    layout: str | None = None
    generator: torch.Generator | None = None
    return_labels: bool = True

    def __post_init__(self) -> None:
        if not callable(self.processor):
            raise ValueError(
                f"processor is of type {type(self.processor).__name__}; pass the MampSkeletonProcessor saved with the model."
            )
        self.training = checked("training", flag, self.training)
        self.return_labels = checked("return_labels", flag, self.return_labels)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences, layout, valid_frames = _unpack(features, self.processor, self.layout)
        inputs = self.processor(
            sequences, training=self.training, layout=layout, generator=self.generator, valid_frames=valid_frames
        )
        output = {"skeleton_values": inputs["skeleton_values"], "present_persons": inputs["present_persons"]}
        return _with_labels(output, features, self.return_labels)


def _unpack(
    features: list[dict[str, Any]], processor: MampSkeletonProcessor, layout: str | None
) -> tuple[list[Any], str, list[int] | None]:
    """The items' sequences, their layout (`layout`, or inferred from the first), and their valid-frame counts when
    every item has one (the data sets count each sequence once; counting again would read every frame)."""
    if not features:
        raise ValueError("Got an empty batch; pass at least one item.")
    sequences = [feature["skeleton_values"] for feature in features]
    layout = layout or processor.infer_layout(np.shape(sequences[0]))
    known = all("valid_frames" in feature for feature in features)
    return sequences, layout, [feature["valid_frames"] for feature in features] if known else None


def _with_labels(output: dict[str, torch.Tensor], features: list[dict[str, Any]], wanted: bool) -> dict:
    """`output` with the items' `labels` (B,) int64 when `wanted` and the items have them."""
    if wanted and "labels" in features[0]:
        output["labels"] = torch.tensor([int(feature["labels"]) for feature in features], dtype=torch.int64)
    return output


@dataclass
class PaddedSkeletonCollator:
    """Training batches whose transform (random crop, resize, rotation) runs where the batch lives, e.g. on a GPU.

    The data-loader side (`__call__`) only stacks the items' time-major NTU rows, zero-padded to the longest valid
    count of the batch, so that workers do no per-sample arithmetic and no device ever waits on them; the training
    step then calls `model_inputs` on the batch, on its device, which runs `transform_padded_batch`: the
    processor's own crop, resize and rotation code, with its draws (the same generator state gives the processor's
    output, to float32 rounding). `SkeletonTrainer` calls `model_inputs` itself when this is its `data_collator`.

    `__call__` returns `{"sequences": (B, T, F) float32, "valid_frames": (B,) int64, "present_persons": (P,) int64,
    "labels": (B,) int64}` with F = max_persons * num_joints * num_channels. `present_persons` are the person slots
    that hold a skeleton in some valid frame, counted here so that the model need not read the device: they are the
    processor's (the slots of the cropped output) unless a person appears only in frames the crop leaves out, whose
    slot then trains as an empty one under `pretraining_skip_absent_persons` (the only user of `present_persons` in
    training).

    Args:
        processor: the `MampSkeletonProcessor` saved with the model; its training options apply.
        layout: layout of one item's sequence (pass the data set's `layout`); inferred from the first item's shape
            when None.
        generator: generator of the batches' device for the random draws (default: torch's global one there).
        return_labels: whether to return the items' labels; False for pre-training, whose model takes none.
    """

    processor: MampSkeletonProcessor
    layout: str | None = None
    generator: torch.Generator | None = None
    return_labels: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.processor, MampSkeletonProcessor):
            raise ValueError(
                f"processor is of type {type(self.processor).__name__}; pass the MampSkeletonProcessor saved with the "
                "model."
            )
        self.return_labels = checked("return_labels", flag, self.return_labels)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences, layout, valid_frames = _unpack(features, self.processor, self.layout)
        # The processor's own reading and valid-frame steps: the same items are accepted, or refused, alike.
        samples = self.processor._read(sequences, layout)
        valid_frames = self.processor._valid_frames(samples, valid_frames)
        # At least one frame: an all-zero sequence reads its first (zero) frame.
        padded = np.empty((len(samples), max(valid_frames.max(), 1), samples[0].shape[1]), dtype=np.float32)
        for rows, sample, valid in zip(padded, samples, valid_frames, strict=True):
            rows[:valid] = sample[:valid]
            rows[valid:] = 0
        sequences = torch.from_numpy(padded)
        slots = sequences.view(*padded.shape[:2], self.processor.max_persons, -1)  # (B, T, M, V * C)
        # Each slot's largest and smallest value (B, M), NaN and infinities included, tell whether it holds a
        # skeleton (it is all zeros iff both are zero) and whether it is finite: two passes, no temporary array.
        largest, smallest = slots.amax(dim=(1, 3)), slots.amin(dim=(1, 3))
        if not (largest.isfinite() & smallest.isfinite()).all():
            _check_finite(slots.transpose(1, 2))  # names the slots
        present = (largest != 0) | (smallest != 0)
        output = {
            "sequences": sequences,
            "valid_frames": torch.from_numpy(valid_frames.astype(np.int64)),
            "present_persons": present.flatten().nonzero().flatten(),
        }
        return _with_labels(output, features, self.return_labels)

    def model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A batch of `__call__`, moved to its device, -> the model's inputs there (`skeleton_values` instead of
        `sequences` and `valid_frames`), without reading a value on the host."""
        inputs = {key: value for key, value in batch.items() if key not in ("sequences", "valid_frames")}
        inputs["skeleton_values"] = transform_padded_batch(
            self.processor, batch["sequences"], batch["valid_frames"], self.generator
        )
        return inputs
