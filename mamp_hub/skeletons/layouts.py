"""Array layouts of skeleton sequences: which layout an array is in, and its conversion to time-major NTU rows.

`MampSkeletonProcessor` reads every input through `time_major_samples` (NTU joints) or `source_time_major_samples`
(joints of another skeleton source, converted with `to_ntu` and centred as the standard NTU files are): both give
one `(T_b, max_persons * V * C)` array per sequence, the rows its crop and resize work on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import torch

from ..checks import real_array
from .sources import SOURCE_JOINT_COUNTS, to_ntu

# Number of dimensions of ONE sequence in each supported layout; a batch has one more, in front.
#   ntu_flat: (T, M*V*C), persons outermost (the rows of the standard NTU .npz files, 150 = 2 x 25 x 3)
#   CTVM:     (C, T, V, M), the layout of the official feeders
#   MTVC:     (M, T, V, C), the layout of `skeleton_values` per sample
#   TVC:      (T, V, C), one person
LAYOUT_NDIMS: dict[str, int] = {"ntu_flat": 2, "CTVM": 4, "MTVC": 4, "TVC": 3}
_LAYOUT_SHAPES = {"ntu_flat": "(T, M*V*C)", "CTVM": "(C, T, V, M)", "MTVC": "(M, T, V, C)", "TVC": "(T, V, C)"}
NTU_LAYOUTS: tuple[str, ...] = tuple(LAYOUT_NDIMS)
# Layouts of a sequence of another source's joints: persons and frames in front, (joints, xyz) last.
SOURCE_LAYOUTS: tuple[str, ...] = ("MTVC", "TVC")
_NTU_VALUES_PER_PERSON = 25 * 3

SkeletonInput = np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor]


def as_float_array(array: Any, what: str = "The skeleton input") -> np.ndarray:
    """`array` (numpy, torch, nested lists) as float32 numpy, with no copy when it already is; `ValueError` naming
    `what` for anything but real numbers (see `real_array`)."""
    return real_array(array, what).astype(np.float32, copy=False)


def fits(layout: str, shape: Sequence[int], joints: Collection[int], channels: int, max_persons: int) -> bool:
    """Whether ONE sequence of this shape can be in `layout`, with a joint count in `joints`, `channels` values per
    joint and at most `max_persons` persons (`ntu_flat` rows hold `joints` of exactly one count)."""
    if len(shape) != LAYOUT_NDIMS[layout]:
        return False
    if layout == "ntu_flat":
        (num_joints,) = joints
        persons, remainder = divmod(shape[1], num_joints * channels)
        return remainder == 0 and 0 < persons <= max_persons
    if layout == "CTVM":
        return shape[0] == channels and shape[2] in joints and shape[3] <= max_persons
    if layout == "MTVC":
        return shape[0] <= max_persons and shape[2] in joints and shape[3] == channels
    return shape[1] in joints and shape[2] == channels  # TVC


def resolve_layout(
    shape: Sequence[int],
    layout: str | None,
    batched: bool | None,
    *,
    joint_layout: str,
    num_joints: int,
    num_channels: int,
    max_persons: int,
) -> tuple[str, bool]:
    """(layout, batched) for an array of this shape; `batched=None` lets the shape decide.

    Args:
        shape: the array's shape.
        layout: the layout of one sequence, if known: one of `LAYOUT_NDIMS` for NTU joints, of `SOURCE_LAYOUTS` for
            another source's.
        batched: whether the array is a batch (one more leading axis), if known.
        joint_layout: `"ntu"` (sequences of `num_joints` joints of `num_channels` values) or a skeleton source
            (sequences of one of its joint counts, of 3 coordinates).
        num_joints, num_channels: the NTU layout's joints and values per joint.
        max_persons: the most persons a sequence may hold.

    Raises:
        ValueError: `layout` is unknown, or no layout or several fit the shape.
    """
    if joint_layout == "ntu":
        joints, channels, layouts = (num_joints,), num_channels, NTU_LAYOUTS
    else:
        joints, channels, layouts = SOURCE_JOINT_COUNTS[joint_layout], 3, SOURCE_LAYOUTS
    if layout is not None and layout not in layouts:
        raise ValueError(f"Unknown layout {layout!r}; pass one of {list(layouts)}.")
    candidates = [
        (name, is_batch)
        for name in ([layout] if layout else layouts)
        for is_batch in ((batched,) if batched is not None else (False, True))
        if fits(name, shape[1:] if is_batch else shape, joints, channels, max_persons)
    ]
    if not candidates:
        if joint_layout == "ntu":
            expected = f"num_joints={num_joints}, num_channels={num_channels}, max_persons={max_persons}"
        else:
            counts = " or ".join(map(str, joints))
            expected = f"joint_layout={joint_layout!r} ({counts} joints of 3 coordinates), max_persons={max_persons}"
        shapes = [f"{_LAYOUT_SHAPES[name]} {name!r}" for name in layouts]
        raise ValueError(
            f"A skeleton array of shape {tuple(shape)} fits no supported layout{f' {layout!r}' if layout else ''} "
            f"with {expected}: pass one sequence or a batch as {', '.join(shapes[:-1])} or {shapes[-1]}."
        )
    if len(candidates) > 1:
        readings = ", ".join(f"{'a batch' if b else 'one sequence'} in {name!r}" for name, b in candidates)
        raise ValueError(f"A skeleton array of shape {tuple(shape)} is ambiguous ({readings}); pass `layout=`.")
    return candidates[0]


def to_time_major(array: np.ndarray, layout: str, num_joints: int, num_channels: int, max_persons: int) -> np.ndarray:
    """(B, ...) batch in `layout` -> (B, T, max_persons * V * C) contiguous; a view for NTU rows of max_persons.

    The batch must fit `layout` with at most `max_persons` persons (see `fits`).
    """
    if layout == "ntu_flat":
        persons = array.shape[2] // (num_joints * num_channels)
        array = array.reshape(*array.shape[:2], persons, num_joints, num_channels)
    elif layout == "CTVM":
        array = array.transpose(0, 2, 4, 3, 1)
    elif layout == "MTVC":
        array = array.transpose(0, 2, 1, 3, 4)
    else:  # TVC
        array = array[:, :, None]
    batch_size, frames, persons = array.shape[:3]
    if persons < max_persons:
        padded = np.zeros((batch_size, frames, max_persons, *array.shape[3:]), dtype=np.float32)
        padded[:, :, :persons] = array
        array = padded
    return np.ascontiguousarray(array).reshape(batch_size, frames, max_persons * num_joints * num_channels)


def time_major_samples(
    sequences: SkeletonInput, layout: str | None, num_joints: int, num_channels: int, max_persons: int
) -> list[np.ndarray]:
    """Any accepted input of NTU-layout joints -> one (T_b, max_persons * V * C) float32 array per sample.

    Sequences keep their lengths (no padding to a common length) and, as rows of an NTU file, their memory (no copy).
    """
    dims = {"joint_layout": "ntu", "num_joints": num_joints, "num_channels": num_channels, "max_persons": max_persons}
    if not isinstance(sequences, (list, tuple)):
        array = as_float_array(sequences)
        name, batched = resolve_layout(array.shape, layout, None, **dims)
        return list(to_time_major(array if batched else array[None], name, num_joints, num_channels, max_persons))
    arrays = _float_arrays(sequences)
    layouts = {shape: resolve_layout(shape, layout, False, **dims)[0] for shape in {a.shape for a in arrays}}
    row = max_persons * num_joints * num_channels
    return [
        array  # already time-major with every person slot (NTU rows): as it lies
        if layouts[array.shape] == "ntu_flat" and array.shape[1] == row and array.flags.c_contiguous
        else to_time_major(array[None], layouts[array.shape], num_joints, num_channels, max_persons)[0]
        for array in arrays
    ]


def source_time_major_samples(
    sequences: SkeletonInput,
    layout: str | None,
    source: str,
    units: str | None,
    axes: str | None,
    max_persons: int,
) -> list[np.ndarray]:
    """Any accepted input of `source` joints -> one (T_b, max_persons * 25 * 3) float32 array per sample, in NTU
    joints, units and axes (`to_ntu`), centred as the standard NTU files are (`centre_on_first_frame`).

    A sequence is `(T, J, 3)` (`"TVC"`) or `(M, T, J, 3)` (`"MTVC"`) with J a joint count of `source`; a batch has
    one more leading axis, a list holds sequences of different lengths.
    """
    dims = {"joint_layout": source, "num_joints": 25, "num_channels": 3, "max_persons": max_persons}

    def ntu_rows(batch: np.ndarray, batch_layout: str) -> np.ndarray:
        ntu = to_ntu(batch, source, units=units, axes=axes)  # (B, [M,] T, 25, 3); absent persons stay zeros
        return centre_on_first_frame(to_time_major(ntu, batch_layout, 25, 3, max_persons))

    if not isinstance(sequences, (list, tuple)):
        array = as_float_array(sequences)
        name, batched = resolve_layout(array.shape, layout, None, **dims)
        return list(ntu_rows(array if batched else array[None], name))
    # A list's sequences differ in length: each is converted on its own.
    return [
        ntu_rows(array[None], resolve_layout(array.shape, layout, False, **dims)[0])[0]
        for array in _float_arrays(sequences)
    ]


def count_valid_frames(sequence: np.ndarray, layout: str = "ntu_flat") -> int:
    """Valid frames of ONE sequence: frames whose values do not sum to zero (the official feeders' rule; the
    standard files pad sequences with zero frames). `MampSkeletonProcessor` counts the same way when it is not
    given `valid_frames`: the sum of each time-major row (persons, joints, channels).

    Args:
        sequence: one sequence in `layout` (see `LAYOUT_NDIMS`).
        layout: `"ntu_flat"` (T, M*V*C), `"CTVM"`, `"MTVC"` or `"TVC"`.
    """
    if layout not in LAYOUT_NDIMS:
        raise ValueError(f"Unknown layout {layout!r}; pass one of {list(LAYOUT_NDIMS)}.")
    sequence = as_float_array(sequence, "sequence")
    if layout == "CTVM":
        sequence = sequence.transpose(1, 3, 2, 0)
    elif layout == "MTVC":
        sequence = sequence.transpose(1, 0, 2, 3)
    frames = sequence.reshape(len(sequence), -1)  # (T, values per frame); a copy only for CTVM and MTVC
    return int(np.count_nonzero(frames @ np.ones(frames.shape[1], dtype=np.float32)))  # BLAS mat-vec


def present_person_slots(skeleton_values: torch.Tensor) -> torch.Tensor:
    """The person slots of a `(B, M, T, V, C)` batch that hold a skeleton: `(P,)` int64, the ascending flat indices
    `b * M + m` of the slots that are not all zeros (absent persons are all zeros). This is the processor's
    `present_persons`, which lets the model encode only those slots; a NaN counts as present.

    The smallest and largest value of each slot answer the question without a temporary array (a slot is all zeros
    iff both are zero; `amax` and `amin` are several times faster than `aminmax` or `ne(0).any` on the CPU)."""
    slots = skeleton_values.flatten(2)
    return ((slots.amin(dim=2) != 0) | (slots.amax(dim=2) != 0)).flatten().nonzero().flatten()


def centre_on_first_frame(joints: np.ndarray) -> np.ndarray:
    """Moves NTU sequences as the standard NTU preparation does: the spine-middle joint (joint 1) of the first person
    present (actor 1 in the standard files), in its first non-zero frame, goes to the origin; the frames in which a
    person is absent (values summing to zero: padding, a person who left, an empty slot) stay zero, so that padding
    and absent persons mean after centring what they meant before. `mamp-prepare-ntu` writes the NTU files with this
    function (their preparation drops the frames in which every person is absent before centring, so a lone actor has
    no absent frame there).

    Args:
        joints: (..., T, M * 75) float32 time-major rows of M persons of 25 joints x (x, y, z); changed in place.
            A sequence without any non-zero value is left as it is.

    Returns:
        `joints`.
    """
    *batch, frames, width = joints.shape
    persons = joints.reshape(-1, frames, width // _NTU_VALUES_PER_PERSON, 25, 3)  # (N, T, M, 25, 3)
    absent = persons.sum(axis=(-2, -1)) == 0  # (N, T, M)
    has_values = (persons != 0).any(axis=(-2, -1))  # (N, T, M)
    person = np.argmax(has_values.any(axis=1), axis=-1)  # (N,): the first person present; 0 when none is
    sequence = np.arange(len(persons))
    frame = np.argmax(has_values[sequence, :, person], axis=-1)  # (N,): its first non-zero frame; 0 when none
    origin = persons[sequence, frame, person, 1]  # (N, 3): its spine-middle joint (all zeros when none)
    joints -= np.tile(origin, width // 3).reshape(*batch, 1, width)  # every joint of every frame, as the preparation
    joints[np.repeat(absent, _NTU_VALUES_PER_PERSON, axis=-1).reshape(joints.shape)] = 0
    return joints


def _float_arrays(sequences: Sequence[np.ndarray | torch.Tensor]) -> list[np.ndarray]:
    if len(sequences) == 0:
        raise ValueError("Got an empty list of sequences; pass at least one sequence.")
    return [as_float_array(sequence, f"Sequence {index}") for index, sequence in enumerate(sequences)]
