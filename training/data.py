"""The `data` section of a recipe -> training and test sets, and the processor that turns their items into inputs.

data:
  dataset: ntu | pku | npz          # NTU RGB+D / PKU-MMD class names, or those the file holds (any .npz)
  path: data/ntu/NTU60_XSub.npz     # the standard .npz file (x_train, y_train, x_test, y_test)
  train_fraction: 1.0               # semi-supervised protocols: 0.01 or 0.1 of the labelled training clips
  subset_seed: 0                    # which clips those are (the authors' feeder: the run seed + the rank)
  subset_processes: 1               # train on the subsets of this many processes, as the authors' 2-process
                                    # runs did (each drew its own with subset_seed + rank): training/sampling.py
  processor: {}                     # MampSkeletonProcessor options (crop ratios, rotation)
  device_transform: auto            # the training transform where the batch is trained (a GPU), not in the
                                    # loader workers; auto: on any device but the CPU (see `training_collator`)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch.utils.data import Dataset

from mamp_hub import MampConfig
from mamp_hub.data import (
    NpzSkeletonDataset,
    NTUSkeletonDataset,
    PaddedSkeletonCollator,
    PKUMMDSkeletonDataset,
    SkeletonDataCollator,
    semi_supervised_subset,
)
from mamp_hub.processing_mamp import MampSkeletonProcessor

from .sampling import process_subsets

NPZ_DATASETS = {"ntu": NTUSkeletonDataset, "pku": PKUMMDSkeletonDataset, "npz": NpzSkeletonDataset}


def build_datasets(data_config: Mapping[str, Any]) -> tuple[Dataset, Dataset, dict[int, str]]:
    """Training set (the labelled fraction of it when `train_fraction` < 1), test set, and class names.

    With `subset_processes` > 1 the training set is a `ProcessSubsets`, the union of the processes' subsets, which
    the recipe's trainer samples with `PerProcessSubsetSampler`.
    """
    kind = data_config.get("dataset")
    if kind not in NPZ_DATASETS:
        raise ValueError(f"data.dataset must be one of {list(NPZ_DATASETS)}, got {kind!r}.")
    if not data_config.get("path"):
        raise ValueError(
            "data.path is required: the .npz file written by mamp-prepare-ntu, mamp-prepare-pku or mamp-synthetic "
            "(e.g. data.path=data/ntu/NTU60_XSub.npz)."
        )
    train, test = (NPZ_DATASETS[kind](data_config["path"], split=split) for split in ("train", "test"))
    id2label = dict(train.id2label)
    fraction = float(data_config.get("train_fraction", 1.0))
    processes, seed = int(data_config.get("subset_processes", 1)), int(data_config.get("subset_seed", 0))
    if processes < 1:
        raise ValueError(f"data.subset_processes must be at least 1 (the authors' runs: 2), got {processes}.")
    if processes != 1 and fraction >= 1.0:
        raise ValueError(
            f"data.subset_processes={processes} samples per-process subsets of the training clips, but "
            f"data.train_fraction={fraction} keeps them all; set a fraction below 1 or subset_processes=1."
        )
    if fraction < 1.0:
        if processes == 1:
            train = semi_supervised_subset(train, fraction, seed=seed)
        else:
            train = process_subsets(train, fraction, seed=seed, processes=processes)
    return train, test, id2label


def build_processor(data_config: Mapping[str, Any], model_config: MampConfig) -> MampSkeletonProcessor:
    """The processor for `model_config`'s input size, with the recipe's crop and rotation options."""
    return MampSkeletonProcessor(
        num_frames=model_config.num_frames,
        num_joints=model_config.num_joints,
        num_channels=model_config.num_channels,
        max_persons=model_config.max_persons,
        **data_config.get("processor", {}),
    )


def training_collator(
    data_config: Mapping[str, Any], processor: MampSkeletonProcessor, return_labels: bool, device_type: str
) -> SkeletonDataCollator | PaddedSkeletonCollator:
    """The collator of training batches on `device_type` ("cuda", "cpu", ...): `data.device_transform` true (or
    "auto", the default, on any device but the CPU) stacks padded rows in the loader and runs the random crop, resize
    and rotation in the training step where the batch lives (`PaddedSkeletonCollator`, the same numbers for the same
    draws); false runs them in the loader workers (`SkeletonDataCollator`)."""
    device_transform = data_config.get("device_transform", "auto")
    if device_transform not in (True, False, "auto"):
        raise ValueError(f"data.device_transform must be true, false or auto, got {device_transform!r}.")
    if device_transform is True or (device_transform == "auto" and device_type != "cpu"):
        return PaddedSkeletonCollator(processor, return_labels=return_labels)
    return SkeletonDataCollator(processor, training=True, return_labels=return_labels)
