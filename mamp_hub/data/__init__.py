"""Skeleton data: data sets for `Trainer`, the data collator, preparation of the benchmark files.

Preparation from raw downloads lives in `mamp_hub.data.prepare_ntu` and `mamp_hub.data.prepare_pku`
(console scripts `mamp-prepare-ntu`, `mamp-prepare-pku`); `mamp_hub.data.synthetic` generates a SYNTHETIC
stand-in for NTU RGB+D (`mamp-synthetic`) for demos and tests.
"""

from .collator import SkeletonDataCollator
from .datasets import (
    ArraySkeletonDataset,
    NpzSkeletonDataset,
    NpzWriter,
    NTUSkeletonDataset,
    PKUMMDSkeletonDataset,
    load_npz,
    realign_npz,
    semi_supervised_indices,
    semi_supervised_subset,
)

__all__ = [
    "ArraySkeletonDataset",
    "NpzSkeletonDataset",
    "NpzWriter",
    "NTUSkeletonDataset",
    "PKUMMDSkeletonDataset",
    "SkeletonDataCollator",
    "load_npz",
    "realign_npz",
    "semi_supervised_indices",
    "semi_supervised_subset",
]
