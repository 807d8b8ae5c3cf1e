"""Batches raw skeleton items into model inputs with one processor call per batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..checks import checked, flag
from ..processing_mamp import MampSkeletonProcessor


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
        if not features:
            raise ValueError("Got an empty batch; pass at least one item.")
        sequences = [feature["skeleton_values"] for feature in features]
        layout = self.layout or self.processor.infer_layout(np.shape(sequences[0]))
        # The data sets count each sequence's valid frames once; counting again would read every frame.
        known = all("valid_frames" in feature for feature in features)
        valid_frames = [feature["valid_frames"] for feature in features] if known else None
        inputs = self.processor(
            sequences, training=self.training, layout=layout, generator=self.generator, valid_frames=valid_frames
        )

        output = {"skeleton_values": inputs["skeleton_values"], "present_persons": inputs["present_persons"]}
        if self.return_labels and "labels" in features[0]:
            output["labels"] = torch.tensor([int(feature["labels"]) for feature in features], dtype=torch.int64)
        return output
