"""Skeleton data: data sets for `Trainer`, the data collator, the `.npz` files, preparation of the benchmark files.

The data sets are in `mamp_hub.data.datasets`, the `.npz` reading and writing in `mamp_hub.data.npz`.
Preparation from raw downloads lives in `mamp_hub.data.prepare_ntu` and `mamp_hub.data.prepare_pku`
(console scripts `mamp-prepare-ntu`, `mamp-prepare-pku`; what they share is in `mamp_hub.data.preparation`);
`mamp_hub.data.synthetic` generates a SYNTHETIC stand-in for NTU RGB+D (`mamp-synthetic`) for demos and tests.
"""

from .collator import PaddedSkeletonCollator, SkeletonDataCollator
from .datasets import (
    ArraySkeletonDataset,
    NpzSkeletonDataset,
    NTUSkeletonDataset,
    PKUMMDSkeletonDataset,
    semi_supervised_indices,
    semi_supervised_subset,
)
from .npz import NpzWriter, load_npz, realign_npz

__all__ = [
    "ArraySkeletonDataset",
    "NTUSkeletonDataset",
    "NpzSkeletonDataset",
    "NpzWriter",
    "PKUMMDSkeletonDataset",
    "PaddedSkeletonCollator",
    "SkeletonDataCollator",
    "load_npz",
    "realign_npz",
    "semi_supervised_indices",
    "semi_supervised_subset",
]
