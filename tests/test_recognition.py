"""Windowed recognition of long recordings (`mamp_hub.recognition`, the pipelines' `window=` calls, `mamp-recognize`):
each window is the clip cut from the recording, per-frame scores average the covering windows, segments follow the
per-frame top class, timestamps, people and tracks, and every kind of bad input."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import SYNTHETIC_LABELS, moving_people, save_tiny_classifier, synthetic_recording
from transformers import pipeline

from mamp_hub import MampSkeletonProcessor
from mamp_hub.recognition.persons import checked_centre, read_recording, window_clips
from mamp_hub.recognition.windows import (
    average_over_windows,
    checked_window,
    default_stride,
    default_window,
    frame_segments,
    window_limits,
    window_starts,
)
from mamp_hub.tools import recognize as recognize_tool

ROOT = Path(__file__).resolve().parents[1]
WINDOW, STRIDE = 20, 6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def classifier(checkpoint):
    return pipeline("skeleton-action-recognition", model=str(checkpoint))


def full_scores(classifier, clip: np.ndarray) -> np.ndarray:
    """The `(num_labels,)` softmax scores of one clip, from the pipeline's clip mode."""
    scores = {p["label"]: p["score"] for p in classifier(clip, top_k=len(SYNTHETIC_LABELS))}
    return np.array([scores[SYNTHETIC_LABELS[i]] for i in range(len(SYNTHETIC_LABELS))])


# ---------------------------------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("frames", "window", "stride", "expected"),
    [
        (5, 20, 6, [0]),  # shorter than a window: one window
        (20, 20, 6, [0]),
        (32, 20, 6, [0, 6, 12]),  # the last window ends at the last frame
        (33, 20, 6, [0, 6, 12, 13]),  # one more window, ending at the last frame
        (40, 20, 20, [0, 20]),
        (41, 20, 20, [0, 20, 21]),
    ],
)
def test_windows_start_every_stride_and_the_last_ends_at_the_last_frame(frames, window, stride, expected):
    starts = window_starts(frames, window, stride)
    assert starts.tolist() == expected
    covered = np.zeros(frames, dtype=bool)
    for start in starts:
        covered[start : start + window] = True
    assert covered.all() and min(starts[-1] + window, frames) == frames


def test_default_window_is_the_clip_whose_evaluation_crop_is_the_models_frames():
    assert default_window(120, 0.95) == 126 and default_stride(126) == 31  # the published checkpoints
    assert default_window(16, 1.0) == 16 and default_stride(3) == 1
    assert window_limits(120) == (30, 480)
    assert checked_window(None, None, 120, 0.95) == (126, 31)
    assert checked_window(64, None, 120, 0.95) == (64, 16)


@pytest.mark.parametrize(
    ("window", "stride", "bad"),
    [
        (481, None, "481"),  # longer than 4 x num_frames
        (29, None, "29"),
        (0, None, "got 0"),
        (100.0, None, "100.0"),
        ("126", None, "'126'"),
        (True, None, "True"),
        (126, 0, "got 0"),
        (126, -3, "-3"),
        (126, 127, "127"),  # a stride longer than the window would leave frames uncovered
        (126, 31.5, "31.5"),
    ],
)
def test_bad_windows_and_strides_are_refused_naming_the_value(window, stride, bad):
    with pytest.raises(ValueError, match="window" if stride is None else "stride") as error:
        checked_window(window, stride, 120, 0.95)
    assert bad in str(error.value) and "\n" not in str(error.value)


def test_frame_scores_are_the_mean_of_the_covering_windows():
    means, counts = average_over_windows(
        np.array([0, 2]), np.array([4, 6]), np.array([[1.0, 0.0], [0.0, 0.5]], dtype=np.float32), 7
    )
    expected = [[1, 0], [1, 0], [0.5, 0.25], [0.5, 0.25], [0, 0.5], [0, 0.5], [0, 0]]
    np.testing.assert_allclose(means, expected, rtol=0, atol=1e-7)
    assert counts.tolist() == [1, 1, 2, 2, 1, 1, 0]

    rng = np.random.default_rng(0)
    starts = window_starts(500, 37, 9)
    ends = np.minimum(starts + 37, 500)
    scores = rng.random((len(starts), 4)).astype(np.float32)
    direct = np.stack([scores[(starts <= f) & (f < ends)].mean(axis=0) for f in range(500)])
    np.testing.assert_allclose(average_over_windows(starts, ends, scores, 500)[0], direct, rtol=0, atol=1e-6)


def test_segments_are_runs_of_the_top_class_scored_by_its_mean():
    scores = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.45, 0.55], [0.6, 0.4]], dtype=np.float32)
    active = np.ones(6, dtype=bool)
    segments = frame_segments(scores, active, None)  # no threshold: the segments tile the frames
    assert [(c, s, e) for c, s, e, _ in segments] == [(0, 0, 2), (1, 2, 5), (0, 5, 6)]
    assert segments[0][3] == pytest.approx(0.8) and segments[1][3] == pytest.approx((0.8 + 0.6 + 0.55) / 3)
    assert [(c, s, e) for c, s, e, _ in frame_segments(scores, active, 0.6)] == [(0, 0, 2), (1, 2, 4), (0, 5, 6)]
    active[1] = False  # nobody there: no segment, and the run is cut
    assert [(c, s, e) for c, s, e, _ in frame_segments(scores, active, None)][:2] == [(0, 0, 1), (1, 2, 5)]
    assert frame_segments(scores, np.zeros(6, dtype=bool), None) == []


# ---------------------------------------------------------------------------------------------------- the pipeline


def test_each_window_is_the_clip_cut_from_the_recording(classifier):
    recording = moving_people(1, 50)[0]  # (frames, 25, 3): one person throughout
    result = classifier(recording, window=WINDOW, stride=STRIDE, return_windows=True, return_frame_scores=True)
    windows = result["windows"]
    assert [(w["start"], w["end"]) for w in windows] == [(0, 20), (6, 26), (12, 32), (18, 38), (24, 44), (30, 50)]
    scores = np.stack([full_scores(classifier, recording[w["start"] : w["end"]]) for w in windows])
    for window, row in zip(windows, scores, strict=True):
        assert window["label"] == SYNTHETIC_LABELS[int(row.argmax())] and window["score"] == pytest.approx(
            row.max(), abs=1e-6
        )

    direct = np.stack([scores[[w["start"] <= f < w["end"] for w in windows]].mean(axis=0) for f in range(50)])
    assert result["frame_scores"].shape == (50, len(SYNTHETIC_LABELS)) and result["frame_scores"].dtype == np.float32
    np.testing.assert_allclose(result["frame_scores"], direct, rtol=0, atol=1e-6)

    segments = result["segments"]  # no min_score: they tile the recording, and follow the per-frame top class
    assert segments[0]["start"] == 0 and segments[-1]["end"] == 50
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(segments))
    top = direct.argmax(axis=1)
    for segment in segments:
        run = top[segment["start"] : segment["end"]]
        assert set(run.tolist()) == {list(SYNTHETIC_LABELS.values()).index(segment["label"])}
        assert segment["score"] == pytest.approx(direct[segment["start"] : segment["end"], run[0]].mean(), abs=1e-6)
    assert set(result) == {"segments", "windows", "frame_scores"}
    assert set(classifier(recording, window=WINDOW)) == {"segments"}


def test_a_recording_shorter_than_a_window_is_one_window_and_no_window_keeps_the_clip_behaviour(classifier):
    clip = moving_people(1, 12)[0]
    result = classifier(clip, window=WINDOW, return_windows=True)
    (window,) = result["windows"]
    top = classifier(clip, top_k=1)[0]  # the clip call of before, unchanged
    assert (window["start"], window["end"], window["label"]) == (0, 12, top["label"])
    assert window["score"] == pytest.approx(top["score"], abs=1e-6)
    assert [(s["start"], s["end"], s["label"]) for s in result["segments"]] == [(0, 12, top["label"])]
    assert isinstance(classifier(clip), list)


def test_default_window_and_stride_come_from_the_checkpoint(classifier):
    recording = synthetic_recording(2)
    windows = classifier(recording, return_windows=True)["windows"]  # 17 frames (16 / 0.95), stride 4
    assert [(w["start"], w["end"]) for w in windows[:2]] == [(0, 17), (4, 21)]
    assert windows[-1]["end"] == len(recording)


@pytest.mark.parametrize("fps", [30, 12.5])
def test_timestamps_at_both_ends_and_in_seconds(classifier, fps):
    recording = synthetic_recording(2)
    frames = len(recording)
    result = classifier(recording, window=WINDOW, stride=STRIDE, fps=fps, return_windows=True)
    first, last = result["segments"][0], result["segments"][-1]
    assert (first["start"], first["start_s"]) == (0, 0.0)
    assert last["end"] == frames and last["end_s"] == pytest.approx(frames / fps)
    for record in result["segments"] + result["windows"]:
        assert record["start_s"] == pytest.approx(record["start"] / fps)
        assert record["end_s"] == pytest.approx(record["end"] / fps)
    assert result["windows"][-1]["end_s"] == pytest.approx(frames / fps)
    assert "start_s" not in classifier(recording, window=WINDOW)["segments"][0]


def test_min_score_leaves_low_frames_out_of_the_segments(classifier):
    recording = synthetic_recording(2)
    result = classifier(recording, window=WINDOW, stride=STRIDE, return_frame_scores=True)
    best = result["frame_scores"].max(axis=1)
    threshold = float(np.median(best))
    kept = classifier(recording, window=WINDOW, stride=STRIDE, min_score=threshold)["segments"]
    in_segments = np.zeros(len(recording), dtype=bool)
    for segment in kept:
        in_segments[segment["start"] : segment["end"]] = True
    np.testing.assert_array_equal(in_segments, best >= threshold)
    assert classifier(recording, window=WINDOW, stride=STRIDE, min_score=1.1)["segments"] == []


def test_frames_where_nobody_is_present_are_no_action(classifier):
    recording = moving_people(1, 80)[0]
    recording[:10] = 0  # nobody yet
    recording[35:60] = 0  # a gap longer than a window
    recording[75:] = 0
    result = classifier(recording, window=WINDOW, stride=STRIDE, return_windows=True, return_frame_scores=True)
    present = np.zeros(80, dtype=bool)
    present[10:35] = present[60:75] = True
    in_segments = np.zeros(80, dtype=bool)
    for segment in result["segments"]:
        in_segments[segment["start"] : segment["end"]] = True
    np.testing.assert_array_equal(in_segments, present)
    assert not result["frame_scores"][~present].any() and result["frame_scores"][present].all()
    empty = [w for w in result["windows"] if not present[w["start"] : w["end"]].any()]
    assert empty and all(w["label"] is None and w["score"] is None for w in empty)
    # A window is classified on its frames with someone in them: the empty ones are left out of its clip.
    window = next(w for w in result["windows"] if w["start"] == 24)  # frames 24-44: someone in 24-35 only
    expected = full_scores(classifier, recording[24:35])
    assert window["score"] == pytest.approx(expected.max(), abs=1e-6)

    nobody = classifier(np.zeros((50, 25, 3), np.float32), window=WINDOW, return_windows=True, return_frame_scores=True)
    assert nobody["segments"] == [] and not nobody["frame_scores"].any()
    assert all(w["label"] is None for w in nobody["windows"])


def test_nan_and_infinite_frames_are_missing_people(classifier):
    recording = moving_people(2, 60)
    broken = recording.copy()
    broken[0, 5, 3, 1] = np.nan  # one joint of one person's frame: that person's frame is missing
    broken[1, 20:30] = np.nan
    broken[0, 40, 0, 0] = np.inf
    zeroed = recording.copy()
    zeroed[0, 5] = zeroed[1, 20:30] = zeroed[0, 40] = 0
    options = {"window": WINDOW, "stride": STRIDE, "return_windows": True, "return_frame_scores": True}
    result, expected = classifier(broken, **options), classifier(zeroed, **options)
    assert result["segments"] == expected["segments"] and result["windows"] == expected["windows"]
    assert np.isnan(broken[0, 5, 3, 1])  # the caller's array is not changed
    everything_missing = np.full((30, 25, 3), np.nan, dtype=np.float32)
    assert classifier(everything_missing, window=WINDOW)["segments"] == []


def test_the_two_most_active_people_of_each_window_are_recognised(classifier):
    people = moving_people(3, 60, speeds=(1.0, 0.02, 0.5))  # person 1 barely moves
    crowd = classifier(people, window=WINDOW, stride=STRIDE, return_windows=True, return_frame_scores=True)
    pair = classifier(people[[0, 2]], window=WINDOW, stride=STRIDE, return_windows=True, return_frame_scores=True)
    assert crowd["windows"] == pair["windows"] and crowd["segments"] == pair["segments"]
    # (3, frames, 25, 3) fits both (persons, frames, joints, xyz) and the feeders' (xyz, frames, joints, persons):
    # many people come persons first; the other reading is asked for with layout="CTVM".
    as_ctvm = classifier(people.transpose(3, 1, 2, 0), window=WINDOW, stride=STRIDE, layout="CTVM", return_windows=True)
    assert as_ctvm["windows"] == crowd["windows"]
    many = classifier(moving_people(5, 40), window=WINDOW, return_windows=True)
    assert all(w["label"] is not None for w in many["windows"])


def test_each_person_on_their_own_with_their_track(classifier):
    people = moving_people(3, 60)
    people[1, :25] = 0  # person 1 comes in later
    result = classifier(people, window=WINDOW, stride=STRIDE, persons="each", return_windows=True, fps=30)
    for track in range(3):
        alone = classifier(people[track], window=WINDOW, stride=STRIDE, return_windows=True, fps=30)
        assert [s for s in result["segments"] if s["track"] == track] == [
            {**s, "track": track} for s in alone["segments"]
        ]
        windows = [{k: v for k, v in w.items() if k != "track"} for w in result["windows"] if w["track"] == track]
        assert windows == [w for w in alone["windows"] if w["label"] is not None]
    assert [s["start"] for s in result["segments"]] == sorted(s["start"] for s in result["segments"])
    scores = classifier(people, window=WINDOW, persons="each", return_frame_scores=True)["frame_scores"]
    assert sorted(scores) == [0, 1, 2] and not scores[1][:25].any() and scores[1][25:].all()


def test_track_ids_follow_people_across_rows(classifier):
    people = moving_people(2, 60)
    swapped = people.copy()
    swapped[:, 30:] = people[::-1, 30:]  # the tracker put the two people in the other rows from frame 30
    ids = np.array([[7] * 30 + [3] * 30, [3] * 30 + [7] * 30])
    options = {"window": WINDOW, "stride": STRIDE, "persons": "each", "return_windows": True}
    tracked = classifier(swapped, tracks=ids, **options)
    by_row = classifier(people, tracks=[7, 3], **options)  # one id per row
    assert tracked == by_row and {s["track"] for s in tracked["segments"]} == {3, 7}
    assert classifier(swapped, tracks=ids, window=WINDOW) == classifier(people, window=WINDOW)
    gaps = np.where(np.arange(60) % 20 < 10, ids, -1)  # a negative id: nobody in that row
    left_out = people.copy()
    left_out[:, np.arange(60) % 20 >= 10] = 0
    assert (
        classifier(swapped, tracks=gaps, window=WINDOW)["segments"] == classifier(left_out, window=WINDOW)["segments"]
    )


def test_centre_moves_each_window_as_the_ntu_files_are_centred(classifier):
    recording = moving_people(1, 50)[0]
    camera = recording + np.array([0.4, -0.2, 3.0], dtype=np.float32)  # somewhere in front of a camera
    options = {"window": WINDOW, "stride": STRIDE, "return_windows": True}
    centred = classifier(camera, centre=True, **options)
    moved_back = classifier(recording, centre=True, **options)["windows"]  # the same up to float32 rounding
    assert [w["label"] for w in centred["windows"]] == [w["label"] for w in moved_back]
    np.testing.assert_allclose([w["score"] for w in centred["windows"]], [w["score"] for w in moved_back], atol=1e-5)
    for window in centred["windows"][:3]:
        clip = camera[window["start"] : window["end"]]
        expected = full_scores(classifier, clip - clip[0, 1])  # the spine-middle joint of the first frame at 0
        assert window["score"] == pytest.approx(expected.max(), abs=1e-6)
    assert classifier(camera, **options)["windows"] != centred["windows"]  # by default, the joints as given

    pair = moving_people(2, 40)
    pair[1, :10] = 0  # the second person's absent frames stay absent (zeros) when the clip is moved
    clip = window_clips(read_recording(pair, classifier.feature_extractor).window(0, 20), "most_active", 2, True)[0][1]
    assert not clip[1, :10].any() and clip[1, 10:].all() and not clip[0, 0, 1].any()
    with pytest.raises(ValueError, match="`centre` must be True or False, got 'yes'"):
        classifier(recording, window=WINDOW, centre="yes")
    with pytest.raises(ValueError, match="reads 17 joints"):
        checked_centre(True, MampSkeletonProcessor(num_joints=17))
    assert not checked_centre(True, MampSkeletonProcessor(joint_layout="h36m"))  # the processor centres those


@pytest.mark.parametrize(
    ("tracks", "message"),
    [
        (np.zeros(3, dtype=np.int64), r"shape \(3,\)"),
        (np.zeros((2, 59), dtype=np.int64), r"shape \(2, 59\)"),
        (np.array([0.0, 1.0]), "float64"),
        (np.array([[5] * 60, [5] * 60]), "Track id 5 is in two person rows of frame 0"),
    ],
)
def test_bad_track_ids_are_refused(classifier, tracks, message):
    with pytest.raises(ValueError, match=message):
        classifier(moving_people(2, 60), window=WINDOW, tracks=tracks)


@pytest.mark.parametrize(
    ("inputs", "options", "message"),
    [
        (np.zeros((0, 25, 3), np.float32), {}, "no frames"),
        (np.zeros((40, 24, 3), np.float32), {}, r"shape \(40, 24, 3\), which fits no layout of 25 joints"),
        ([np.zeros((40, 25, 3), np.float32)] * 2, {}, "one recording"),
        (
            np.zeros((40, 25, 3), np.float32),
            {"top_k": 3},
            "top_k: not an option of the skeleton-action-recognition pipeline on a recording in windows",
        ),
        (np.zeros((40, 25, 3), np.float32), {"persons": "all"}, "'all'"),
        (np.zeros((40, 25, 3), np.float32), {"fps": 0}, "`fps` must be a positive number.*got 0"),
        (np.zeros((40, 25, 3), np.float32), {"min_score": "high"}, "'high'"),
        (np.zeros((40, 25, 3), np.float32), {"function_to_apply": "tanh"}, "'tanh'"),
        (np.zeros((40, 25, 3), np.float32), {"batch_size": 0}, "`batch_size` must be a positive integer, got 0"),
        (np.zeros((40, 25, 3), np.float32), {"window": 65}, "from 4 to 64, got 65"),
        ("missing.npy", {}, "There is no file"),
    ],
)
def test_bad_recordings_and_options_get_one_clear_line(classifier, inputs, options, message):
    with pytest.raises(ValueError, match=message) as error:
        classifier(inputs, **{"window": WINDOW, **options})
    assert "\n" not in str(error.value)


def test_a_recording_file_is_read_like_a_clip_file(classifier, tmp_path):
    recording = synthetic_recording(2)
    np.savez(tmp_path / "recording.npz", x=recording)
    np.save(tmp_path / "recording.npy", recording)
    expected = classifier(recording, window=WINDOW, stride=WINDOW)
    assert classifier(tmp_path / "recording.npz", window=WINDOW, stride=WINDOW) == expected
    assert classifier(str(tmp_path / "recording.npy"), window=WINDOW, stride=WINDOW) == expected
    assert classifier(torch.from_numpy(recording), window=WINDOW, stride=WINDOW) == expected


def test_feature_extraction_gives_one_embedding_per_window(checkpoint):
    embedder = pipeline("skeleton-feature-extraction", model=str(checkpoint))
    recording = moving_people(1, 40)[0]
    recording[30:] = 0
    windows = embedder(recording, window=WINDOW, stride=10, fps=10)
    assert [(w["start"], w["end"], w["start_s"], w["end_s"]) for w in windows] == [
        (0, 20, 0, 2),
        (10, 30, 1, 3),
        (20, 40, 2, 4),
    ]
    for window in windows:
        np.testing.assert_allclose(
            window["features"], embedder(recording[window["start"] : min(window["end"], 30)]), atol=1e-5
        )
    tokens = embedder(recording, window=WINDOW, stride=10, pool=False, return_tensors=True)
    assert tokens[0]["features"].shape == (2, 4, 25, 32)  # (persons, segments, joints, hidden) of a MampModel
    assert embedder(np.zeros((30, 25, 3), np.float32), window=WINDOW)[0]["features"] is None
    each = embedder(moving_people(2, 30), window=WINDOW, persons="each")
    assert [(w["start"], w["track"]) for w in each] == [(0, 0), (0, 1), (5, 0), (5, 1), (10, 0), (10, 1)]
    with pytest.raises(ValueError, match="min_score: not an option of the skeleton-feature-extraction pipeline"):
        embedder(recording, window=WINDOW, min_score=0.5)


# ---------------------------------------------------------------------------------------------------- mamp-recognize


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        recognize_tool.main(argv)
        status = 0
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_mamp_recognize_writes_segments_and_a_timeline(checkpoint, classifier, tmp_path, capsys):
    recording = synthetic_recording(3)
    np.save(tmp_path / "recording.npy", recording)
    out, plot = tmp_path / "segments.json", tmp_path / "timeline.png"
    argv = [str(tmp_path / "recording.npy"), "--model", str(checkpoint), "--window", "20", "--stride", "6"]
    status, printed, _ = run_cli([*argv, "--fps", "30", "--out", str(out), "--plot", str(plot)], capsys)
    assert status == 0 and f"wrote {out}" in printed
    written = json.loads(out.read_text())
    expected = classifier(recording, window=20, stride=6, fps=30, return_windows=True, batch_size=8)
    assert written["segments"] == expected["segments"] and written["windows"] == expected["windows"]
    assert written["settings"] == {
        "recording": str(tmp_path / "recording.npy"),
        "model": str(checkpoint),
        "window": 20,
        "stride": 6,
        "fps": 30.0,
        "min_score": None,
        "persons": "most_active",
        "centre": False,
    }
    image = matplotlib.image.imread(plot)
    assert image.shape[0] > 100 and image.shape[2] in (3, 4) and image[..., :3].std() > 0.05

    people = moving_people(2, 50)
    np.savez(tmp_path / "people.npz", x=people, tracks=np.array([4, 9]))
    table = tmp_path / "segments.csv"
    argv = [str(tmp_path / "people.npz"), "--model", str(checkpoint), "--window", "20", "--persons", "each"]
    status, _, _ = run_cli([*argv, "--tracks-key", "tracks", "--out", str(table)], capsys)
    rows = list(csv.DictReader(table.open()))
    assert status == 0 and rows[0].keys() == {"label", "score", "start", "end", "track"}
    assert {row["track"] for row in rows} == {"4", "9"}
    status, printed, _ = run_cli(
        [str(tmp_path / "recording.npy"), "--model", str(checkpoint), "--window", "20"], capsys
    )
    assert status == 0 and "frames 0-" in printed


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--out", "segments.txt"], "must end in .json or .csv"),
        (["--plot", "timeline.jpg"], "must end in .png"),
        (["--window", "999"], "got 999"),
        (["--stride", "0"], "stride must be"),
        (["--fps", "-30"], "got -30"),
        (["--out", "missing/segments.json"], "does not exist"),
        (["--tracks-key", "tracks"], "not one"),
        (["--batch-size", "0"], "got 0"),
    ],
)
def test_mamp_recognize_refuses_bad_input_in_one_line_and_writes_nothing(
    checkpoint, tmp_path, capsys, options, message
):
    np.save(tmp_path / "recording.npy", synthetic_recording(1))
    (tmp_path / "old.json").write_text("old")
    argv = [str(tmp_path / "recording.npy"), "--model", str(checkpoint), "--out", str(tmp_path / "old.json")]
    options = [str(tmp_path / o) if o.endswith((".txt", ".jpg", ".json")) else o for o in options]
    status, _, error = run_cli([*argv, *options], capsys)
    # The error is one line, the last (loading the model may have drawn a progress bar before it).
    lines = error.splitlines()
    assert status == 2 and lines[-1].startswith("mamp-recognize: error: ") and error.count("error:") == 1
    assert re.search(message, lines[-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json", "recording.npy"]
    assert (tmp_path / "old.json").read_text() == "old"


@pytest.mark.slow
def test_mamp_recognize_is_installed(checkpoint, tmp_path):
    np.save(tmp_path / "recording.npy", synthetic_recording(2))
    command = ["mamp-recognize", str(tmp_path / "recording.npy"), "--model", str(checkpoint), "--fps", "30"]
    completed = subprocess.run(
        [str(Path(sys.executable).parent / command[0]), *command[1:]], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "segments in" in completed.stdout


def test_the_long_recording_example_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("examples_long_recording", ROOT / "examples" / "long_recording.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    outputs = example.main(["--output-dir", str(tmp_path), "--actions", "2", "--chunk", "7"])
    assert outputs["streamed"] == outputs["result"]["windows"]
    played = np.zeros(len(outputs["recording"]), dtype=bool)
    for _, start, end in outputs["played"]:
        played[start:end] = True
    recognised = np.zeros_like(played)
    for segment in outputs["result"]["segments"]:
        recognised[segment["start"] : segment["end"]] = True
    np.testing.assert_array_equal(recognised, played)  # the gaps, where nobody is in view, are no action
    assert matplotlib.image.imread(tmp_path / "timeline.png").ndim == 3
    assert "the same as offline: True" in capsys.readouterr().out


def test_the_docs_page_example_runs(checkpoint, tmp_path, monkeypatch, capsys):
    page = (ROOT / "docs" / "long_recordings.md").read_text()
    block = re.search(r"<!-- long-recordings:start[^>]*-->\n```python\n(.*?)```", page, re.DOTALL).group(1)
    np.save(tmp_path / "recording.npy", moving_people(1, 60)[0])
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block.replace("converted/ntu60-xsub-finetune", str(checkpoint)), namespace)
    assert namespace["result"]["segments"] and " s  synthetic: " in capsys.readouterr().out
    streamed = [w for chunk in np.array_split(namespace["recording"], 40) for w in namespace["recognizer"].push(chunk)]
    assert streamed + namespace["recognizer"].flush() == namespace["result"]["windows"]
