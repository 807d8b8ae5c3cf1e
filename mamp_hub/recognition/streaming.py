"""Recognition of a live pose stream: frames pushed in chunks of any size, windows returned as soon as they are
complete, with memory for one window of frames (a ring buffer), not for the stream."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import checked, positive_int
from ..processing_mamp import MampSkeletonProcessor
from ..skeletons.layouts import as_float_array
from .persons import (
    NO_TRACK,
    Recording,
    checked_centre,
    checked_policy,
    checked_track_ids,
    person_rows,
    window_clips,
)
from .recognize import WindowClip, run_clips, window_record
from .runners import classifier_runner
from .windows import checked_fps, checked_window


class StreamingActionRecognizer:
    """Recognises actions in a stream of skeleton frames, window by window, as the frames arrive.

    `push(frames)` takes the next frames (any number, from a camera or pose-estimator loop) and returns the windows
    that they complete; `flush()` ends the stream and returns the rest: the last window, ending at the last frame,
    when the windows so far stopped short of it (or the one shorter window of a stream shorter than a window). A stream
    pushed in chunks of any sizes gives the windows that the offline call `pipeline(recording, window=, stride=,
    return_windows=True)["windows"]` gives: the same frames and labels, and the same scores exactly when both run one
    window per model call (`batch_size=1`, the default of both; other batch sizes change the float32 rounding of the
    batched products, by about 1e-7). Between pushes it keeps the last `window` frames only.

    Args:
        pipeline_or_model: what classifies the windows: a `"skeleton-action-recognition"` pipeline, a
            `MampForSkeletonClassification` (with `processor`, default: the one saved with the checkpoint), or an ONNX
            classifier from `mamp-export-onnx` (an `onnxruntime.InferenceSession` or the `.onnx` file's path; the
            default processor is built from the config stored in the file).
        window: frames per window; default: the checkpoint's (`mamp_hub.recognition.default_window`).
        stride: frames between window starts; default: a quarter of the window.
        processor: the `MampSkeletonProcessor` that prepares each window (default: see `pipeline_or_model`).
        fps: frames per second; the windows then carry `"start_s"` and `"end_s"` as well.
        persons: `"most_active"` (default) or `"each"`, see `mamp_hub.recognition.persons`.
        centre: move each window's clip of NTU joints as the NTU files are centred (see
            `mamp_hub.recognition.persons`); default False: the joints as pushed.
        batch_size: windows per model call when a push completes several.
        function_to_apply: `"softmax"`, `"sigmoid"` or `"none"`, as for the pipeline.
        layout: the array layout of the pushed frames when their shape fits several (see `push`).

    Example:

    ```python
    >>> recognizer = StreamingActionRecognizer(classifier, fps=30)
    >>> for frame in camera:  # (1, 25, 3): one frame of one person
    ...     for window in recognizer.push(frame):
    ...         print(f"{window['start_s']:.1f}-{window['end_s']:.1f} s: {window['label']} ({window['score']:.2f})")
    >>> last = recognizer.flush()
    ```
    """

    def __init__(
        self,
        pipeline_or_model: Any,
        window: int | None = None,
        stride: int | None = None,
        *,
        processor: MampSkeletonProcessor | None = None,
        fps: float | None = None,
        persons: str = "most_active",
        centre: bool = False,
        batch_size: int = 1,
        function_to_apply: str | None = None,
        layout: str | None = None,
    ) -> None:
        self._runner = classifier_runner(pipeline_or_model, processor, function_to_apply)
        self.processor = self._runner.processor
        self.window, self.stride = checked_window(
            window, stride, self.processor.num_frames, self.processor.eval_crop_ratio
        )
        self.fps = checked_fps(fps)
        self.persons = checked_policy(persons)
        self.centre = checked_centre(centre, self.processor)
        self.batch_size = checked("batch_size", positive_int, batch_size)
        self.layout = layout
        self._start_stream()

    def _start_stream(self) -> None:
        self._joints: np.ndarray | None = None  # (slots, window, joints, channels): frame t at t % window
        self._track_ids: np.ndarray | None = None  # (slots, window)
        self._frames = 0  # frames pushed since the stream started
        self._next_start = 0  # the first frame of the next window to complete

    @property
    def frames_seen(self) -> int:
        """Frames pushed since the stream started (or since the last `flush`)."""
        return self._frames

    def push(self, frames: Any, tracks: Any = None) -> list[dict[str, Any]]:
        """Adds frames to the stream; returns the windows they complete, in order (see `mamp_hub.recognition`'s
        window dicts), often none.

        Args:
            frames: the next frames, with a frame axis even for one frame: `(frames, joints, channels)` for one
                person, `(persons, frames, joints, channels)` for any number, or NTU rows `(frames, persons * joints
                * channels)`; numpy or torch. The person count may change from push to push (rows missing from a
                push are empty in its frames); the joints may not.
            tracks: the track ids of the rows, `(persons,)`, or of each row in each frame, `(persons, frames)`
                (negative: nobody); default: row s is track s.

        Raises:
            ValueError: frames in no layout, with other joints than the stream's, or bad `tracks`.
        """
        chunk = self._chunk(frames, tracks)
        clips = []
        written = 0
        while written < chunk.frames:
            # Write up to the end of the next window (at most a window of frames), then cut that window.
            count = min(chunk.frames - written, self._next_start + self.window - self._frames)
            self._write(chunk.window(written, written + count))
            written += count
            if self._frames == self._next_start + self.window:
                clips += self._window_clips(self._next_start, self._frames)
                self._next_start += self.stride
        return self._recognise(clips)

    def flush(self) -> list[dict[str, Any]]:
        """Ends the stream: returns the windows not returned yet (the last one ends at the last frame pushed) and
        starts a new stream."""
        frames, last_end = self._frames, self._next_start - self.stride + self.window
        clips = []
        if frames and (self._next_start == 0 or last_end < frames):
            clips = self._window_clips(max(0, frames - self.window), frames)
        windows = self._recognise(clips)
        self._start_stream()
        return windows

    # ------------------------------------------------------------------ internals

    def _chunk(self, frames: Any, tracks: Any) -> Recording:
        """The pushed frames as a `Recording` with the stream's person rows (and its joints checked)."""
        try:
            joints = person_rows(as_float_array(frames, "The pushed frames"), self.processor, self.layout, "frames")
        except ValueError as error:
            raise ValueError(f"{error} One frame of one person is (1, joints, channels).") from None
        chunk = Recording.from_rows(joints, checked_track_ids(tracks, *joints.shape[:2]))
        if self._joints is None:
            self._joints = np.zeros((0, self.window, *joints.shape[2:]), dtype=np.float32)
            self._track_ids = np.zeros((0, self.window), dtype=np.int64)
        if joints.shape[2:] != self._joints.shape[2:]:
            raise ValueError(
                f"The pushed frames have {joints.shape[2]} joints of {joints.shape[3]} values, the stream's earlier "
                f"frames {self._joints.shape[2]} of {self._joints.shape[3]}; push the same joints throughout, or "
                "flush() to start a new stream."
            )
        slots = max(len(self._joints), len(joints))
        if slots > len(self._joints):  # more people than so far: empty rows for the frames before
            self._joints = _with_rows(self._joints, slots, 0)
            self._track_ids = _with_rows(self._track_ids, slots, NO_TRACK)
        return Recording(_with_rows(chunk.joints, slots, 0), _with_rows(chunk.track_ids, slots, NO_TRACK))

    def _write(self, frames: Recording) -> None:
        """Frames (at most a window of them) into the ring buffer after the last one."""
        positions = (self._frames + np.arange(frames.frames)) % self.window
        self._joints[:, positions] = frames.joints
        self._track_ids[:, positions] = frames.track_ids
        self._frames += frames.frames

    def _window_clips(self, start: int, end: int) -> list[WindowClip]:
        """The clips of the window of frames `[start, end)`, which the ring buffer holds (frame t at t % window)."""
        ring = (start + np.arange(end - start)) % self.window
        window = Recording(self._joints[:, ring], self._track_ids[:, ring])
        return [
            WindowClip(start, end, track, clip)
            for track, clip in window_clips(window, self.persons, self.processor.max_persons, self.centre)
        ]

    def _recognise(self, clips: list[WindowClip]) -> list[dict[str, Any]]:
        outputs = run_clips(clips, self._runner, self.batch_size)
        id2label = self._runner.config.id2label
        return [window_record(clip, output, id2label, self.fps) for clip, output in zip(clips, outputs, strict=True)]


def _with_rows(array: np.ndarray, rows: int, fill: int) -> np.ndarray:
    """`array` with empty rows (`fill`) appended along its first axis up to `rows`."""
    if len(array) == rows:
        return array
    padding = np.full((rows - len(array), *array.shape[1:]), fill, dtype=array.dtype)
    return np.concatenate([array, padding])
