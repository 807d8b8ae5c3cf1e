"""Skeleton-sequence processor for MAMP: valid-frame crop, resize along time, random rotation.

The numerics follow the official feeder (`valid_crop_resize` and `random_rot` of the MAMP code base) but
run on a whole batch at once: every sample gets its own crop window, and a gather of each sample's rows
plus one fused multiply-add per block of samples resize all of them to the model's frame count. It is a
data-pipeline step: it works on the CPU and returns torch tensors. Reading the input's array layout, and converting
other skeleton sources' joints to the NTU layout (`joint_layout`), is `skeleton_layouts`' part.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, FeatureExtractionMixin

from ._compat import is_loading_argument
from .checks import checked, finite_real, flag, integer, positive_int
from .configuration_mamp import check_local_folder
from .skeletons.layouts import (
    SkeletonInput,
    count_valid_frames,
    present_person_slots,
    resolve_layout,
    source_time_major_samples,
    time_major_samples,
)
from .skeletons.sources import SKELETON_SOURCES, SKELETON_UNITS, axes_matrix
from .transforms import (
    blend_neighbours_,
    draw_crop_fractions,
    draw_rotation_angles,
    resize_positions,
    rotation_matrices,
    training_crop_windows,
)

# ----------------------------------------------------------------------------- option checks


def unknown_options_message(owner: str, unknown: Iterable[str], options: Iterable[str]) -> str:
    """The message for misspelt keyword options: `"<owner> got unknown options ['topk'] (did you mean 'top_k'?); its
    options are [...]."`, with the closest valid option to each (by `difflib`) where one is close."""
    unknown, options = sorted(unknown), sorted(options)
    close = {name: difflib.get_close_matches(name, options, n=1) for name in unknown}
    guesses = [
        repr(match[0]) + (f" for {name!r}" if len(unknown) > 1 else "") for name, match in close.items() if match
    ]
    hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
    return f"{owner} got unknown options {unknown}{hint}; its options are {options}."


# Each takes the option's value and returns the value to store, or raises ValueError naming what is wrong.


def _ratio(value: Any) -> float:
    value = finite_real(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"must be in (0, 1], got {value!r}")
    return value


def _ratio_range(value: Any) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"must be a pair (low, high), got {value!r}")
    low, high = (_ratio(bound) for bound in value)
    if low > high:
        raise ValueError(f"must be (low, high) with low <= high, got {value!r}")
    return [low, high]


def _angle(value: Any) -> float:
    value = finite_real(value)
    if not 0.0 <= value <= math.pi:
        raise ValueError(f"must be an angle in radians within [0, pi], got {value!r}")
    return value


def _joint_layout(value: Any) -> str:
    if not isinstance(value, str) or (value != "ntu" and value not in SKELETON_SOURCES):
        raise ValueError(f"must be 'ntu' or a skeleton source, one of {list(SKELETON_SOURCES)}, got {value!r}")
    return value


def _joint_units(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or value not in SKELETON_UNITS):
        raise ValueError(f"must be None (the source's usual unit) or one of {list(SKELETON_UNITS)}, got {value!r}")
    return value


def _joint_axes(value: Any) -> str | None:
    if value is None:
        return value
    try:
        axes_matrix(value)
    except ValueError:
        raise ValueError(
            f"must be None (the source's usual axes) or three signed NTU axis names, one per input axis, such as "
            f"'-x -y z', got {value!r}"
        ) from None
    return value


_OPTION_CHECKS: dict[str, Callable[[Any], Any]] = {
    "num_frames": positive_int,
    "num_joints": positive_int,
    "num_channels": positive_int,
    "max_persons": positive_int,
    "eval_crop_ratio": _ratio,
    "train_crop_ratio_range": _ratio_range,
    "min_train_frames": positive_int,
    "do_random_rotation": flag,
    "rotation_range": _angle,
    "joint_layout": _joint_layout,
    "joint_units": _joint_units,
    "joint_axes": _joint_axes,
}
# Options that `_check_joint_layout` relates: assigning one re-checks them together.
_JOINT_LAYOUT_OPTIONS = frozenset({"joint_layout", "joint_units", "joint_axes", "num_joints", "num_channels"})
# Keys transformers writes into, or passes with, a saved processor besides the options.
_TRANSFORMERS_KEYS = frozenset({"feature_extractor_type", "processor_class", "auto_map"})


def _check_finite(values: torch.Tensor) -> None:
    """Refuse NaN or infinite coordinates in the `(B, M, T, V, C)` output (a CPU tensor), naming the person slots that
    hold them. NumPy's `isfinite` is about 15 times faster than torch's on the CPU."""
    finite = np.isfinite(values.numpy())
    if not finite.all():
        slots = np.flatnonzero(~finite.reshape(*values.shape[:2], -1).all(axis=2)).tolist()
        raise ValueError(
            f"The skeleton input holds NaN or infinite coordinates (in person slots {slots[:10]}, numbered "
            "sequence * max_persons + person); replace missing joints with zeros."
        )


# Samples resized together: their gathered neighbours (about 1 MB) stay in the CPU cache for the blend.
_SAMPLES_PER_BLOCK = 8


class MampSkeletonProcessor(FeatureExtractionMixin):
    r"""
    Turns raw skeleton sequences into MAMP's `skeleton_values`: (batch, persons, frames, joints, channels).

    For each sequence it counts the valid frames (frames whose values do not sum to zero; the standard
    files pad sequences with zero frames), crops them and resizes the crop along time to `num_frames`
    frames by linear interpolation (the `F.interpolate(mode="bilinear", align_corners=False)` of the
    official feeder, evaluated for all samples at once):

    - evaluation (`training=False`): the central `eval_crop_ratio` of the valid frames, i.e. frames
      `[bias, valid - bias)` with `bias = int((1 - eval_crop_ratio) * valid / 2)`;
    - training (`training=True`): a random proportion p in `train_crop_ratio_range` of the valid frames,
      at least `min_train_frames` of them (at most all), at a random start; then, if `do_random_rotation`,
      a random rotation with angles uniform in [-rotation_range, rotation_range] about each axis.

    Sequences are in the NTU RGB+D joint layout (`joint_layout="ntu"`), or in another skeleton source's
    (`joint_layout="h36m"`, ...; see `mamp_hub.skeletons.to_ntu`): those are converted to NTU joints, metres and axes
    and centred as the standard NTU files are (the spine-middle joint of the first person present, in its first
    frame, at the origin) before the crop. In every joint layout, frames and persons that are all zeros (padding,
    absent persons) stay zeros.

    Args:
        num_frames (`int`, *optional*, defaults to 120):
            Frames per output sequence (the model's `num_frames`).
        num_joints (`int`, *optional*, defaults to 25):
            Joints per person (25 for NTU RGB+D and PKU-MMD).
        num_channels (`int`, *optional*, defaults to 3):
            Coordinates per joint.
        max_persons (`int`, *optional*, defaults to 2):
            Persons per output sequence; sequences with fewer persons are padded with zeros.
        eval_crop_ratio (`float`, *optional*, defaults to 0.95):
            Proportion of the valid frames kept, centred, at evaluation.
        train_crop_ratio_range (`tuple[float, float]`, *optional*, defaults to `(0.5, 1.0)`):
            Range of the random proportion of valid frames kept in training.
        min_train_frames (`int`, *optional*, defaults to 64):
            Lower bound on the frames of a training crop (capped by the valid frames).
        do_random_rotation (`bool`, *optional*, defaults to `True`):
            Whether training applies the random 3D rotation (needs `num_channels == 3`).
        rotation_range (`float`, *optional*, defaults to 0.3):
            Largest rotation angle about each axis, in radians.
        joint_layout (`str`, *optional*, defaults to `"ntu"`):
            Joint layout of the input: `"ntu"` (NTU RGB+D / Kinect v2 joints, taken as they are) or one of
            `mamp_hub.skeletons.SKELETON_SOURCES` (`"h36m"`, `"mediapipe"`, `"azure_kinect"`, `"smpl"`, `"smplh"`,
            `"smplx"`), whose sequences are `(T, J, 3)` or `(M, T, J, 3)` arrays of the source's J joints. Another
            layout needs `num_joints=25` and `num_channels=3`.
        joint_units (`str`, *optional*):
            Unit of a source's coordinates, `"m"`, `"cm"` or `"mm"` (`to_ntu`'s `units`); None: the source's usual
            unit. Only with a `joint_layout` other than `"ntu"`.
        joint_axes (`str`, *optional*):
            The NTU axis each input axis points along, e.g. `"-x -y z"` (`to_ntu`'s `axes`); None: the source's usual
            axes. Only with a `joint_layout` other than `"ntu"`.

    Example:

    ```python
    >>> import numpy as np
    >>> from mamp_hub import MampSkeletonProcessor
    >>> processor = MampSkeletonProcessor(num_frames=120)
    >>> sequences = np.zeros((4, 300, 150), dtype=np.float32)  # rows of an NTU .npz file
    >>> sequences[:, :80] = np.random.randn(4, 80, 150)
    >>> processor(sequences)["skeleton_values"].shape
    torch.Size([4, 2, 120, 25, 3])
    ```
    """

    model_input_names = ["skeleton_values"]

    def __init__(
        self,
        num_frames: int = 120,
        num_joints: int = 25,
        num_channels: int = 3,
        max_persons: int = 2,
        eval_crop_ratio: float = 0.95,
        train_crop_ratio_range: Sequence[float] = (0.5, 1.0),
        min_train_frames: int = 64,
        do_random_rotation: bool = True,
        rotation_range: float = 0.3,
        joint_layout: str = "ntu",
        joint_units: str | None = None,
        joint_axes: str | None = None,
        **kwargs,
    ) -> None:
        unknown = sorted(set(kwargs) - _TRANSFORMERS_KEYS)
        if unknown:
            raise ValueError(unknown_options_message("MampSkeletonProcessor", unknown, _OPTION_CHECKS))
        super().__init__(**kwargs)
        self.num_frames = num_frames
        self.num_joints = num_joints
        self.num_channels = num_channels
        self.max_persons = max_persons
        self.eval_crop_ratio = eval_crop_ratio
        self.train_crop_ratio_range = train_crop_ratio_range
        self.min_train_frames = min_train_frames
        self.do_random_rotation = do_random_rotation
        self.rotation_range = rotation_range
        self.joint_layout = joint_layout
        self.joint_units = joint_units
        self.joint_axes = joint_axes  # the last joint-layout option: `__setattr__` checks them together from here on
        self._check_rotation()
        self._check_joint_layout(self.__dict__)

    def __setattr__(self, name: str, value: Any) -> None:
        """Options are checked however they are set: at construction, by `from_pretrained` overrides, by assignment."""
        check = _OPTION_CHECKS.get(name)
        if check is not None:
            try:
                value = check(value)
            except ValueError as error:
                raise ValueError(f"MampSkeletonProcessor option `{name}` {error}.") from None
            if name in _JOINT_LAYOUT_OPTIONS and "joint_axes" in self.__dict__:
                self._check_joint_layout({**self.__dict__, name: value})
        super().__setattr__(name, value)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any
    ) -> MampSkeletonProcessor:
        """`FeatureExtractionMixin.from_pretrained`, refusing at once a local folder that does not exist
        (`check_local_folder`)."""
        check_local_folder(pretrained_model_name_or_path)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict[str, Any], **kwargs: Any) -> MampSkeletonProcessor:
        """`from_pretrained`'s last step: keyword overrides are options (checked) and nothing else, so a misspelt
        one is an error instead of being dropped; the loading arguments that transformers passes along (`pipeline()`'s
        `_from_pipeline`, `dtype`, ...) are ignored."""
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        options = {name: value for name, value in kwargs.items() if not is_loading_argument(name)}
        processor = cls(**{**feature_extractor_dict, **options})
        return (processor, {}) if return_unused_kwargs else processor

    @staticmethod
    def _check_joint_layout(options: dict[str, Any]) -> None:
        """The rules between the joint-layout options, on a processor's options as they are or are to be."""
        joint_layout = options["joint_layout"]
        if joint_layout == "ntu":
            given = [name for name in ("joint_units", "joint_axes") if options[name] is not None]
            if given:
                raise ValueError(
                    f"MampSkeletonProcessor options {given} apply to another joint_layout than 'ntu' (NTU joints are "
                    f"taken as they are); set joint_layout to a skeleton source, or {given[0]}=None."
                )
        elif options["num_joints"] != 25 or options["num_channels"] != 3:
            raise ValueError(
                f"joint_layout={joint_layout!r} converts to the NTU layout's 25 joints of 3 coordinates, but "
                f"num_joints={options['num_joints']} and num_channels={options['num_channels']}; pass "
                "num_joints=25 and num_channels=3."
            )

    def _check_rotation(self) -> None:
        if self.do_random_rotation and self.num_channels != 3:
            raise ValueError(
                f"Random rotation needs 3D joints, but num_channels={self.num_channels}; pass do_random_rotation=False."
            )

    def __call__(
        self,
        sequences: SkeletonInput,
        training: bool = False,
        layout: str | None = None,
        return_tensors: str = "pt",
        generator: torch.Generator | None = None,
        seed: int | None = None,
        valid_frames: Sequence[int] | np.ndarray | None = None,
    ) -> BatchFeature:
        """
        Args:
            sequences: one sequence, a batch (an array with one more leading dimension), or a list of
                sequences of different lengths. Numpy arrays or torch tensors; zero frames at the end
                (padding) are ignored.
            training: random crop (+ rotation) if True, the central evaluation crop if False.
            layout: layout of one sequence: `"ntu_flat"` (T, M*V*C), `"CTVM"`, `"MTVC"` or `"TVC"` (with another
                `joint_layout`: `"MTVC"` or `"TVC"`). Detected from the shape when left out and only one layout fits.
            return_tensors: `"pt"` (torch) or `"np"` (numpy).
            generator: torch generator for the training randomness (default: torch's global generator).
            seed: seeds a fresh generator instead; give at most one of `generator` and `seed`.
            valid_frames: (B,) valid frames of each sequence (see `count_valid_frames`) when already known, e.g.
                from the `"valid_frames"` of the data sets' items, which count each sequence once; counted here
                (which reads every frame) when None.

        Returns:
            `BatchFeature` with
            - `skeleton_values`: (B, max_persons, num_frames, num_joints, num_channels) float32;
            - `present_persons`: (P,) int64, the flat indices `b * max_persons + m` of the person slots that are not
              all zeros, ascending; the model encodes only those at evaluation (the absent ones share one result).

        Raises:
            ValueError: for input that is not numeric, empty, in no layout, or that yields NaN or infinite values.
        """
        generator = self._checked_call_options(training, return_tensors, generator, seed)
        samples = self._read(sequences, layout)  # B arrays (T_b, M*V*C)
        valid_frames = self._valid_frames(samples, valid_frames)
        start, length = self._crop_windows(valid_frames, training, generator)
        values = self._resize(samples, start, length)  # (B, M, num_frames, V*C)
        if training and self.do_random_rotation:
            values = self._rotate(values, generator)
        return self._output(values, return_tensors)

    # ------------------------------------------------------------------ the steps of `__call__`

    def _checked_call_options(
        self, training: bool, return_tensors: str, generator: torch.Generator | None, seed: int | None
    ) -> torch.Generator | None:
        """The generator of the training randomness, after checking `__call__`'s options."""
        if return_tensors not in ("pt", "np"):
            raise ValueError(f"`return_tensors` must be 'pt' or 'np', got {return_tensors!r}.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"`generator` must be a torch.Generator, got {type(generator).__name__}; or pass `seed`.")
        if generator is not None and seed is not None:
            raise ValueError("Pass either `generator` or `seed`, not both.")
        if seed is not None:
            generator = torch.Generator().manual_seed(checked("seed", integer, seed))
        if checked("training", flag, training):
            self._check_rotation()
        return generator

    def _read(self, sequences: SkeletonInput, layout: str | None) -> list[np.ndarray]:
        """Any accepted input -> one (T_b, max_persons * V * C) float32 array per sample, in NTU joints."""
        if self.joint_layout == "ntu":
            samples = time_major_samples(sequences, layout, self.num_joints, self.num_channels, self.max_persons)
        else:
            samples = source_time_major_samples(
                sequences, layout, self.joint_layout, self.joint_units, self.joint_axes, self.max_persons
            )
        if not samples:
            raise ValueError("Got a batch of 0 sequences; pass at least one sequence.")
        empty = [b for b, sample in enumerate(samples) if len(sample) == 0]
        if empty:
            raise ValueError(f"Sequences {empty} have no frames; pass sequences with at least one frame.")
        return samples

    @staticmethod
    def _valid_frames(samples: Sequence[np.ndarray], valid_frames: Sequence[int] | np.ndarray | None) -> np.ndarray:
        """(B,) valid frames of each sample: the given counts, checked, or counted here."""
        if valid_frames is None:
            # Each sample is read where it lies (rows of a memory map, say): stacking the batch would copy all of it.
            return np.array([count_valid_frames(sample) for sample in samples])
        counts = np.asarray(valid_frames)
        frames = np.array([len(sample) for sample in samples])
        if counts.shape != frames.shape or not np.issubdtype(counts.dtype, np.integer):
            raise ValueError(
                f"`valid_frames` must hold one integer per sequence ({len(samples)}), got {counts.dtype} of shape "
                f"{counts.shape}; pass the counts of `count_valid_frames`, or None to count here."
            )
        if ((counts < 0) | (counts > frames)).any():
            raise ValueError(f"`valid_frames` {counts.tolist()} must be within 0 and each sequence's frames.")
        return counts

    def _rotate(self, values: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, M, T, V*C) joints, each sample turned by its own random rotation (the official `random_rot`)."""
        batch_size = len(values)
        angles = draw_rotation_angles(batch_size, self.rotation_range, generator)
        rotation = rotation_matrices(angles).numpy().astype(np.float32).transpose(0, 2, 1)  # row vectors: p @ R^T
        # NumPy's matmul runs one BLAS product per sample: several times faster than torch.bmm at k = n = 3.
        return torch.from_numpy(values.numpy().reshape(batch_size, -1, self.num_channels) @ rotation)

    def _output(self, values: torch.Tensor, return_tensors: str) -> BatchFeature:
        """The `BatchFeature` of (B, M, num_frames, V*C) values: `skeleton_values` and `present_persons`."""
        values = values.view(len(values), self.max_persons, self.num_frames, self.num_joints, self.num_channels)
        _check_finite(values)
        present_persons = present_person_slots(values)
        if return_tensors == "np":
            return BatchFeature({"skeleton_values": values.numpy(), "present_persons": present_persons.numpy()})
        return BatchFeature({"skeleton_values": values, "present_persons": present_persons})

    # ------------------------------------------------------------------ crop and resize

    def _crop_windows(
        self, valid_frames: np.ndarray, training: bool, generator: torch.Generator | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """First frame and frame count of each sample's crop, (B,) int64 each."""
        if training:
            draws = draw_crop_fractions(len(valid_frames), generator)
            start, length = training_crop_windows(
                torch.from_numpy(np.ascontiguousarray(valid_frames)),
                draws,
                self.train_crop_ratio_range,
                self.min_train_frames,
            )
            return start.numpy(), length.numpy()
        # Same float64 expression as the official `int((1 - p) * valid / 2)`.
        start = np.floor((1 - self.eval_crop_ratio) * valid_frames.astype(np.float64) / 2)
        length = valid_frames - 2 * start
        # An all-zero sequence has no valid frame: read its first (zero) frame, which yields zeros.
        return start.astype(np.int64), np.maximum(length, 1).astype(np.int64)

    def _resize(self, samples: Sequence[np.ndarray], start: np.ndarray, length: np.ndarray) -> torch.Tensor:
        """Linear resize of frames [start, start + length) of each sample to `num_frames` frames.

        Reproduces `F.interpolate(mode="bilinear", align_corners=False)` along time bit for bit, with the
        positions of `resize_positions` and the rounding of `blend_neighbours_` (tests/test_processor.py checks it
        against `F.interpolate` on the installed PyTorch).

        Args:
            samples: B arrays (T_b, P * F): P persons of F values per frame.
            start, length: (B,) crop windows.

        Returns:
            (B, P, num_frames, F) float32.
        """
        batch_size, persons = len(samples), self.max_persons
        features = samples[0].shape[1] // persons
        index0, index1, weight1 = resize_positions(torch.from_numpy(length), self.num_frames)
        weight1 = weight1[:, None, :, None]
        weight0 = 1 - weight1
        rows = torch.cat([index0, index1], dim=1).numpy()  # (B, 2 * num_frames): both neighbours, within the crop
        stop = start + length

        # The output is allocated before the scratch: in the other order, most calls page-faulted their output
        # in afresh (measured in benchmarks/bench_pipeline.py's interleaved setting); in this one, fewer do (how
        # many still depends on the state of the heap).
        resized = torch.empty(batch_size, persons, self.num_frames, features)
        block_size = min(_SAMPLES_PER_BLOCK, batch_size)
        scratch = np.empty((block_size, 2 * self.num_frames, persons * features), dtype=np.float32)
        neighbours = torch.from_numpy(scratch).view(block_size, 2, self.num_frames, persons, features)
        for first in range(0, batch_size, block_size):
            block = slice(first, min(first + block_size, batch_size))
            for sample, first_row, end_row, crop_rows, out in zip(
                samples[block], start[block], stop[block], rows[block], scratch, strict=False
            ):
                # mode="clip" (the rows are in range) writes straight into `out`; "raise" would buffer it. NumPy
                # copies a misaligned array (a memory map of an `np.savez` file) before `take`: only the crop, here.
                sample[first_row:end_row].take(crop_rows, axis=0, out=out, mode="clip")
            frame0, frame1 = neighbours[: block.stop - first].transpose(2, 3).unbind(1)  # (b, P, num_frames, F)
            blend_neighbours_(frame0, frame1, weight0[block], weight1[block], out=resized[block])
        return resized

    # ------------------------------------------------------------------ input layouts

    def resolve_layout(
        self, shape: Sequence[int], layout: str | None = None, batched: bool | None = None
    ) -> tuple[str, bool]:
        """How `__call__` reads an array of this shape: its layout, and whether it is a batch of sequences.

        Args:
            shape: the array's shape.
            layout: the layout of one sequence, if known (see `__call__`).
            batched: whether the array is a batch, if known; None lets the shape decide.

        Raises:
            ValueError: if no layout, or several, fit the shape with this processor's options (`joint_layout`,
                `num_joints`, `num_channels`, `max_persons`).
        """
        return resolve_layout(
            shape,
            layout,
            None if batched is None else checked("batched", flag, batched),
            joint_layout=self.joint_layout,
            num_joints=self.num_joints,
            num_channels=self.num_channels,
            max_persons=self.max_persons,
        )

    def infer_layout(self, sequence_shape: Sequence[int]) -> str:
        """The layout of ONE sequence of this shape; raises `ValueError` if none or several fit."""
        return self.resolve_layout(sequence_shape, batched=False)[0]
