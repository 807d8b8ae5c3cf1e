"""Metrics of untrimmed recognition: detection mAP on hand-computed cases, frame accuracy, frame labels, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mamp_hub.metrics import (
    BACKGROUND,
    detection_map,
    frame_accuracy,
    segments_to_frame_labels,
    temporal_iou,
)


def segment(label, start, end, score=None):
    return {"label": label, "start": start, "end": end, **({} if score is None else {"score": score})}


# Two recordings, three classes. Class 0: a false positive ranked first, the instance of "b" found at IoU 0.5 exactly,
# the instance of "a" found twice (the second detection is a duplicate); class 1 found at IoU 0.5 exactly; class 2
# never predicted.
GROUND_TRUTH = {
    "a": [segment(0, 0, 10), segment(1, 20, 40)],
    "b": [segment(0, 0, 20), segment(2, 30, 40)],
}
PREDICTIONS = {
    "a": [segment(0, 0, 8, 0.92), segment(0, 0, 10, 0.9), segment(1, 20, 30, 0.7)],
    "b": [segment(0, 50, 60, 0.99), segment(0, 0, 10, 0.95)],
}


def test_map_by_hand_several_recordings_and_classes():
    """Class 0 ranks FP(.99) b[0,10)(.95, IoU .5) a[0,8)(.92, IoU .8) a[0,10)(.9, IoU 1), with 2 instances:
    - IoU 0.5: FP TP TP FP -> precisions 0, 1/2, 2/3, 2/4; interpolated at the two hits: 2/3, 2/3 -> AP 2/3;
    - IoU 0.6: FP FP TP FP -> AP (1/3) / 2 = 1/6;
    - IoU 0.9: FP FP FP TP: a[0,8) misses, so the later a[0,10) takes the instance -> AP (1/4) / 2 = 1/8.
    Class 1 (IoU exactly 0.5): AP 1 at 0.5, 0 above. Class 2: no prediction, AP 0."""
    result = detection_map(PREDICTIONS, GROUND_TRUTH, iou_thresholds=(0.5, 0.6, 0.9))
    assert list(result) == [0.5, 0.6, 0.9]
    expected = {0.5: (2 / 3 + 1 + 0) / 3, 0.6: (1 / 6) / 3, 0.9: (1 / 8) / 3}
    for threshold, value in expected.items():
        assert result[threshold] == pytest.approx(100 * value, abs=1e-12)


def test_a_duplicate_counts_against_its_class():
    truth = [segment(0, 0, 10)]
    once = detection_map([segment(0, 0, 10, 0.9)], truth, iou_thresholds=(0.5,))
    twice = detection_map([segment(0, 0, 10, 0.9), segment(0, 0, 10, 0.8)], truth, iou_thresholds=(0.5,))
    duplicate_first = detection_map([segment(0, 0, 10, 0.8), segment(0, 1, 9, 0.9)], truth, iou_thresholds=(0.5,))
    assert once == twice == duplicate_first == {0.5: 100.0}  # a duplicate ranked below the hit costs nothing
    wrong_first = detection_map([segment(0, 50, 60, 0.95), segment(0, 0, 10, 0.9)], truth, iou_thresholds=(0.5,))
    assert wrong_first == {0.5: 50.0}


def test_a_prediction_overlapping_two_instances_takes_the_better_one():
    """[5, 25) overlaps [0, 10) with IoU 5/25 and [10, 30) with IoU 15/25: it takes the latter, so [0, 10) is still
    free for the exact detection ranked second (a first-come rule would leave both [0, 10) hits to the first)."""
    truth = [segment(0, 0, 10), segment(0, 10, 30)]
    predictions = [segment(0, 5, 25, 0.9), segment(0, 0, 10, 0.8)]
    result = detection_map(predictions, truth, iou_thresholds=(0.1, 0.5, 0.7))
    assert result == pytest.approx({0.1: 100.0, 0.5: 100.0, 0.7: 25.0})  # at 0.7: FP then TP, (1/2) / 2
    # One prediction can match only one of two instances: recall 1/2 at most.
    halves = [segment(0, 0, 10), segment(0, 10, 20)]
    assert detection_map([segment(0, 0, 20, 0.9)], halves, iou_thresholds=(0.5,)) == {0.5: 50.0}


def test_iou_exactly_at_the_threshold_is_a_match():
    truth = [segment(3, 0, 10)]
    for end, threshold in ((3, 0.3), (4, 0.4), (5, 0.5), (10, 1.0)):
        assert detection_map([segment(3, 0, end, 1.0)], truth, iou_thresholds=(threshold,)) == {threshold: 100.0}
        just_above = np.nextafter(threshold, 2.0)
        expected = 100.0 if end == 10 else 0.0
        assert detection_map([segment(3, 0, end, 1.0)], truth, iou_thresholds=(min(just_above, 1.0),)) == {
            min(just_above, 1.0): expected
        }


def test_labels_match_exactly_and_recordings_never_mix():
    truth = {"a": [segment("wave", 0, 10)], "b": [segment(1, 0, 10)]}
    assert detection_map({"a": [segment("wave", 0, 10, 1.0)], "b": [segment(1, 0, 10, 1.0)]}, truth)[0.5] == 100.0
    assert detection_map({"a": [segment("wave", 0, 10, 1.0)], "b": [segment("1", 0, 10, 1.0)]}, truth)[0.5] == 50.0
    same_label = {"a": [segment(1, 0, 10)], "b": [segment(1, 0, 10)]}
    crossed = {"a": [segment(1, 0, 10, 1.0), segment(1, 0, 10, 0.5)], "b": []}  # both in "a": one is a duplicate
    assert detection_map(crossed, same_label, iou_thresholds=(0.5,)) == {0.5: 50.0}
    assert detection_map({"a": [segment(np.int64(1), 0, 10, np.float32(1.0))], "b": []}, same_label)[0.5] == 50.0


def test_predictions_of_classes_without_ground_truth_are_left_out():
    truth = [segment(0, 0, 10)]
    predictions = [segment(0, 0, 10, 0.5), segment(7, 0, 10, 0.9)]
    assert detection_map(predictions, truth, iou_thresholds=(0.5,)) == {0.5: 100.0}
    assert detection_map([], truth, iou_thresholds=(0.5,)) == {0.5: 0.0}


def test_temporal_iou_counts_frames():
    """[0, 10) and [4, 6) against [0, 5) and [10, 20): adjacent ranges share no frame."""
    iou = temporal_iou(np.array([0.0, 4.0]), np.array([10.0, 6.0]), np.array([0.0, 10.0]), np.array([5.0, 20.0]))
    np.testing.assert_allclose(iou, [[0.5, 0.0], [1 / 6, 0.0]])


@pytest.mark.parametrize(
    ("predictions", "truth", "thresholds", "message"),
    [
        ([segment(0, 10, 10, 1.0)], [segment(0, 0, 10)], (0.5,), r"\[10, 10\)"),
        ([segment(0, 0, 10, 1.0)], [segment(0, 12, 8)], (0.5,), r"ground truth 0 .*\[12, 8\)"),
        ([segment(0, -3, 10, 1.0)], [segment(0, 0, 10)], (0.5,), r"\[-3, 10\)"),
        ([segment(0, 0, 10, math.nan)], [segment(0, 0, 10)], (0.5,), "score nan"),
        ([segment(0, 0, 10)], [segment(0, 0, 10)], (0.5,), r"keys \['label', 'start', 'end', 'score'\]"),
        ([segment(0.0, 0, 10, 1.0)], [segment(0, 0, 10)], (0.5,), "label 0.0"),
        ([segment(0, 0, math.inf, 1.0)], [segment(0, 0, 10)], (0.5,), "end inf"),
        ([segment(0, 0, 10, 1.0)], [segment(0, 0, 10)], (0.0,), r"\[0.0\]"),
        ([segment(0, 0, 10, 1.0)], [segment(0, 0, 10)], (0.5, 1.5), r"\[1.5\]"),
        ([segment(0, 0, 10, 1.0)], [segment(0, 0, 10)], (math.nan,), r"\[nan\]"),
        ([segment(0, 0, 10, 1.0)], [segment(0, 0, 10)], (), r"\(\)"),
        ({"a": [], "c": []}, {"a": [segment(0, 0, 10)], "b": []}, (0.5,), r"no predictions for \['b'\].*\['c'\]"),
        ({"a": []}, [segment(0, 0, 10)], (0.5,), "same form"),
        ([], [], (0.5,), "holds no segment"),
        ({"a": segment(0, 0, 10, 1.0)}, {"a": [segment(0, 0, 10)]}, (0.5,), "must be a list"),
    ],
)
def test_bad_inputs_are_named(predictions, truth, thresholds, message):
    with pytest.raises(ValueError, match=message):
        detection_map(predictions, truth, iou_thresholds=thresholds)


def test_frame_labels_from_segments():
    labels = segments_to_frame_labels([segment(2, 1, 4), segment(0, 3, 5)], 7)
    np.testing.assert_array_equal(labels, [BACKGROUND, 2, 2, 0, 0, BACKGROUND, BACKGROUND])  # the later one wins
    assert segments_to_frame_labels([], 3).tolist() == [BACKGROUND] * 3
    for bad, message in (
        (segment(0, 5, 8), r"\[5, 8\).* 0 <= start < end <= 7"),
        (segment(0, 2, 2), r"\[2, 2\)"),
        (segment(0, 1.5, 3), r"\[1.5, 3\)"),
        (segment(-1, 0, 3), "label -1"),
        (segment("wave", 0, 3), "label 'wave'"),
    ):
        with pytest.raises(ValueError, match=message):
            segments_to_frame_labels([bad], 7)


def test_frame_accuracy_counts_background_as_a_class():
    target = np.array([BACKGROUND, BACKGROUND, 0, 0, 1, 1, 1, BACKGROUND])
    predicted = np.array([BACKGROUND, 0, 0, 0, 1, 2, BACKGROUND, BACKGROUND])
    assert frame_accuracy(predicted, target) == pytest.approx(100 * 5 / 8)  # frames 0, 2, 3, 4, 7
    assert frame_accuracy(predicted, target, ignore_background=True) == pytest.approx(100 * 3 / 5)  # 2, 3, 4
    assert frame_accuracy(target, target) == 100.0
    for args, message in (
        ((predicted[:-1], target), "7 frames but `target` 8"),
        ((predicted.astype(float), target), "int labels, got float64"),
        ((predicted, target - 1), "label -2"),
        ((predicted[:0], target[:0]), r"no frame \(0 frames\)"),
    ):
        with pytest.raises(ValueError, match=message):
            frame_accuracy(*args)
    with pytest.raises(ValueError, match="no frame whose target is an action"):
        frame_accuracy(np.zeros(3, dtype=int), np.full(3, BACKGROUND), ignore_background=True)
