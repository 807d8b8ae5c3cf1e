"""PKU-MMD skeleton and label files -> the `.npz` benchmark files (console script `mamp-prepare-pku`).

PKU-MMD records long sequences with several actions each. A skeleton file (`skeleton/0002-L.txt`) has one
line per frame with 150 values (2 bodies x 25 joints x x/y/z, NTU joint order); its label file
(`label/0002-L.txt`) one line per action instance: `label,start,end,confidence` with label in 1..51.
Following the reference preparation (`pku_gendata.py` of the MAMP code base):

- each instance is frames [start, end) of its recording, kept as they are (no centring), truncated to
  300 frames, zero-padded to 300; instances whose values are all zero are left out;
- a recording belongs to the training split when its name is on the second line of the split file
  (`cross-subject.txt` / `cross_subject_v2.txt`, `cross-view.txt` / `cross_view_v2.txt` of the download),
  a comma-separated list of recording names; every other recording is in the test split.

Recordings are taken in sorted name order (the reference walks `os.listdir`, whose order depends on the
file system). `x_*` (N, 300, 150) float32, `y_*` (N, 51) one-hot float64. A recording that cannot be read
is reported and skipped, as are unusable instances (a label out of range or not a whole number, no non-zero
frame, a coordinate that is not a finite number); `<NAME>_skipped.txt` lists them, and instances that were
kept but clipped (label end beyond the recording, more than 300 frames) are logged as warnings. A download
without recordings, or without a usable instance, is an error.

Whole recordings, untrimmed, with their action segments (0-based labels, frames `[start, end)`) are read by
`read_pku_recording` (`iter_pku_recordings` for a folder), for the evaluation of recognition on untrimmed data.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..skeletons import PKU_MMD_ACTION_NAMES
from ..tools.cli import console_script
from .npz import NpzWriter
from .preparation import (
    VALUES_PER_FRAME,
    add_common_arguments,
    add_split,
    check_worker_and_frame_counts,
    parallel_map,
    write_skipped_list,
)

logger = logging.getLogger(__name__)

NUM_CLASSES = len(PKU_MMD_ACTION_NAMES)  # 51
PHASE_PREFIX = {1: "PKUv1", 2: "PKUv2"}


@dataclass
class RecordingInstances:
    """The usable action instances of one recording, and what was wrong with the others."""

    sequences: list[np.ndarray] = field(default_factory=list)  # (frames <= max_frames, 150) float32 each
    labels: list[int] = field(default_factory=list)  # 0-based
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (instance or recording, reason)
    warnings: list[str] = field(default_factory=list)


def read_split_file(path: str | os.PathLike) -> set[str]:
    """Training recording names of a PKU-MMD split file (its second line, comma-separated)."""
    with open(path) as file:
        lines = file.read().splitlines()
    if len(lines) < 2 or not lines[1].strip():
        raise ValueError(
            f"{os.fspath(path)!r} is not a PKU-MMD split file: its second line must list the training "
            "recordings, comma-separated (e.g. '0002-L, 0002-M, ...')."
        )
    return {name.strip() for name in lines[1].split(",") if name.strip()}


def _read_files(skeleton_path: str | os.PathLike, label_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The skeleton rows `(frames, 150)` and the label rows `(lines, >= 3)` of one recording, float64, as written.

    Raises:
        OSError: a file that cannot be read.
        ValueError: a value that is not a number, lines of the wrong length, or no frame.
    """
    with warnings.catch_warnings():  # an empty label file is a recording without actions; no frame is refused below
        warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
        frames = np.loadtxt(skeleton_path, dtype=np.float64, ndmin=2)
        annotations = np.loadtxt(label_path, delimiter=",", dtype=np.float64, ndmin=2)
    if frames.size == 0:
        raise ValueError("the skeleton file holds no frame")
    if frames.shape[1] != VALUES_PER_FRAME:
        raise ValueError(f"skeleton lines have {frames.shape[1]} values, expected {VALUES_PER_FRAME}")
    if annotations.size and annotations.shape[1] < 3:
        raise ValueError(f"label lines have {annotations.shape[1]} values, expected label,start,end,...")
    return frames, annotations


def _parse_label_line(values: np.ndarray, index: int) -> tuple[int, int, int]:
    """`(label 1..51, start, end)` of label line `index` (0-based) from its first three values.

    Raises:
        ValueError: values that are not whole numbers (a cast would truncate 3.5 and turn nan into a huge number),
            or a label out of 1..51.
    """
    if not np.all(np.isfinite(values) & (values == np.round(values))):
        text = ",".join(f"{value:g}" for value in values)
        raise ValueError(f"label line {index + 1} reads {text}; label, start and end must be whole")
    label, start, end = (int(value) for value in values)
    if not 1 <= label <= NUM_CLASSES:
        raise ValueError(f"label {label} is not in 1..{NUM_CLASSES}")
    return label, start, end


def read_pku_recording(
    skeleton_path: str | os.PathLike, label_path: str | os.PathLike
) -> tuple[np.ndarray, list[dict[str, int]]]:
    """One whole (untrimmed) PKU-MMD recording and its action segments.

    Frame numbers are taken as the reference preparation takes them (`pku_gendata.py` of the MAMP code base cuts
    an instance as the skeleton rows `[start:end]`): `start` is the 0-based index of the first skeleton line of the
    action and `end` is exclusive. PKU-MMD's own `evaluate.py` measures overlaps the same way (an instance covers
    `end - start` frames). The dataset's documentation does not say more; readers that take `start` as 1-based
    and `end` as inclusive exist, and differ from this by one frame at the start.

    Args:
        skeleton_path: `skeleton/<name>.txt`: one line per frame, 150 values (2 bodies x 25 joints x x/y/z).
        label_path: `label/<name>.txt`: one line per action, `label,start,end[,confidence]`, label in 1..51.

    Returns:
        `(skeleton, segments)`: skeleton `(frames, 150)` float32, as written (not centred; a non-finite value is
        kept, and the processor refuses it); segments `[{"label": 0..50, "start", "end"}, ...]` in the
        order of the label file (the confidence column is not kept).

    Raises:
        OSError: a file that cannot be read.
        ValueError: naming the file (and line): no frame, not numbers, lines of the wrong length, a label out of
            1..51, a segment with end <= start, a negative start, or one that runs past the recording.
    """
    try:
        frames, annotations = _read_files(skeleton_path, label_path)
    except ValueError as error:
        raise ValueError(
            f"PKU-MMD recording {os.fspath(skeleton_path)!r} / {os.fspath(label_path)!r}: {error}."
        ) from None
    segments = []
    for index, values in enumerate(annotations[:, :3]):
        where = f"{os.fspath(label_path)!r}, line {index + 1}"
        try:
            label, start, end = _parse_label_line(values, index)
        except ValueError as error:
            raise ValueError(f"{where}: {error}.") from None
        if start < 0 or end <= start or end > len(frames):
            raise ValueError(
                f"{where}: the action spans frames [{start}, {end}), but a segment needs 0 <= start < end <= "
                f"{len(frames)}, the frames of {os.fspath(skeleton_path)!r} (end exclusive)."
            )
        segments.append({"label": label - 1, "start": start, "end": end})
    return frames.astype(np.float32), segments


def iter_pku_recordings(
    raw_dir: str | os.PathLike, names: Iterable[str] | None = None
) -> Iterator[tuple[str, np.ndarray, list[dict[str, int]]]]:
    """`(name, skeleton (frames, 150), segments)` of each recording of a PKU-MMD folder, read by `read_pku_recording`.

    Args:
        raw_dir: folder with `skeleton/<name>.txt` and `label/<name>.txt`.
        names: the recordings to read, in this order (e.g. the test split: the names not in `read_split_file`'s
            set); default: every `skeleton/*.txt`, in sorted order.
    """
    if names is None:
        skeleton_dir = os.path.join(raw_dir, "skeleton")
        names = sorted(name.removesuffix(".txt") for name in os.listdir(skeleton_dir) if name.endswith(".txt"))
    for name in names:
        skeleton, segments = read_pku_recording(
            os.path.join(raw_dir, "skeleton", f"{name}.txt"), os.path.join(raw_dir, "label", f"{name}.txt")
        )
        yield name, skeleton, segments


def extract_instances(skeleton_path: str, label_path: str, max_frames: int = 300) -> RecordingInstances:
    """Action instances of one recording (never raises for bad files: they end up in `skipped`)."""
    recording = os.path.basename(skeleton_path).removesuffix(".txt")
    result = RecordingInstances()
    try:
        frames, annotations = _read_files(skeleton_path, label_path)
    except (OSError, ValueError) as error:
        result.skipped.append((recording, f"{type(error).__name__}: {error}"))
        return result

    with np.errstate(over="ignore"):  # a value beyond the float32 range would be inf in the file
        finite = np.isfinite(frames.astype(np.float32))
    finite_frames = finite.all(axis=1)
    for index, values in enumerate(annotations[:, :3]):
        name = f"{recording}_{index}"
        try:
            label, start, end = _parse_label_line(values, index)
        except ValueError as error:
            result.skipped.append((name, str(error)))
            continue
        instance = frames[start:end] if start >= 0 else frames[0:0]
        if instance.size == 0 or instance.sum() == 0:  # the reference leaves all-zero instances out
            result.skipped.append((name, f"frames [{start}, {end}) of {len(frames)} are empty or all zero"))
            continue
        nonfinite = np.flatnonzero(~finite_frames[start:end][:max_frames])  # only the frames written count
        if len(nonfinite):
            frame = start + nonfinite[0]
            value = frames[frame][~finite[frame]][0]
            result.skipped.append(
                (name, f"frame {frame} holds {value:g}, not a finite float32 coordinate ({len(nonfinite)} such frames)")
            )
            continue
        if end > len(frames):
            result.warnings.append(f"{name}: label ends at frame {end} but the recording has {len(frames)}; clipped")
        if len(instance) > max_frames:
            result.warnings.append(f"{name}: {len(instance)} frames truncated to {max_frames}")
        result.sequences.append(instance[:max_frames].astype(np.float32))
        result.labels.append(int(label) - 1)
    return result


def _extract_for_pool(arguments: tuple[str, str, int]) -> RecordingInstances:
    return extract_instances(*arguments)


def prepare_pku(
    raw_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    phase: int = 1,
    cross_subject: str | os.PathLike | None = None,
    cross_view: str | os.PathLike | None = None,
    num_workers: int | None = None,
    max_frames: int = 300,
    progress: bool = True,
) -> dict[str, str]:
    """Writes `PKUv{phase}_XSub.npz` and/or `PKUv{phase}_XView.npz` from the PKU-MMD download.

    Args:
        raw_dir: folder with `skeleton/` and `label/` (one `.txt` per recording in each).
        output_dir: where the `.npz` files and `PKUv{phase}_skipped.txt` go.
        phase: 1 or 2 (names the files; both phases use the 51-class label table).
        cross_subject: the cross-subject split file; its benchmark is written when given.
        cross_view: the cross-view split file; its benchmark is written when given.
        num_workers: worker processes (default: all CPUs; 0 reads the files in this process).
        max_frames: frames per instance (longer instances are truncated, as in the reference).
        progress: show a progress bar.

    Returns:
        Name -> path of the files written.

    Raises:
        ValueError: bad arguments, no recording in `raw_dir`, or no usable instance in any recording (the
            skipped list is written first).
    """
    if phase not in PHASE_PREFIX:
        raise ValueError(f"Unknown PKU-MMD phase {phase!r}; pass 1 or 2.")
    check_worker_and_frame_counts(num_workers, max_frames)
    splits = {name: read_split_file(path) for name, path in (("XSub", cross_subject), ("XView", cross_view)) if path}
    if not splits:
        raise ValueError(
            "Pass the cross-subject and/or cross-view split file (e.g. cross_subject=.../cross-subject.txt)."
        )
    skeleton_dir, label_dir = os.path.join(raw_dir, "skeleton"), os.path.join(raw_dir, "label")
    for folder in (skeleton_dir, label_dir):
        if not os.path.isdir(folder):
            raise ValueError(f"{folder!r} does not exist; `raw_dir` must hold the skeleton/ and label/ folders.")
    recordings = sorted(name.removesuffix(".txt") for name in os.listdir(skeleton_dir) if name.endswith(".txt"))
    if not recordings:
        raise ValueError(f"{skeleton_dir!r} holds no .txt recordings; pass the folder of the PKU-MMD download.")
    os.makedirs(output_dir, exist_ok=True)
    prefix = PHASE_PREFIX[phase]
    skipped_path = os.path.join(output_dir, f"{prefix}_skipped.txt")

    jobs = [
        (os.path.join(skeleton_dir, f"{r}.txt"), os.path.join(label_dir, f"{r}.txt"), max_frames) for r in recordings
    ]
    per_recording: list[RecordingInstances] = []
    with parallel_map(num_workers) as map_in_order:
        results = map_in_order(_extract_for_pool, jobs)
        per_recording.extend(tqdm(results, total=len(jobs), desc="PKU-MMD recordings", disable=not progress))

    skipped = [entry for result in per_recording for entry in result.skipped]
    for result in per_recording:
        for warning in result.warnings:
            logger.warning(warning)
    if not any(result.labels for result in per_recording):
        write_skipped_list(skipped_path, skipped)
        raise ValueError(
            f"None of the {len(recordings)} recordings in {os.fspath(raw_dir)!r} gave a usable action instance "
            f"({skipped_path} says why); pass a PKU-MMD download with readable skeleton and label files."
        )

    written = {}
    for benchmark, training_names in splits.items():
        parts: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
        for recording, result in zip(recordings, per_recording, strict=True):
            sequences, labels = parts["train" if recording in training_names else "test"]
            sequences.extend(result.sequences)
            labels.extend(result.labels)
        path = os.path.join(output_dir, f"{prefix}_{benchmark}.npz")
        for split, (_, labels) in parts.items():
            if not labels:  # e.g. a split file that names every recording; the data sets refuse an empty split
                logger.warning("%s gets no %s instances.", os.path.basename(path), split)
        with NpzWriter(path) as writer:
            for split, (sequences, labels) in parts.items():
                rows = (np.pad(sequence, ((0, max_frames - len(sequence)), (0, 0))) for sequence in sequences)
                add_split(writer, split, rows, labels, max_frames, NUM_CLASSES)
        written[os.path.basename(path)] = path
        logger.info("Wrote %s: %d training and %d test instances.", path, len(parts["train"][1]), len(parts["test"][1]))

    write_skipped_list(skipped_path, skipped)
    written[os.path.basename(skipped_path)] = skipped_path
    if skipped:
        logger.warning("Skipped %d recordings or instances; see %s.", len(skipped), skipped_path)
    return written


@console_script("mamp-prepare-pku")
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mamp-prepare-pku",
        description="PKU-MMD skeleton + label files -> cropped action instances in .npz benchmark files.",
    )
    parser.add_argument("--raw-dir", required=True, help="folder with skeleton/ and label/")
    add_common_arguments(parser)
    parser.add_argument("--phase", type=int, choices=[1, 2], default=1)
    parser.add_argument("--cross-subject", help="cross-subject split file (e.g. cross-subject.txt)")
    parser.add_argument("--cross-view", help="cross-view split file (e.g. cross-view.txt)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    written = prepare_pku(
        args.raw_dir,
        args.output_dir,
        phase=args.phase,
        cross_subject=args.cross_subject,
        cross_view=args.cross_view,
        num_workers=args.workers,
        max_frames=args.max_frames,
    )
    for path in written.values():
        print(path)


if __name__ == "__main__":
    main()
