"""Sliding windows over a recording: where they lie, their defaults and limits, and how their scores become per-frame
scores and segments.

Windows of `window` frames start at 0, `stride`, 2 `stride`, ... while they fit, and one last window ends at the
last frame, so that every frame is covered; a recording shorter than a window is one window. A frame's scores are the
average of the scores of the windows that cover it; consecutive frames with the same top class form a segment.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..checks import checked, finite_real, is_integer

# A window is resampled to the model's `num_frames` like any clip; beyond this factor either way the model would see
# motions several times faster or slower than in any window of the default size.
MAX_TIME_SCALE = 4
# The default stride is this fraction of the window: each frame is then covered by about 4 windows.
DEFAULT_OVERLAP = 4


def default_window(num_frames: int, eval_crop_ratio: float) -> int:
    """The window a checkpoint is run with when none is given: the raw frames whose central evaluation crop (the
    processor keeps `eval_crop_ratio` of a clip) is the model's `num_frames`, i.e. `round(num_frames /
    eval_crop_ratio)`: 126 for the published checkpoints (120 frames, ratio 0.95), about 4 s at 30 fps. The model then
    sees the recording at its own frame rate, neither stretched nor squeezed."""
    return max(1, round(num_frames / eval_crop_ratio))


def default_stride(window: int) -> int:
    """A quarter of the window (at least 1 frame)."""
    return max(1, window // DEFAULT_OVERLAP)


def window_limits(num_frames: int) -> tuple[int, int]:
    """The shortest and longest window accepted for a model of `num_frames` frames: `MAX_TIME_SCALE` times fewer or
    more frames."""
    return max(1, math.ceil(num_frames / MAX_TIME_SCALE)), MAX_TIME_SCALE * num_frames


def checked_window(window: Any, stride: Any, num_frames: int, eval_crop_ratio: float) -> tuple[int, int]:
    """`(window, stride)` with the defaults filled in (see `default_window`, `default_stride`).

    Raises:
        ValueError: `window` or `stride` is not an integer, `window` is outside `window_limits(num_frames)`, or
            `stride` is not within 1 and `window`.
    """
    shortest, longest = window_limits(num_frames)
    if window is None:
        window = min(max(default_window(num_frames, eval_crop_ratio), shortest), longest)
    elif not is_integer(window) or not shortest <= window <= longest:
        raise ValueError(
            f"window must be a whole number of frames from {shortest} to {longest}, got {window!r}: a window is "
            f"resampled to the model's {num_frames} frames, at most {MAX_TIME_SCALE} times fewer or more; leave it "
            f"out for the checkpoint's default, {default_window(num_frames, eval_crop_ratio)}."
        )
    window = int(window)
    if stride is None:
        return window, default_stride(window)
    if not is_integer(stride) or not 1 <= stride <= window:
        raise ValueError(
            f"stride must be a whole number of frames from 1 to the window ({window}), got {stride!r}; leave it out "
            f"for a quarter of the window, {default_stride(window)}."
        )
    return window, int(stride)


def checked_fps(fps: Any) -> float | None:
    """`fps` as a float, or None; raises `ValueError` unless it is a positive finite number."""
    if fps is None:
        return None
    if checked("fps", finite_real, fps) <= 0:
        raise ValueError(f"`fps` must be a positive number of frames per second, such as 30, got {fps!r}.")
    return float(fps)


def checked_min_score(min_score: Any) -> float | None:
    """`min_score` as a float (a score threshold), or None."""
    return None if min_score is None else checked("min_score", finite_real, min_score)


def window_starts(frames: int, window: int, stride: int) -> np.ndarray:
    """First frames of the windows of a recording of `frames` frames, ascending, (W,) int64: 0, stride, ... while a
    window fits, then `frames - window` if the last of those ends before the last frame. A recording of at most
    `window` frames is the one window starting at 0."""
    if frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, frames - window + 1, stride, dtype=np.int64)
    if starts[-1] + window < frames:
        starts = np.append(starts, frames - window)
    return starts


def average_over_windows(
    starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean of the scores of the windows covering each frame.

    Args:
        starts, ends: (W,) frame ranges `[start, end)` of the windows.
        scores: (W, L) the windows' scores.
        frames: the recording's frames.

    Returns:
        `(frames, L)` float32 means (zeros where no window covers a frame) and `(frames,)` the count of windows
        covering each frame. Sums run as a float64 running total of window starts and ends, one pass over the frames.
    """
    changes = np.zeros((frames + 1, scores.shape[1]), dtype=np.float64)
    np.add.at(changes, starts, scores)
    np.add.at(changes, ends, -scores.astype(np.float64))
    counts = np.cumsum(np.bincount(starts, minlength=frames + 1) - np.bincount(ends, minlength=frames + 1))[:frames]
    sums = np.cumsum(changes, axis=0)[:frames]
    means = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    return means.astype(np.float32), counts


def frame_segments(
    frame_scores: np.ndarray, active: np.ndarray, min_score: float | None
) -> list[tuple[int, int, int, float]]:
    """Runs of consecutive frames with the same top class: `(class, start, end, score)` with `end` exclusive and
    `score` the mean of that class's scores over the run.

    Args:
        frame_scores: (T, L) per-frame scores.
        active: (T,) bool, the frames that may belong to a segment (someone present and a window covers them).
        min_score: frames whose top score is below it belong to no segment; None keeps every active frame.
    """
    top = frame_scores.argmax(axis=1)
    best = np.take_along_axis(frame_scores, top[:, None], axis=1)[:, 0].astype(np.float64)
    kept = active if min_score is None else active & (best >= min_score)
    # A segment starts where a kept frame follows a dropped one or a frame of another class.
    label = np.where(kept, top, -1)
    boundaries = np.flatnonzero(np.diff(label, prepend=-2, append=-2))  # runs of kept and of dropped frames
    starts, ends = boundaries[:-1], boundaries[1:]
    totals = np.add.reduceat(best, starts)
    keep = label[starts] >= 0
    return [
        (int(c), int(s), int(e), float(total / (e - s)))
        for c, s, e, total in zip(label[starts][keep], starts[keep], ends[keep], totals[keep], strict=True)
    ]
