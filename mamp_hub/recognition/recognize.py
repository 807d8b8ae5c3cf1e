"""Recognition of a whole recording in windows: the windows' clips run in batches, then the windows' scores become
per-frame scores and segments (what the pipelines return when called with `window=`).

Result dicts (frames are indices into the recording, `end` exclusive; seconds are `frame / fps`):
- a window: `{"start", "end", "label", "score"}`, the top class of the window's clip and its score; `label` and
  `score` are None when nobody is present in the window. With `fps`, also `"start_s"`, `"end_s"`; with
  `persons="each"`, one dict per track present in the window, with its `"track"`.
- a segment: `{"label", "score", "start", "end"}` (and `"start_s"`, `"end_s"`, `"track"` likewise): a run of frames
  with the same top class in the per-frame scores, scored by that class's mean score over the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .persons import Recording, window_clips
from .windows import average_over_windows, frame_segments, window_starts

Runner = Callable[[list[np.ndarray]], torch.Tensor]


@dataclass
class WindowClip:
    """A clip cut from a window: frames `[start, end)` of the recording, the track it follows (None: the window's
    most active people), and its `(people, frames, joints, channels)` joints (None: nobody is present)."""

    start: int
    end: int
    track: int | None
    clip: np.ndarray | None


def cut_windows(
    recording: Recording, starts: Sequence[int], window: int, persons: str, max_persons: int, centre: bool = False
) -> list[WindowClip]:
    """The clips of the windows starting at `starts` (see `window_clips` for the person policy and `centre`)."""
    clips = []
    for start in starts:
        end = min(int(start) + window, recording.frames)
        clips += [
            WindowClip(int(start), end, track, clip)
            for track, clip in window_clips(recording.window(start, end), persons, max_persons, centre)
        ]
    return clips


def run_clips(
    clips: list[WindowClip], runner: Runner, batch_size: int, progress: bool = False
) -> list[torch.Tensor | None]:
    """`runner`'s output for each clip (None for a window with nobody present), `batch_size` clips per call in
    order; `progress` shows a progress bar when there is more than one batch."""
    runnable = [index for index, item in enumerate(clips) if item.clip is not None]
    outputs: list[torch.Tensor | None] = [None] * len(clips)
    firsts = range(0, len(runnable), batch_size)
    for first in tqdm(firsts, desc="windows", unit="batch", disable=not progress or len(firsts) < 2):
        batch = runnable[first : first + batch_size]
        for index, output in zip(batch, runner([clips[index].clip for index in batch]), strict=True):
            outputs[index] = output
    return outputs


def window_record(item: WindowClip, scores: torch.Tensor | None, id2label: dict[int, str], fps: float | None) -> dict:
    """The result dict of one window (see the module's docstring)."""
    record: dict[str, Any] = {"start": item.start, "end": item.end, "label": None, "score": None}
    if scores is not None:
        best = int(scores.argmax())
        record.update(label=id2label[best], score=float(scores[best]))
    return _located(record, item.track, fps)


def _located(record: dict, track: int | None, fps: float | None) -> dict:
    if fps is not None:
        record.update(start_s=record["start"] / fps, end_s=record["end"] / fps)
    if track is not None:
        record["track"] = track
    return record


def recognize_recording(
    recording: Recording,
    runner: Runner,
    id2label: dict[int, str],
    window: int,
    stride: int,
    *,
    max_persons: int,
    persons: str = "most_active",
    centre: bool = False,
    fps: float | None = None,
    min_score: float | None = None,
    return_frame_scores: bool = False,
    return_windows: bool = False,
    batch_size: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Segments (and per-frame scores, windows) of a recording; arguments as checked by the pipeline.

    Returns:
        `{"segments": [...]}`, sorted by start (then track), plus `"frame_scores"` (`(frames, num_labels)` float32,
        the mean of the scores of the windows covering each frame; zeros where nobody is present; with
        `persons="each"`, a dict track -> such an array, zeros where the track is absent) and `"windows"` when asked.
    """
    starts = window_starts(recording.frames, window, stride)
    clips = cut_windows(recording, starts, window, persons, max_persons, centre)
    outputs = run_clips(clips, runner, batch_size, progress)
    num_labels = len(id2label)
    tracks = [None] if persons != "each" else np.unique(recording.track_ids[recording.track_ids >= 0]).tolist()
    segments, frame_scores = [], {}
    for track in tracks:
        scored = [
            (item, output)
            for item, output in zip(clips, outputs, strict=True)
            if output is not None and item.track == track
        ]
        scores = torch.stack([output for _, output in scored]).numpy() if scored else np.zeros((0, num_labels))
        means, counts = average_over_windows(
            np.array([item.start for item, _ in scored], dtype=np.int64),
            np.array([item.end for item, _ in scored], dtype=np.int64),
            scores,
            recording.frames,
        )
        present = (recording.track_ids == track).any(axis=0) if track is not None else recording.present()
        means[~present] = 0
        frame_scores[track] = means
        segments += [
            _located({"label": id2label[label], "score": score, "start": start, "end": end}, track, fps)
            for label, start, end, score in frame_segments(means, present & (counts > 0), min_score)
        ]
    result: dict[str, Any] = {"segments": sorted(segments, key=lambda s: (s["start"], s.get("track", 0)))}
    if return_frame_scores:
        result["frame_scores"] = frame_scores if persons == "each" else frame_scores[None]
    if return_windows:
        result["windows"] = [
            window_record(item, output, id2label, fps) for item, output in zip(clips, outputs, strict=True)
        ]
    return result


def window_features(
    recording: Recording,
    runner: Runner,
    window: int,
    stride: int,
    *,
    max_persons: int,
    persons: str = "most_active",
    centre: bool = False,
    fps: float | None = None,
    batch_size: int = 1,
    return_tensors: bool = False,
) -> list[dict[str, Any]]:
    """One dict per window (per track with `persons="each"`): `{"start", "end", "features"}` (and `"start_s"`,
    `"end_s"`, `"track"` as for windows), the features being the runner's output for the window's clip (a tensor, or
    nested lists; None when nobody is present)."""
    starts = window_starts(recording.frames, window, stride)
    clips = cut_windows(recording, starts, window, persons, max_persons, centre)
    outputs = run_clips(clips, runner, batch_size)
    return [
        _located(
            {
                "start": item.start,
                "end": item.end,
                "features": output if return_tensors or output is None else output.tolist(),
            },
            item.track,
            fps,
        )
        for item, output in zip(clips, outputs, strict=True)
    ]
