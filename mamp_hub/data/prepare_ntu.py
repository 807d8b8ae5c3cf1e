"""NTU RGB+D 60/120 `.skeleton` files -> the standard `.npz` benchmark files (console script `mamp-prepare-ntu`).

This is the pipeline that produced the files the published numbers were measured on (the NTU scripts that
the MAMP, CTR-GCN and SGN code bases share), reimplemented per file so that worker processes can run it:

1. Read each body's 25 joints (x, y, z) per frame. Frames without any body are dropped; a body's frames
   are numbered consecutively from the (kept) frame where it first appears.
2. With several bodies, denoise: drop bodies seen in at most 11 frames; then, while more than one body
   is left, drop bodies whose frames are mostly (>= 69.754%) implausibly wide (x spread > 0.8 * y spread)
   and lower the motion of the others to that of their plausible frames. Motion = sum over x, y, z of the
   variance of the body's joint positions.
3. Actors: the body with the most motion is actor 1, and the next bodies in order of motion fill actor 1's
   slot where they do not overlap it in time, else actor 2's. Frames where both actors are zero are removed.
4. Centre on the first frame's "spine middle" joint (joint 2 in the NTU documentation) of actor 1, keeping
   absent actors at zero; pad to 300 frames with zero frames. A lone actor's second slot is zeros in
   NTU-60 and a copy of the actor in NTU-120, as the reference scripts write them.
5. Splits: NTU-60 cross-subject (X-sub) and cross-view (X-view), NTU-120 cross-subject and cross-setup
   (X-set). Samples are grouped by subject / camera / setup id in the order of the protocol's id list
   and by file name within a group, which reproduces the sample order of the standard files.

Arrays: `x_*` (N, 300, 150) float32, `y_*` (N, num_classes) one-hot float64. The samples the NTU authors
list as having missing skeletons are not part of the standard files: pass their list
(`NTU_RGBD_samples_with_missing_skeletons.txt` / `NTU_RGBD120_samples_with_missing_skeletons.txt` from the
NTU RGB+D repository) with `--missing-skeletons` to reproduce them. A file that cannot be read (truncated,
corrupt, a coordinate that is not a finite number, no body) is reported and skipped; the skipped files are listed
in `<NAME>_skipped.txt`. Folders without `.skeleton` files, or whose files all fail, are an error.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..skeletons.layouts import centre_on_first_frame
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

NUM_JOINTS = 25
VALUES_PER_JOINT = 12  # x y z depthX depthY colorX colorY orientationW X Y Z trackingState
FILE_NAME_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")

# Denoising thresholds of the standard pipeline.
MIN_BODY_FRAMES = 12  # bodies seen in 11 frames or fewer are noise
SPREAD_RATIO = 0.8  # a frame is implausible when its x spread exceeds 0.8 * its y spread
MAX_IMPLAUSIBLE_FRAMES = 0.69754  # proportion of implausible frames that marks a body as noise

# Protocol id lists (cross-subject: performer ids; cross-view: camera ids; cross-setup: setup ids).
NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = (
    *NTU60_XSUB_TRAIN,
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92,
    93, 94, 95, 97, 98, 100, 103,
)  # fmt: skip


@dataclass(frozen=True)
class Benchmark:
    """One standard `.npz` file: which name field splits it, and the group ids of each side in file order."""

    file_name: str
    field: str  # "setup", "camera" or "performer"
    train_ids: tuple[int, ...]
    test_ids: tuple[int, ...]


@dataclass(frozen=True)
class NTUVariant:
    num_classes: int
    max_setup: int
    copy_lone_actor: bool  # NTU-120's files repeat a lone actor in the second slot
    benchmarks: tuple[Benchmark, ...]


def _complement(ids: Sequence[int], count: int) -> tuple[int, ...]:
    return tuple(i for i in range(1, count + 1) if i not in ids)


NTU_VARIANTS: dict[str, NTUVariant] = {
    "ntu60": NTUVariant(
        num_classes=60,
        max_setup=17,
        copy_lone_actor=False,
        benchmarks=(
            Benchmark("NTU60_XSub.npz", "performer", NTU60_XSUB_TRAIN, _complement(NTU60_XSUB_TRAIN, 40)),
            Benchmark("NTU60_XView.npz", "camera", (2, 3), (1,)),
        ),
    ),
    "ntu120": NTUVariant(
        num_classes=120,
        max_setup=32,
        copy_lone_actor=True,
        benchmarks=(
            Benchmark("NTU120_XSub.npz", "performer", NTU120_XSUB_TRAIN, _complement(NTU120_XSUB_TRAIN, 106)),
            Benchmark("NTU120_XSet.npz", "setup", tuple(range(2, 33, 2)), tuple(range(1, 33, 2))),
        ),
    ),
}


class SkeletonFileError(ValueError):
    """A `.skeleton` file that cannot give a sample (truncated, corrupt, non-finite, or without a usable body)."""


# ---------------------------------------------------------------------------------------------------- reading


@dataclass(eq=False)  # bodies compare by identity
class Body:
    """One tracked body: its joints in the frames where it appears, numbered from `first_frame`."""

    body_id: str
    first_frame: int
    joints: np.ndarray  # (frames, 25, 3) float32
    motion: float = 0.0

    @property
    def last_frame(self) -> int:
        return self.first_frame + len(self.joints) - 1


def read_skeleton_file(path: str | os.PathLike) -> tuple[list[Body], int]:
    """Bodies of an NTU `.skeleton` file, in order of first appearance, and the number of frames with a body.

    Raises:
        SkeletonFileError: the file is truncated or malformed, or a body has a coordinate that is not finite
            (nan, inf, or beyond the float32 range).
    """
    with open(path) as file:
        lines = file.read().splitlines()
    cursor = 0

    def take(count: int) -> list[str]:
        nonlocal cursor
        if cursor + count > len(lines):
            raise SkeletonFileError(f"truncated: the file ends at line {len(lines)}, inside frame {frame + 1}")
        cursor += count
        return lines[cursor - count : cursor]

    def take_count(what: str) -> int:
        (line,) = take(1)
        try:
            return int(line)
        except ValueError:
            raise SkeletonFileError(f"line {cursor}: expected the {what} count, got {line[:40]!r}") from None

    frame = -1
    num_frames = take_count("frame")
    first_frames: dict[str, int] = {}
    coordinates: dict[str, tuple[list[str], list[str], list[str]]] = {}  # body id -> its x, y, z values, as text
    frame_index = -1  # index among the frames that have a body
    for frame in range(num_frames):
        num_bodies = take_count("body")
        if num_bodies == 0:
            continue
        frame_index += 1
        for _ in range(num_bodies):
            (info,) = take(1)
            if not info.split():
                raise SkeletonFileError(f"line {cursor}: empty body information line")
            body_id = info.split()[0]
            if take_count("joint") != NUM_JOINTS:
                raise SkeletonFileError(f"line {cursor}: a body must have {NUM_JOINTS} joints")
            values = " ".join(take(NUM_JOINTS)).split()
            if len(values) != NUM_JOINTS * VALUES_PER_JOINT:
                if cursor == len(lines):
                    raise SkeletonFileError(f"truncated: the last line is incomplete, inside frame {frame + 1}")
                raise SkeletonFileError(
                    f"lines {cursor - NUM_JOINTS + 1}-{cursor}: expected {NUM_JOINTS} joint lines of "
                    f"{VALUES_PER_JOINT} values, got {len(values)} values"
                )
            if body_id not in first_frames:
                first_frames[body_id] = frame_index
                coordinates[body_id] = ([], [], [])
            for axis, column in enumerate(coordinates[body_id]):  # only x, y, z are used: parse only them
                column.extend(values[axis::VALUES_PER_JOINT])
    if frame_index < 0:
        raise SkeletonFileError("no frame has a body")

    bodies = []
    for body_id, columns in coordinates.items():
        try:  # text -> float32 as the reference does (through float64: the same numbers as strtof here)
            with np.errstate(over="ignore"):  # beyond the float32 range is inf, reported as non-finite below
                joints = np.stack([np.array(column, dtype=np.float32) for column in columns], axis=-1)
        except ValueError as error:
            raise SkeletonFileError(f"body {body_id}: {error}") from None
        # Python parses "nan" and "inf", and float32 overflows to inf: such a sample would poison every batch.
        nonfinite = np.argwhere(~np.isfinite(joints))  # rows of `joints` are (frame, joint) pairs
        if len(nonfinite):
            row, axis = nonfinite[0]
            raise SkeletonFileError(
                f"body {body_id}: non-finite coordinate {'xyz'[axis]} = {joints[row, axis]} at joint "
                f"{row % NUM_JOINTS} of its frame {row // NUM_JOINTS} (0-based; {len(nonfinite)} non-finite values)"
            )
        body = Body(body_id, first_frames[body_id], joints.reshape(-1, NUM_JOINTS, 3))
        if body.last_frame > frame_index:
            raise SkeletonFileError(f"body {body_id} appears more than once in a frame")
        bodies.append(body)
    return bodies, frame_index + 1


# ---------------------------------------------------------------------------------------------------- denoising


def _motion(joints: np.ndarray) -> np.float32:
    """Sum over x, y, z of the variance of all joint positions; float32 as in the reference pipeline."""
    return np.sum(np.var(joints.reshape(-1, 3), axis=0))


def _plausible_frames(joints: np.ndarray) -> np.ndarray:
    """(frames,) bool: x spread of the joints at most SPREAD_RATIO times their y spread."""
    spread = joints.max(axis=1) - joints.min(axis=1)  # (frames, 3) float32
    # The reference ran on NumPy 1.x, where float32 scalar * Python float is float64: compare in float64.
    return spread[:, 0].astype(np.float64) <= SPREAD_RATIO * spread[:, 1].astype(np.float64)


def denoise_bodies(bodies: list[Body]) -> list[Body]:
    """Bodies kept by the length and spread rules, by decreasing motion (ties: first appearance first)."""
    for body in bodies:
        body.motion = _motion(body.joints)
    bodies = [body for body in bodies if len(body.joints) >= MIN_BODY_FRAMES]
    if len(bodies) == 1:
        return bodies

    kept = list(bodies)
    for body in bodies:
        if len(kept) == 1:
            break
        plausible = _plausible_frames(body.joints)
        num_implausible = len(plausible) - int(plausible.sum())
        if num_implausible == 0:
            continue
        if num_implausible / float(len(plausible)) >= MAX_IMPLAUSIBLE_FRAMES:
            kept.remove(body)
        else:
            body.motion = min(body.motion, _motion(body.joints[plausible]))
    return sorted(kept, key=lambda body: body.motion, reverse=True)


def _place(joints: np.ndarray, body: Body, slot: int) -> None:
    joints[body.first_frame : body.last_frame + 1, 75 * slot : 75 * (slot + 1)] = body.joints.reshape(-1, 75)


def actor_joints(bodies: list[Body], num_frames: int) -> np.ndarray:
    """Joints of the main actors: (frames, 75) for one actor, (frames, 150) for two, float32.

    Raises:
        SkeletonFileError: denoising left no body.
    """
    if len(bodies) == 1:  # a single tracked body is taken as it is
        joints = np.zeros((num_frames, 75), dtype=np.float32)
        _place(joints, bodies[0], 0)
        return joints

    bodies = denoise_bodies(bodies)
    if not bodies:
        raise SkeletonFileError("denoising removed every body")
    if len(bodies) == 1:
        joints = np.zeros((num_frames, 75), dtype=np.float32)
        _place(joints, bodies[0], 0)
    else:
        joints = np.zeros((num_frames, 150), dtype=np.float32)
        actor1, *others = bodies
        _place(joints, actor1, 0)
        start1, end1 = actor1.first_frame, actor1.last_frame
        start2, end2 = 0, 0  # actor 2's span starts as the empty span at frame 0
        for body in others:
            start, end = body.first_frame, body.last_frame
            if min(end1, end) - max(start1, start) <= 0:  # no overlap with actor 1
                _place(joints, body, 0)
                start1, end1 = min(start, start1), max(end, end1)
            elif min(end2, end) - max(start2, start) <= 0:  # no overlap with actor 2
                _place(joints, body, 1)
                start2, end2 = min(start, start2), max(end, end2)
    return joints[joints.sum(axis=1) != 0]  # drop frames where every actor is missing


def process_skeleton_file(path: str | os.PathLike) -> np.ndarray:
    """One `.skeleton` file -> its denoised sequence, (frames, 75) or (frames, 150) float32, centred on actor 1's
    spine-middle joint in its first non-zero frame (a second actor's absent frames stay zero)."""
    bodies, num_frames = read_skeleton_file(path)
    joints = actor_joints(bodies, num_frames)
    if not np.any(joints[:, :75]):
        raise SkeletonFileError("the main actor has no non-zero frame")
    return centre_on_first_frame(joints)


def _process_for_pool(path: str) -> tuple[np.ndarray | None, str | None]:
    try:
        return process_skeleton_file(path), None
    except (SkeletonFileError, OSError, UnicodeDecodeError) as error:
        return None, f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------------------------------------------- the files


def find_skeleton_files(raw_dirs: Sequence[str | os.PathLike], max_setup: int) -> dict[str, str]:
    """Sample name (e.g. `S001C001P001R001A001`) -> path, for the `.skeleton` files of setups 1..max_setup."""
    files: dict[str, str] = {}
    for raw_dir in raw_dirs:
        if not os.path.isdir(raw_dir):
            raise ValueError(f"{os.fspath(raw_dir)!r} is not a directory; pass the folders of the .skeleton files.")
        for entry in os.scandir(raw_dir):
            match = FILE_NAME_PATTERN.fullmatch(entry.name.removesuffix(".skeleton"))
            if not entry.name.endswith(".skeleton") or match is None or int(match.group(1)) > max_setup:
                continue
            name = match.group(0)
            if name in files:
                raise ValueError(f"{name} is in two folders ({files[name]}, {entry.path}); pass each folder once.")
            files[name] = entry.path
    return files


def read_name_list(path: str | os.PathLike) -> set[str]:
    """Sample names listed in a text file (any format: every `SsssCcccPpppRrrrAaaa` in it counts)."""
    with open(path) as file:
        return {match.group(0) for match in FILE_NAME_PATTERN.finditer(file.read())}


def split_indices(names: Sequence[str], benchmark: Benchmark) -> tuple[np.ndarray, np.ndarray]:
    """Train and test sample indices: grouped by id in the order of the id lists, by name within a group."""
    field = {"setup": 1, "camera": 2, "performer": 3}[benchmark.field]
    group = np.array([int(FILE_NAME_PATTERN.fullmatch(name).group(field)) for name in names], dtype=np.int64)

    def indices(ids: tuple[int, ...]) -> np.ndarray:
        rank = {group_id: position for position, group_id in enumerate(ids)}
        selected = np.flatnonzero(np.isin(group, ids))
        order = np.argsort([rank[g] for g in group[selected]], kind="stable")
        return selected[order]

    return indices(benchmark.train_ids), indices(benchmark.test_ids)


def prepare_ntu(
    raw_dirs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    dataset: str = "ntu60",
    missing_skeletons: str | os.PathLike | None = None,
    num_workers: int | None = None,
    max_frames: int = 300,
    copy_lone_actor: bool | None = None,
    progress: bool = True,
) -> dict[str, str]:
    """Writes the standard `.npz` files of NTU RGB+D 60 or 120 from the raw `.skeleton` files.

    Args:
        raw_dirs: folders holding the `.skeleton` files (for NTU-120, both the S001-S017 and S018-S032 folders);
            one folder may be passed alone.
        output_dir: where the `.npz` files and `<NAME>_skipped.txt` go.
        dataset: `"ntu60"` (X-sub, X-view) or `"ntu120"` (X-sub, X-set).
        missing_skeletons: the NTU list of samples with missing skeletons, left out like the standard files do.
        num_workers: worker processes (default: all CPUs; 0 reads the files in this process).
        max_frames: frames per sample (standard: 300, the longest NTU sequence; longer sequences raise the
            frame count of the files to theirs).
        copy_lone_actor: whether a lone actor is repeated in the second slot (default: as the standard file).
        progress: show progress bars.

    Returns:
        Name -> path of the files written (the `.npz` files and the skipped-file list).

    Raises:
        ValueError: bad arguments, no `.skeleton` file in `raw_dirs`, or no file that gives a sample (the
            skipped-file list is written first).
    """
    if dataset not in NTU_VARIANTS:
        raise ValueError(f"Unknown NTU data set {dataset!r}; pass one of {sorted(NTU_VARIANTS)}.")
    check_worker_and_frame_counts(num_workers, max_frames)
    if isinstance(raw_dirs, (str, os.PathLike)):  # a lone path, not a sequence of one-character folder names
        raw_dirs = [raw_dirs]
    variant = NTU_VARIANTS[dataset]
    copy_lone_actor = variant.copy_lone_actor if copy_lone_actor is None else copy_lone_actor
    files = find_skeleton_files(raw_dirs, variant.max_setup)
    excluded = read_name_list(missing_skeletons) if missing_skeletons else set()
    names = sorted(name for name in files if name not in excluded)
    if not names:
        raise ValueError(
            f"No NTU .skeleton files (S001-S{variant.max_setup:03d}) found in {list(map(str, raw_dirs))}; pass the "
            "folders that hold the SsssCcccPpppRrrrAaaa.skeleton files."
        )
    os.makedirs(output_dir, exist_ok=True)
    skipped_path = os.path.join(output_dir, f"{dataset.upper()}_skipped.txt")

    skipped: list[tuple[str, str]] = []
    kept_names: list[str] = []
    spans: list[tuple[int, int, int]] = []  # (offset in the cache, frames, width) per kept sample
    with tempfile.TemporaryFile(dir=output_dir) as cache:
        # Stage 1, in worker processes: one sequence per file, appended to a scratch file in name order.
        offset = 0
        paths = [files[name] for name in names]
        with parallel_map(num_workers) as map_in_order:
            results = map_in_order(_process_for_pool, paths)
            for name, (joints, error) in tqdm(
                zip(names, results, strict=True), total=len(names), desc="skeleton files", disable=not progress
            ):
                if error is not None:
                    logger.warning("Skipping %s: %s", name, error)
                    skipped.append((name, error))
                    continue
                label = int(FILE_NAME_PATTERN.fullmatch(name).group(5)) - 1
                if not 0 <= label < variant.num_classes:  # A000 would otherwise index the last class
                    skipped.append((name, f"action A{label + 1:03d} is not one of the {variant.num_classes} classes"))
                    continue
                cache.write(joints.tobytes())
                kept_names.append(name)
                spans.append((offset, joints.shape[0], joints.shape[1]))
                offset += joints.nbytes
        cache.flush()
        if not kept_names:
            write_skipped_list(skipped_path, skipped)
            raise ValueError(
                f"None of the {len(names)} .skeleton files in {list(map(str, raw_dirs))} gave a sample ({skipped_path} "
                "says why); pass folders of readable NTU RGB+D .skeleton files."
            )

        # Stage 2: each benchmark file, streamed in the protocol's sample order.
        num_frames = max([max_frames] + [frames for _, frames, _ in spans])
        if num_frames > max_frames:
            logger.warning(
                "The longest sequence has %d frames; the files hold %d frames per sample.", num_frames, num_frames
            )
        stored = np.memmap(cache, dtype=np.uint8, mode="r", shape=(offset,)) if offset else np.zeros(0, np.uint8)
        labels = np.array([int(FILE_NAME_PATTERN.fullmatch(name).group(5)) - 1 for name in kept_names])
        written = {}

        def padded_rows(indices: np.ndarray) -> Iterator[np.ndarray]:
            row = np.zeros((num_frames, VALUES_PER_FRAME), dtype=np.float32)
            for index in indices:
                start, frames, width = spans[index]
                joints = stored[start : start + frames * width * 4].view(np.float32).reshape(frames, width)
                row[:] = 0
                row[:frames, :width] = joints
                if width == 75 and copy_lone_actor:
                    row[:frames, 75:] = joints
                yield row

        for benchmark in variant.benchmarks:
            path = os.path.join(output_dir, benchmark.file_name)
            train, test = split_indices(kept_names, benchmark)
            for split, indices in (("training", train), ("test", test)):
                if not len(indices):  # a partial download; the data sets refuse to open an empty split
                    logger.warning("%s gets no %s samples from these files.", benchmark.file_name, split)
            with NpzWriter(path) as writer:
                for split, indices in (("train", train), ("test", test)):
                    rows = tqdm(
                        padded_rows(indices),
                        total=len(indices),
                        desc=f"{benchmark.file_name} {split}",
                        disable=not progress,
                    )
                    add_split(writer, split, rows, labels[indices], num_frames, variant.num_classes)
            written[benchmark.file_name] = path
            logger.info("Wrote %s: %d training and %d test samples.", path, len(train), len(test))

    write_skipped_list(skipped_path, skipped)
    written[os.path.basename(skipped_path)] = skipped_path
    if skipped:
        logger.warning("Skipped %d of %d files; see %s.", len(skipped), len(names), skipped_path)
    return written


@console_script("mamp-prepare-ntu")
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mamp-prepare-ntu",
        description="NTU RGB+D .skeleton files -> the standard .npz benchmark files (denoised, centred, 300 frames).",
    )
    parser.add_argument("--dataset", choices=sorted(NTU_VARIANTS), default="ntu60")
    parser.add_argument("--raw-dir", nargs="+", required=True, help="folder(s) of the .skeleton files")
    add_common_arguments(parser)
    parser.add_argument("--missing-skeletons", help="NTU's list of samples with missing skeletons (left out)")
    parser.add_argument(
        "--lone-actor", choices=["default", "zeros", "copy"], default="default",
        help="second slot of single-actor samples (default: zeros for ntu60, copy for ntu120, as the standard files)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    written = prepare_ntu(
        args.raw_dir,
        args.output_dir,
        dataset=args.dataset,
        missing_skeletons=args.missing_skeletons,
        num_workers=args.workers,
        max_frames=args.max_frames,
        copy_lone_actor=None if args.lone_actor == "default" else args.lone_actor == "copy",
    )
    for path in written.values():
        print(path)


if __name__ == "__main__":
    main()
