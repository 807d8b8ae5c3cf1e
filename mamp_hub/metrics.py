"""Metrics, in percent as in the paper's tables: top-1 / top-5 accuracy for `Trainer(compute_metrics=...)`, and for
untrimmed recordings the mAP of temporal action detection and frame accuracy."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import EvalPrediction

from .checks import checked, positive_int


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Percent of samples whose label is among the `k` highest logits, for each `k`.

    Args:
        logits: `(N, num_labels)` class scores.
        labels: `(N,)` class indices.
    Returns:
        `{"top1": ..., "top5": ...}`; a `k` above the number of classes counts every sample as correct.
    """
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"`ks` must be a list of positive integers, got {ks!r}; pass e.g. (1, 5).")
    ks = [checked("ks", positive_int, k) for k in ks]
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"Need logits (N, num_labels) and labels (N,), got {logits.shape} and {labels.shape}.")
    ranking = np.argsort(-logits, axis=1, kind="stable")[:, : max(ks)]
    hits = ranking == labels[:, None]
    return {f"top{k}": float(100.0 * hits[:, :k].any(axis=1).mean()) for k in ks}


def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`compute_metrics` for classification: top-1 and top-5 accuracy of the gathered logits."""
    return top_k_accuracy(eval_prediction.predictions, eval_prediction.label_ids)


def logits_only(outputs: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor) -> torch.Tensor:
    """`preprocess_logits_for_metrics`: keep the class scores, drop the pooled features the model also returns,
    so evaluation gathers `(N, num_labels)` instead of `(N, num_labels + hidden_size)` numbers."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


# ---------------------------------------------------------------------------------------------------- untrimmed

BACKGROUND = -1  # the frame label of "no action": frames that no segment covers
DETECTION_IOU_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)  # as PKU-MMD results are reported

Segment = Mapping[str, Any]  # {"label": int | str, "start": frame, "end": frame (exclusive)[, "score": float]}
Recordings = Sequence[Segment] | Mapping[str, Sequence[Segment]]


@dataclass
class _SegmentTable:
    """The segments of all recordings as columns."""

    labels: np.ndarray  # (N,) object: ints and strings, compared exactly
    recording: np.ndarray  # (N,) int64: index of each segment's recording
    start: np.ndarray  # (N,) float64
    end: np.ndarray  # (N,) float64
    score: np.ndarray  # (N,) float64; zeros for ground truth


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _segment_table(recordings: Mapping[str, Sequence[Segment]], kind: str, with_score: bool) -> _SegmentTable:
    """Checks every segment and gathers them; `kind` ("prediction", "ground truth") names them in errors."""
    keys = ("label", "start", "end", "score") if with_score else ("label", "start", "end")
    rows = []
    for index, (name, segments) in enumerate(recordings.items()):
        if isinstance(segments, (str, Mapping)) or not isinstance(segments, Sequence):
            raise ValueError(f"The {kind} of recording {name!r} must be a list of segment dicts, got {segments!r}.")
        for position, segment in enumerate(segments):
            where = f"{kind} {position} of recording {name!r} ({segment!r})"
            if not isinstance(segment, Mapping) or not all(key in segment for key in keys):
                raise ValueError(f"The {where} must be a dict with the keys {list(keys)}.")
            label, start, end = segment["label"], segment["start"], segment["end"]
            score = segment["score"] if with_score else 0.0
            if not isinstance(label, (numbers.Integral, str)) or isinstance(label, bool):
                raise ValueError(f"The {where} has label {label!r}; labels are ints or strings (matched exactly).")
            if not (_is_number(start) and _is_number(end) and math.isfinite(start) and math.isfinite(end)):
                raise ValueError(f"The {where} has start {start!r} and end {end!r}; both must be finite frame numbers.")
            if start < 0 or end <= start:
                raise ValueError(
                    f"The {where} spans frames [{start}, {end}); a segment needs 0 <= start < end (end exclusive)."
                )
            if not _is_number(score) or not math.isfinite(score):
                raise ValueError(f"The {where} has score {score!r}; scores must be finite numbers.")
            rows.append((label.item() if isinstance(label, np.generic) else label, index, start, end, score))
    labels = np.empty(len(rows), dtype=object)
    labels[:] = [row[0] for row in rows]
    recording, start, end, score = (np.array([row[i] for row in rows], dtype=np.float64) for i in range(1, 5))
    return _SegmentTable(labels, recording.astype(np.int64), start, end, score)


def _as_recordings(predictions: Recordings, ground_truth: Recordings) -> tuple[dict, dict]:
    """Both arguments as {recording id: segments}, with the same ids."""
    if isinstance(predictions, Mapping) != isinstance(ground_truth, Mapping):
        raise ValueError(
            "Pass predictions and ground truth in the same form: both lists of segments (one recording) or both "
            f"mappings recording id -> segments; got a {type(predictions).__name__} and a "
            f"{type(ground_truth).__name__}."
        )
    if not isinstance(ground_truth, Mapping):
        return {"recording": predictions}, {"recording": ground_truth}
    missing, unknown = sorted(set(ground_truth) - set(predictions)), sorted(set(predictions) - set(ground_truth))
    if missing or unknown:
        raise ValueError(
            f"Predictions and ground truth must cover the same recordings: no predictions for {missing}, "
            f"predictions for recordings without ground truth {unknown} (pass [] for a recording without segments)."
        )
    return dict(predictions), {name: ground_truth[name] for name in predictions}


def _check_iou_thresholds(iou_thresholds: Sequence[float]) -> np.ndarray:
    thresholds = [iou_thresholds] if _is_number(iou_thresholds) else list(iou_thresholds)
    bad = [value for value in thresholds if not _is_number(value) or not 0 < value <= 1]
    if not thresholds or bad:
        raise ValueError(
            f"IoU thresholds must be numbers in (0, 1], got {bad or iou_thresholds!r}; e.g. (0.1, 0.2, 0.3, 0.4, 0.5)."
        )
    return np.asarray(thresholds, dtype=np.float64)


def temporal_iou(start: np.ndarray, end: np.ndarray, other_start: np.ndarray, other_end: np.ndarray) -> np.ndarray:
    """Intersection over union of frame ranges `[start, end)` (end exclusive), all pairs.

    Args:
        start, end: `(N,)` the first segments.
        other_start, other_end: `(M,)` the second segments.
    Returns:
        `(N, M)` IoU in [0, 1]: frames in both / frames in either (PKU-MMD's evaluation computes the same ratio from
        the label file's numbers).
    """
    intersection = np.clip(np.minimum(end[:, None], other_end) - np.maximum(start[:, None], other_start), 0, None)
    union = (end - start)[:, None] + (other_end - other_start) - intersection
    return intersection / union


def _average_precision(true_positive: np.ndarray, num_ground_truth: int) -> np.ndarray:
    """All-point interpolated AP from `(T, P)` hits of predictions ranked by score (one row per threshold)."""
    hits = np.cumsum(true_positive, axis=1)
    precision = hits / np.arange(1, true_positive.shape[1] + 1)
    envelope = np.flip(np.maximum.accumulate(np.flip(precision, axis=1), axis=1), axis=1)  # best precision at >= recall
    return (envelope * true_positive).sum(axis=1) / num_ground_truth


def detection_map(
    predictions: Recordings,
    ground_truth: Recordings,
    iou_thresholds: Sequence[float] = DETECTION_IOU_THRESHOLDS,
) -> dict[float, float]:
    """Mean average precision of temporal action detection, in percent, at each IoU threshold.

    Segments are dicts `{"label", "start", "end"}` in frames, `end` exclusive (frames `start .. end - 1`);
    predictions also carry `"score"`. Labels are ints or strings, matched exactly (`1` is not `"1"`).

    The rule, as ActivityNet's and THUMOS's evaluation and the PKU-MMD protocol define it: per class, over all
    recordings, predictions are taken by descending score (ties in the order given, recording by recording);
    each is a true positive when some ground-truth instance of the same class in the same recording, not yet
    matched, overlaps it with IoU >= threshold (`temporal_iou`), and it takes the one of highest IoU; every other
    prediction is a false positive, so a second detection of an already matched instance counts against the class.
    AP is the area under the interpolated precision-recall curve, all points (PASCAL VOC 2010+, ActivityNet's
    `interpolated_prec_rec`): at each recall, the best precision reached at that recall or beyond. mAP averages AP
    over the classes that occur in the ground truth (a class without predictions has AP 0; predictions of a class
    without ground truth are left out).

    That is the AP PKU-MMD's `evaluate.py` describes ("sigma(precision(recall) * delta(recall))", interpolated),
    but not quite what it computes, which differs in three ways: it lets any number of predictions match the same
    instance (recall capped at 1), credits each recall step with the precision just before the true positive that
    makes it (so one correct detection alone scores 0), and averages over all 52 label slots, absent classes and
    the unused 0 included. Figures from it are therefore not comparable to these to the last point. PKU-MMD prints
    fractions (0.479); here, as for the accuracies of this module, percent (47.9).

    Args:
        predictions: one recording's predicted segments (a list) or a mapping recording id -> list.
        ground_truth: the same form: the true segments (a `"score"`, if any, is ignored).
        iou_thresholds: thresholds in (0, 1].

    Returns:
        `{threshold: mAP in percent}` in the order of `iou_thresholds`.

    Raises:
        ValueError: a segment with end <= start, a negative start, a non-finite frame or score, a label that is not
            an int or string, a threshold outside (0, 1], recordings that differ between the two arguments, or
            ground truth without any segment.
    """
    thresholds = _check_iou_thresholds(iou_thresholds)
    predictions, ground_truth = _as_recordings(predictions, ground_truth)
    predicted = _segment_table(predictions, "prediction", with_score=True)
    true = _segment_table(ground_truth, "ground truth", with_score=False)
    classes = list(dict.fromkeys(true.labels.tolist()))
    if not classes:
        raise ValueError("The ground truth holds no segment: mAP averages over the classes it holds.")

    average_precisions = np.zeros((len(classes), len(thresholds)))
    for row, label in enumerate(classes):
        mine = np.flatnonzero(predicted.labels == label)
        if not len(mine):
            continue
        mine = mine[np.argsort(-predicted.score[mine], kind="stable")]
        theirs = np.flatnonzero(true.labels == label)
        iou = temporal_iou(predicted.start[mine], predicted.end[mine], true.start[theirs], true.end[theirs])
        iou[predicted.recording[mine][:, None] != true.recording[theirs]] = -1.0  # never across recordings
        matched = np.zeros((len(thresholds), len(theirs)), dtype=bool)
        true_positive = np.zeros((len(thresholds), len(mine)), dtype=bool)
        for rank, overlaps in enumerate(iou):  # greedy: each prediction takes the best instance still free
            candidates = np.where((overlaps >= thresholds[:, None]) & ~matched, overlaps, -np.inf)
            best = candidates.argmax(axis=1)
            hit = np.isfinite(candidates[np.arange(len(thresholds)), best])
            matched[hit, best[hit]] = True
            true_positive[:, rank] = hit
        average_precisions[row] = _average_precision(true_positive, len(theirs))
    return {float(t): float(100.0 * ap) for t, ap in zip(thresholds, average_precisions.mean(axis=0), strict=True)}


def segments_to_frame_labels(segments: Sequence[Segment], num_frames: int) -> np.ndarray:
    """Per-frame labels of a recording from its segments.

    Args:
        segments: dicts `{"label": int >= 0, "start", "end"}` (whole frame numbers, `end` exclusive); where
            segments overlap, the later one in the list labels the shared frames.
        num_frames: frames of the recording.
    Returns:
        `(num_frames,)` int64: each frame's label, `BACKGROUND` (-1) where no segment covers it.
    Raises:
        ValueError: a segment that is not such a dict, outside `[0, num_frames)`, empty, with fractional frames, or
            with a label that is not an int >= 0.
    """
    if not isinstance(num_frames, numbers.Integral) or num_frames < 0:
        raise ValueError(f"`num_frames` must be an integer >= 0, got {num_frames!r}.")
    labels = np.full(num_frames, BACKGROUND, dtype=np.int64)
    for position, segment in enumerate(segments):
        if not isinstance(segment, Mapping) or not all(key in segment for key in ("label", "start", "end")):
            raise ValueError(
                f"Segment {position} ({segment!r}) must be a dict with the keys ['label', 'start', 'end']."
            )
        label, start, end = segment["label"], segment["start"], segment["end"]
        if not isinstance(label, numbers.Integral) or isinstance(label, bool) or label < 0:
            raise ValueError(f"Segment {position} ({segment!r}) has label {label!r}; frame labels are ints >= 0.")
        if not all(_is_number(v) and float(v).is_integer() for v in (start, end)) or not 0 <= start < end <= num_frames:
            raise ValueError(
                f"Segment {position} ({segment!r}) spans frames [{start}, {end}); it must be whole frames within the "
                f"recording's {num_frames}, 0 <= start < end <= {num_frames} (end exclusive)."
            )
        labels[int(start) : int(end)] = label
    return labels


def frame_accuracy(predicted: np.ndarray, target: np.ndarray, ignore_background: bool = False) -> float:
    """Percent of frames whose predicted label is the target label.

    `BACKGROUND` (-1) means "no action" and counts as a class of its own: a background frame is right only when
    predicted as background, an action frame predicted as background is wrong.

    Args:
        predicted: `(frames,)` int labels, `BACKGROUND` where nothing is predicted.
        target: `(frames,)` int labels, `BACKGROUND` where no action happens.
        ignore_background: count only the frames whose target is an action (frames of background are left out,
            whatever is predicted on them).
    Returns:
        Accuracy in percent.
    Raises:
        ValueError: arrays that are not 1-D integer arrays of the same length, labels below -1, or no frame to count.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    for name, labels in (("predicted", predicted), ("target", target)):
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"`{name}` must be a (frames,) array of int labels, got {labels.dtype} {labels.shape}.")
        if labels.size and labels.min() < BACKGROUND:
            raise ValueError(f"`{name}` holds label {labels.min()}; labels are >= 0, or {BACKGROUND} for no action.")
    if predicted.shape != target.shape:
        raise ValueError(f"`predicted` has {len(predicted)} frames but `target` {len(target)}; pass one per frame.")
    counted = target != BACKGROUND if ignore_background else np.ones(len(target), dtype=bool)
    if not counted.any():
        what = "no frame whose target is an action" if ignore_background else "no frame"
        raise ValueError(f"Frame accuracy needs frames to count, but the target has {what} ({len(target)} frames).")
    return float(100.0 * (predicted[counted] == target[counted]).mean())
