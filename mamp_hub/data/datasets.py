"""Skeleton data sets for `Trainer`: the standard `.npz` files and arrays in memory, their labels, and the
labelled subsets of semi-supervised evaluation.

The community shares NTU RGB+D 60/120 and PKU-MMD as `.npz` files holding `x_train` (N, 300, 150) float32,
one-hot `y_train` (N, num_classes), `x_test` and `y_test`; a row of `x_*` is one frame of two persons x 25
joints x 3 coordinates (persons outermost), and sequences are padded with zero frames. The data sets here
index into memory maps of those arrays (`mamp_hub.data.npz`), so an item costs one slice; the crop/resize
work happens per batch in `MampSkeletonProcessor` (through `SkeletonDataCollator`). They check the shape of
the sequences and every label when they open a file, without reading the sequences.
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ..checks import checked, flag, integer, positive_int
from ..skeletons import get_id2label
from ..skeletons.layouts import LAYOUT_NDIMS, count_valid_frames
from .npz import load_npz, npz_array_names

__all__ = [
    "SPLITS",
    "ArraySkeletonDataset",
    "NTUSkeletonDataset",
    "NpzSkeletonDataset",
    "PKUMMDSkeletonDataset",
    "labels_from_targets",
    "semi_supervised_indices",
    "semi_supervised_subset",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")


# ---------------------------------------------------------------------------------------------------- labels


def labels_from_targets(targets: np.ndarray, num_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """(N,) int64 class indices from one-hot (N, num_classes) targets or from (N,) indices, checked.

    Every row is checked at once, when a data set opens (labels are small even when the sequences are
    memory-mapped), so that a bad label fails there and not when its item is read: a one-hot row must hold
    exactly one 1 and zeros elsewhere (an all-zero or multi-hot row would otherwise become class 0), class
    indices must be whole numbers (floats are accepted when they are), at least 0 and below `num_classes`.

    Args:
        targets: (N,) class indices or (N, C) one-hot rows.
        num_classes: the number of classes, when known: one-hot rows must have that many columns.
        name: what `targets` is, for error messages (e.g. "y_train in 'NTU60_XSub.npz'").

    Raises:
        ValueError: a label breaks one of the rules above; the message names the first bad one.
    """
    targets = np.asarray(targets)
    if targets.ndim not in (1, 2) or targets.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has shape {targets.shape} and dtype {targets.dtype}; pass (N,) integer class indices or "
            "(N, num_classes) one-hot rows."
        )
    if targets.ndim == 2:
        if num_classes is not None and targets.shape[1] != num_classes:
            raise ValueError(
                f"{name} has {targets.shape[1]} one-hot columns but there are {num_classes} classes; pass one "
                "column per class (or class names for every column)."
            )
        is_one = targets == 1
        bad = np.flatnonzero(~((is_one | (targets == 0)).all(axis=1) & (is_one.sum(axis=1) == 1)))
        if len(bad):
            row = targets[bad[0]]
            entries = {int(column): row[column].item() for column in np.flatnonzero(row != 0)[:5]}
            raise ValueError(
                f"Row {bad[0]} of {name} is not one-hot (its non-zero entries, by column: {entries or 'none'}; "
                f"{len(bad)} of {len(targets)} rows are not); pass rows with exactly one 1 and zeros elsewhere."
            )
        return np.argmax(targets, axis=1).astype(np.int64)

    if targets.dtype.kind == "b":
        raise ValueError(f"{name} holds booleans; pass integer class indices or one-hot rows.")
    # Range checks run on the values as stored: a cast to int64 would truncate 1.7 and wrap huge values.
    checks = []
    if targets.dtype.kind == "f":
        checks.append((~np.isfinite(targets) | (targets != np.round(targets)), "class indices must be whole numbers"))
    checks.append((targets < 0, "class indices must be at least 0"))
    if num_classes is not None:
        checks.append((targets >= num_classes, f"there are {num_classes} classes (indices 0..{num_classes - 1})"))
    for bad, rule in checks:
        bad = np.flatnonzero(bad)
        if len(bad):
            raise ValueError(
                f"Label {bad[0]} of {name} is {targets[bad[0]].item()} ({len(bad)} of {len(targets)} labels are "
                f"bad), but {rule}; pass a valid class index for every sequence."
            )
    return targets.astype(np.int64)


# ---------------------------------------------------------------------------------------------------- data sets


class ArraySkeletonDataset(Dataset):
    """Skeleton sequences with class labels; items are
    `{"skeleton_values": raw sequence, "labels": int, "valid_frames": int}`.

    The raw sequences stay in their stored `layout` (see `MampSkeletonProcessor`); `SkeletonDataCollator`
    turns a batch of them into model inputs. Use it directly for arrays in memory, e.g. your own capture.

    `valid_frames` (see `count_valid_frames`; only when `layout` is given) is counted the first time a sequence
    is read and remembered in memory shared with the `DataLoader` worker processes, so later epochs do not read
    every frame again to count them. The sequences are taken to be read-only.

    Args:
        sequences: (N, ...) array of equal-length sequences (a memory map is fine), or a list of N sequences
            whose lengths may differ, each in `layout`.
        labels: (N,) class indices or (N, num_classes) one-hot, all checked here (see `labels_from_targets`).
        layout: layout of one sequence ("ntu_flat", "CTVM", "MTVC", "TVC"); None lets the processor infer it.
        id2label: class index -> name, for every class 0..num_classes-1 (default: the indices as strings, up to
            the largest label).

    Raises:
        ValueError: no sequences, a label that is not valid, a count of sequences and labels that differ, or
            sequences without the number of dimensions of `layout`.
    """

    def __init__(
        self,
        sequences: np.ndarray | Sequence[np.ndarray],
        labels: np.ndarray | Sequence[int],
        layout: str | None = None,
        id2label: Mapping[int, str] | None = None,
    ) -> None:
        if isinstance(sequences, (str, bytes)) or not isinstance(sequences, (np.ndarray, torch.Tensor, Sequence)):
            raise ValueError(
                f"sequences is of type {type(sequences).__name__}; pass an (N, ...) array of sequences or a list of them."
            )
        if id2label is not None:
            if not isinstance(id2label, Mapping):
                raise ValueError(
                    f"id2label is of type {type(id2label).__name__}; pass a mapping class index -> name, e.g. "
                    "dict(enumerate(names))."
                )
            id2label = dict(id2label)
            if not id2label or set(id2label) != set(range(len(id2label))):
                raise ValueError(
                    f"id2label has the keys {sorted(id2label, key=str)}; pass one name for each class 0..n-1."
                )
        labels = labels_from_targets(labels, num_classes=None if id2label is None else len(id2label))
        if len(sequences) == 0:
            raise ValueError("Got no sequences; pass at least one sequence and its label.")
        if len(sequences) != len(labels):
            raise ValueError(f"Got {len(sequences)} sequences but {len(labels)} labels; pass one label per sequence.")
        if layout is not None:
            if layout not in LAYOUT_NDIMS:
                raise ValueError(f"Unknown layout {layout!r}; pass one of {list(LAYOUT_NDIMS)}.")
            # Only shapes are read: a list's items are already in memory, an array's shape is in its header.
            ndim = LAYOUT_NDIMS[layout]
            if isinstance(sequences, np.ndarray):
                if sequences.ndim != ndim + 1:
                    raise ValueError(
                        f"The sequences have shape {sequences.shape}, but (N, ...) sequences in layout {layout!r} "
                        f"need {ndim + 1} dimensions; pass them in that layout or pass another `layout`."
                    )
            else:
                index = next((i for i, sequence in enumerate(sequences) if np.ndim(sequence) != ndim), None)
                if index is not None:
                    raise ValueError(
                        f"Sequence {index} has shape {np.shape(sequences[index])}, but a sequence in layout "
                        f"{layout!r} has {ndim} dimensions; pass it in that layout or pass another `layout`."
                    )
        # Items are slices: a plain ndarray view of a memory map slices in C, where np.memmap's __getitem__ runs
        # Python code for every item.
        self.sequences = sequences.view(np.ndarray) if isinstance(sequences, np.memmap) else sequences
        self.labels = labels
        self.layout = layout
        # -1: not counted yet. A shared-memory tensor: forked workers write into the same pages, and spawned ones
        # receive a handle to them when the data set is pickled (torch.multiprocessing).
        self._shared_valid_frames = torch.full((len(labels),), -1, dtype=torch.int32).share_memory_()
        self._valid_frames = self._shared_valid_frames.numpy()  # the same memory; NumPy scalar access is faster
        self.id2label = id2label if id2label is not None else {i: str(i) for i in range(int(labels.max()) + 1)}

    @property
    def num_classes(self) -> int:
        return len(self.id2label)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sequence = np.asarray(self.sequences[index])
        item = {"skeleton_values": sequence, "labels": int(self.labels[index])}
        if self.layout is not None:
            valid_frames = int(self._valid_frames[index])
            if valid_frames < 0:
                valid_frames = self._valid_frames[index] = count_valid_frames(sequence, self.layout)
            item["valid_frames"] = valid_frames
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_valid_frames"]  # pickled alone, the NumPy view would be a copy; rebuilt from the tensor
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._valid_frames = self._shared_valid_frames.numpy()


class NpzSkeletonDataset(ArraySkeletonDataset):
    """One split of an `.npz` file in the standard NTU layout (`x_train`, `y_train`, `x_test`, `y_test`).

    Opening checks the shape of the split's sequences and every label (see `labels_from_targets`: one-hot
    rows, indices in range, as many one-hot columns as classes); the sequences themselves are not read.

    Args:
        path: the `.npz` file.
        split: `"train"` or `"test"`.
        mmap: memory-map the sequences (default) instead of reading them into memory.
        id2label: class index -> name; default: the file's `class_names` if it has them, else indices.

    Raises:
        ValueError: an unknown split, sequences that are not (N >= 1, frames, values per frame) NTU rows, or
            labels that are not valid or do not agree with the class names.
    """

    # Values per frame accepted (persons x joints x 3); None: any multiple of 3.
    row_widths: tuple[int, ...] | None = None

    def __init__(
        self,
        path: str | os.PathLike,
        split: str = "train",
        mmap: bool = True,
        id2label: Mapping[int, str] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; pass one of {SPLITS}.")
        mmap = checked("mmap", flag, mmap)
        has_names = "class_names" in npz_array_names(path)
        keys = [f"x_{split}", f"y_{split}"] + (["class_names"] if has_names and id2label is None else [])
        arrays = load_npz(path, keys=keys, mmap=mmap)
        sequences, targets = arrays[f"x_{split}"], arrays[f"y_{split}"]
        where = f"x_{split} in {os.fspath(path)!r}"
        if not self._fits_rows(sequences.shape):
            widths = " or ".join(map(str, self.row_widths)) if self.row_widths else "persons * joints * 3"
            raise ValueError(
                f"{where} has shape {sequences.shape}; pass a file in the NTU layout (N, frames, values per frame) "
                f"with {widths} values per frame, e.g. (N, 300, 150)."
            )
        if len(sequences) == 0:
            raise ValueError(f"{where} holds no sequences (shape {sequences.shape}); pass a file with a {split} split.")
        if not sequences.flags.aligned:
            logger.warning(
                "x_%s in %r is not aligned in the file (written by np.savez?), which makes reading it slower; "
                "mamp_hub.data.realign_npz(source, destination) writes an aligned copy.",
                split,
                os.fspath(path),
            )
        if "class_names" in arrays:
            id2label = dict(enumerate(str(name) for name in arrays["class_names"]))
        elif id2label is None and targets.ndim == 2:
            id2label = {i: str(i) for i in range(targets.shape[1])}
        # Checked here to name the array in errors; the parent's check of the resulting indices is quick.
        labels = labels_from_targets(
            targets, num_classes=None if id2label is None else len(id2label), name=f"y_{split} in {os.fspath(path)!r}"
        )
        super().__init__(sequences, labels, layout="ntu_flat", id2label=id2label)
        self.path = os.fspath(path)
        self.split = split

    def _fits_rows(self, shape: tuple[int, ...]) -> bool:
        """Whether `shape` is (N, frames >= 1, values per frame) with an accepted number of values per frame."""
        if len(shape) != 3 or shape[1] == 0:
            return False
        return shape[2] in self.row_widths if self.row_widths else shape[2] > 0 and shape[2] % 3 == 0


class NTUSkeletonDataset(NpzSkeletonDataset):
    """NTU RGB+D 60 or 120 (`NTU60_XSub.npz`, `NTU60_XView.npz`, `NTU120_XSub.npz`, `NTU120_XSet.npz`), as
    written by `mamp-prepare-ntu` or shared by the community. The action names follow from the number of
    classes (60 or 120): the columns of one-hot labels, else the file's `class_names`, else the largest class
    index + 1."""

    row_widths = (75, 150)

    def __init__(self, path: str | os.PathLike, split: str = "train", mmap: bool = True) -> None:
        super().__init__(path, split, mmap=mmap)
        if self.num_classes not in (60, 120):
            raise ValueError(
                f"The {split} split of {os.fspath(path)!r} has {self.num_classes} classes but NTU RGB+D has 60 or "
                "120; pass an NTU file, or open other files with NpzSkeletonDataset."
            )
        self.id2label = get_id2label(f"ntu{self.num_classes}")


class PKUMMDSkeletonDataset(NpzSkeletonDataset):
    """PKU-MMD phase I or II (`PKUv1_XSub.npz`, ...), as written by `mamp-prepare-pku`: action instances
    cropped from the continuous recordings, in the NTU layout, with the 51 PKU-MMD action names (one-hot labels
    must have 51 columns)."""

    row_widths = (75, 150)

    def __init__(self, path: str | os.PathLike, split: str = "train", mmap: bool = True) -> None:
        super().__init__(path, split, mmap=mmap, id2label=get_id2label("pku_mmd"))


# ---------------------------------------------------------------------------------------------------- semi-supervised


def semi_supervised_indices(num_samples: int, ratio: float, seed: int = 0) -> np.ndarray:
    """Indices of the labelled subset for semi-supervised evaluation (e.g. 1% or 10% of the training set).

    The official protocol shuffles all indices with NumPy's legacy generator seeded with the run seed and
    keeps the first `int(num_samples * ratio)`; with the same seed this returns the same subset as the
    official feeder (its single-process run, or rank 0 of a distributed one, which seeds with seed + rank).
    It is not stratified by class, as in the official protocol.

    Raises:
        ValueError: `ratio` is not in (0, 1], or keeps no sample of `num_samples`.
    """
    num_samples, seed = checked("num_samples", positive_int, num_samples), checked("seed", integer, seed)
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0.0 < ratio <= 1.0:
        raise ValueError(f"`ratio` must be in (0, 1], got {ratio!r}; pass e.g. 0.01 or 0.1.")
    count = int(num_samples * ratio)
    if count < 1:
        raise ValueError(
            f"`ratio` {ratio} of {num_samples} samples keeps {count}; pass a ratio of at least 1 / `num_samples` "
            "(and at least one sample)."
        )
    return np.random.RandomState(seed).permutation(num_samples)[:count]


def semi_supervised_subset(dataset: Dataset, ratio: float, seed: int = 0) -> Subset:
    """The labelled subset of `dataset` for semi-supervised evaluation; see `semi_supervised_indices`."""
    return Subset(dataset, semi_supervised_indices(len(dataset), ratio, seed).tolist())
