"""Evaluation of action recognition on untrimmed recordings: frame accuracy and detection mAP, beside a baseline.

The recognizer is any function from a recording to its predicted segments, so the same evaluation serves the
windowed pipeline, a streaming recognizer or another method; `evaluate_untrimmed` runs it over the recordings
and `format_untrimmed_table` prints the figures as a markdown table. The baseline predicts, for every frame of
every recording, the class that covers the most frames of the ground truth (one segment per recording): what a
recognizer scores from the class frequencies alone, so the table shows the margin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .metrics import (
    BACKGROUND,
    DETECTION_IOU_THRESHOLDS,
    Segment,
    detection_map,
    frame_accuracy,
    segments_to_frame_labels,
)

Recognizer = Callable[[np.ndarray], Mapping[str, Any]]


def _integer_labels(segments: Sequence[Segment], label2id: Mapping[str, int] | None, name: str) -> list[dict]:
    """The segments with label names turned into class indices through `label2id` (ints are kept)."""
    converted = []
    for segment in segments:
        label = segment.get("label") if isinstance(segment, Mapping) else None
        if isinstance(label, str):
            if label2id is None:
                raise ValueError(
                    f"recognize() gave recording {name!r} the label {label!r}, a name; pass "
                    "id2label=model.config.id2label so that names are matched to the ground truth's class indices."
                )
            if label not in label2id:
                raise ValueError(
                    f"recognize() gave recording {name!r} the label {label!r}, which is not in id2label "
                    f"({sorted(label2id)})."
                )
            segment = {**segment, "label": label2id[label]}
        converted.append(segment)
    return converted


def _predicted_segments(output: object, name: str) -> list[Segment]:
    segments = output.get("segments") if isinstance(output, Mapping) else None
    if isinstance(segments, (str, Mapping)) or not isinstance(segments, Sequence):
        raise ValueError(
            f"recognize() must return a dict with 'segments', a list of {{'label', 'score', 'start', 'end'}} "
            f"dicts (as the pipeline called with window=), but for recording {name!r} it returned {output!r:.200}."
        )
    return list(segments)


def _figures(
    frame_labels: list[np.ndarray],
    targets: list[np.ndarray],
    predictions: dict[str, list[Segment]],
    ground_truth: dict[str, list[Segment]],
    iou_thresholds: Sequence[float],
) -> dict[str, Any]:
    """Frame accuracies over the frames of all recordings (`(frames,)` labels each) and detection mAP."""
    predicted, target = np.concatenate(frame_labels), np.concatenate(targets)
    return {
        "frame_accuracy": frame_accuracy(predicted, target),
        "action_frame_accuracy": frame_accuracy(predicted, target, ignore_background=True),
        "map": detection_map(predictions, ground_truth, iou_thresholds),
    }


def evaluate_untrimmed(
    recognize: Recognizer,
    recordings: Iterable[tuple[str, np.ndarray, Sequence[Segment]]],
    iou_thresholds: Sequence[float] = DETECTION_IOU_THRESHOLDS,
    id2label: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Runs `recognize` on each recording and scores its segments against the ground truth, and the baseline's.

    Wiring it to the windowed pipeline and a folder of PKU-MMD (or `mamp_hub.data.untrimmed`) recordings:

    ```python
    >>> from transformers import pipeline
    >>> from mamp_hub.data.prepare_pku import iter_pku_recordings
    >>> from mamp_hub.evaluation import evaluate_untrimmed, format_untrimmed_table
    >>> classifier = pipeline("skeleton-action-recognition", model="path/to/fine-tuned")
    >>> results = evaluate_untrimmed(
    ...     lambda skeleton: classifier(skeleton, window=120, stride=30, min_score=0.0),
    ...     iter_pku_recordings("synthetic_untrimmed"),
    ...     id2label=classifier.model.config.id2label,
    ... )
    >>> print(format_untrimmed_table(results))
    ```

    Args:
        recognize: recording `(frames, ...)` -> `{"segments": [{"label", "score", "start", "end"}, ...], ...}`,
            frames `[start, end)` (the pipeline's output with `window=`; other keys, such as `"frame_scores"`, are
            not read). Labels are class indices, or names when `id2label` is given.
        recordings: `(name, recording, ground-truth segments)` for each recording, read one at a time:
            the recording an array with frames first (e.g. `(frames, 150)`, as `read_pku_recording` and the
            synthetic generator give), passed to `recognize` as it is; the segments `{"label": class index,
            "start", "end"}`. Names must differ.
        iou_thresholds: IoU thresholds of the detection mAP (in (0, 1]).
        id2label: class index -> name (a model's `config.id2label`), to match predicted names to the ground truth.

    Returns:
        A dict:
        - `"model"` and `"baseline"`: `{"frame_accuracy", "action_frame_accuracy", "map": {threshold: mAP}}`, in
          percent, over all frames and recordings. Frame labels come from the segments: a frame in no predicted
          segment is "no action" (`BACKGROUND`), and frame accuracy counts "no action" as a class of its own;
          action-frame accuracy counts only the frames inside ground-truth actions. mAP is `detection_map`'s.
          The baseline also has `"label"`, the class it predicts.
        - `"recordings"`: per recording, in order, `{"name", "frames", "actions" (ground truth), "segments" (the
          predicted ones, as given), "frame_accuracy", "action_frame_accuracy"}` (the latter None without actions).
        - `"num_recordings"`, `"num_frames"`, `"num_actions"`, `"iou_thresholds"`.

    Raises:
        ValueError: no recording, two with the same name, a recording without frames, ground truth without any
            action, `recognize` returning something other than segments (or segments outside the recording, or a
            label name without `id2label`), and every bad segment `detection_map` refuses, naming the recording.
    """
    label2id = None if id2label is None else {name: int(index) for index, name in id2label.items()}
    details, predictions, ground_truth = [], {}, {}
    frame_labels, targets = [], []
    for name, recording, truth in recordings:
        if name in ground_truth:
            raise ValueError(f"Two recordings are named {name!r}; names identify recordings and must differ.")
        frames = len(recording)
        if not frames:
            raise ValueError(f"Recording {name!r} has no frame; pass recordings with frames first, (frames, ...).")
        segments = _predicted_segments(recognize(recording), name)
        try:
            target = segments_to_frame_labels(truth, frames)
        except ValueError as error:
            raise ValueError(f"The ground truth of recording {name!r} ({frames} frames): {error}") from None
        predicted = _integer_labels(segments, label2id, name)
        try:
            frame_labels.append(segments_to_frame_labels(predicted, frames))
        except ValueError as error:
            raise ValueError(f"recognize() on recording {name!r} ({frames} frames): {error}") from None
        targets.append(target)
        predictions[name], ground_truth[name] = predicted, list(truth)
        acting = target != BACKGROUND
        details.append(
            {
                "name": name,
                "frames": frames,
                "actions": len(truth),
                "segments": segments,
                "frame_accuracy": frame_accuracy(frame_labels[-1], target),
                "action_frame_accuracy": frame_accuracy(frame_labels[-1], target, True) if acting.any() else None,
            }
        )
    if not details:
        raise ValueError("No recording to evaluate; pass (name, recording, segments) for at least one.")

    all_targets = np.concatenate(targets)
    if not (all_targets != BACKGROUND).any():
        raise ValueError("The ground truth holds no action in any recording; there is nothing to detect.")
    label = int(np.bincount(all_targets[all_targets != BACKGROUND]).argmax())  # ties: the smallest index
    everywhere = {d["name"]: [{"label": label, "score": 1.0, "start": 0, "end": d["frames"]}] for d in details}
    model = _figures(frame_labels, targets, predictions, ground_truth, iou_thresholds)
    baseline = _figures([np.full(len(t), label) for t in targets], targets, everywhere, ground_truth, iou_thresholds)
    return {
        "model": model,
        "baseline": {"label": label, **baseline},
        "recordings": details,
        "num_recordings": len(details),
        "num_frames": len(all_targets),
        "num_actions": sum(len(truth) for truth in ground_truth.values()),
        "iou_thresholds": list(model["map"]),
    }


def format_untrimmed_table(
    results: Mapping[str, Any], id2label: Mapping[int, str] | None = None, per_recording: bool = False
) -> str:
    """The figures of `evaluate_untrimmed` as a markdown table: the recognizer's row and the baseline's.

    Args:
        results: what `evaluate_untrimmed` returned.
        id2label: class names, to name the baseline's class.
        per_recording: also a table with one row per recording.
    """
    thresholds = results["iou_thresholds"]
    header = "| | frame accuracy (%) | action-frame accuracy (%) | " + " | ".join(f"mAP@{t:g} (%)" for t in thresholds)
    label = results["baseline"]["label"]
    name = f"{label} ({id2label[label]})" if id2label and label in id2label else str(label)

    def row(title: str, figures: Mapping[str, Any]) -> str:
        maps = " | ".join(f"{figures['map'][t]:.1f}" for t in thresholds)
        return f"| {title} | {figures['frame_accuracy']:.1f} | {figures['action_frame_accuracy']:.1f} | {maps} |"

    lines = [
        header + " |",
        "|---" * (3 + len(thresholds)) + "|",
        row("recognizer", results["model"]),
        row(f"baseline: class {name} everywhere", results["baseline"]),
        "",
        f"{results['num_recordings']} recordings, {results['num_frames']} frames, {results['num_actions']} actions. "
        "Frame accuracy counts frames of no action as a class of their own; action-frame accuracy counts the frames "
        "of actions only. mAP: temporal action detection (mamp_hub.metrics.detection_map); the baseline predicts "
        "the most frequent class of the ground truth for every frame.",
    ]
    if per_recording:
        lines += [
            "",
            "| recording | frames | actions | predicted segments | frame accuracy (%) | action-frame accuracy (%) |",
        ]
        lines.append("|---|---|---|---|---|---|")
        for detail in results["recordings"]:
            acting = detail["action_frame_accuracy"]
            lines.append(
                f"| {detail['name']} | {detail['frames']} | {detail['actions']} | {len(detail['segments'])} | "
                f"{detail['frame_accuracy']:.1f} | {'-' if acting is None else f'{acting:.1f}'} |"
            )
    return "\n".join(lines)
