"""Evaluation on untrimmed recordings with fake recognizers: the ground truth, the baseline, a hand-computed case."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import save_tiny_classifier

from mamp_hub.data.untrimmed import generate_untrimmed_recordings
from mamp_hub.evaluation import evaluate_untrimmed, format_untrimmed_table

ID2LABEL = {0: "wave", 1: "clap", 2: "squat"}


def synthetic_recordings(count: int = 3):
    return [(r.name, r.skeleton, r.segments) for r in generate_untrimmed_recordings(count, seed=5)]


def oracle(recordings):
    """A recognizer that returns the ground truth of the recording it is given (found by its frame count)."""
    truth = {len(recording): segments for _, recording, segments in recordings}
    return lambda recording: {"segments": [{**s, "score": 1.0} for s in truth[len(recording)]], "frame_scores": None}


def test_the_ground_truth_scores_100_and_the_baseline_less():
    recordings = synthetic_recordings()
    results = evaluate_untrimmed(oracle(recordings), iter(recordings))
    assert results["model"]["frame_accuracy"] == results["model"]["action_frame_accuracy"] == 100.0
    assert results["model"]["map"] == dict.fromkeys((0.1, 0.2, 0.3, 0.4, 0.5), 100.0)
    baseline = results["baseline"]
    assert baseline["map"][0.5] < 20 and baseline["action_frame_accuracy"] < 50
    assert results["num_recordings"] == 3 and results["num_frames"] == sum(len(r[1]) for r in recordings)
    assert results["num_actions"] == sum(len(r[2]) for r in recordings)
    assert [d["name"] for d in results["recordings"]] == [r[0] for r in recordings]
    assert all(d["frame_accuracy"] == 100.0 for d in results["recordings"])


def test_a_recognizer_predicting_the_most_frequent_class_is_the_baseline():
    recordings = synthetic_recordings()
    label = evaluate_untrimmed(oracle(recordings), recordings)["baseline"]["label"]
    results = evaluate_untrimmed(
        lambda recording: {"segments": [{"label": label, "score": 0.5, "start": 0, "end": len(recording)}]},
        recordings,
    )
    assert results["baseline"]["label"] == label
    for key in ("frame_accuracy", "action_frame_accuracy", "map"):
        assert results["model"][key] == results["baseline"][key]


def test_figures_by_hand():
    """Recording "a" (10 frames): wave [0, 4), clap [6, 10); "b" (6 frames): wave [1, 5).
    The recognizer finds wave [0, 5) in "a" (IoU 4/5), clap [5, 10) (IoU 4/5) and nothing in "b".
    Frames right: a: 0-3, 6-9 (wave, clap), frame 4 (idle, predicted wave) and 5 (idle, predicted clap) wrong;
    b: 0 and 5 idle, right; 1-4 wrong -> frame accuracy 10/16, action-frame accuracy 8/12.
    mAP: wave AP 1/2 (one of two found), clap AP 1 -> 75 up to IoU 0.8, 0 above.
    Baseline: wave (8 frames against 4 for clap) everywhere: frames right 4 + 4 of 16, action frames 8 of 12;
    its segments (both scored 1.0, "a" first) have IoU 4/10 with wave [0, 4) in "a" and 4/6 with [1, 5) in "b":
    AP(wave) 1 at IoU 0.4; at 0.5 "a" misses and "b" hits: precision 1/2 at recall 1/2, AP 1/4; clap AP 0."""
    recordings = [
        ("a", np.zeros((10, 150)), [{"label": 0, "start": 0, "end": 4}, {"label": 1, "start": 6, "end": 10}]),
        ("b", np.zeros((6, 150)), [{"label": 0, "start": 1, "end": 5}]),
    ]
    found = {
        10: [
            {"label": "wave", "score": 0.9, "start": 0, "end": 5},
            {"label": "clap", "score": 0.8, "start": 5, "end": 10},
        ]
    }
    results = evaluate_untrimmed(
        lambda recording: {"segments": found.get(len(recording), [])},
        recordings,
        iou_thresholds=(0.4, 0.5, 0.8, 0.9),
        id2label=ID2LABEL,
    )
    model, baseline = results["model"], results["baseline"]
    assert model["frame_accuracy"] == pytest.approx(100 * 10 / 16)
    assert model["action_frame_accuracy"] == pytest.approx(100 * 8 / 12)
    assert model["map"] == pytest.approx({0.4: 75.0, 0.5: 75.0, 0.8: 75.0, 0.9: 0.0})
    assert baseline["label"] == 0
    assert baseline["frame_accuracy"] == pytest.approx(100 * 8 / 16)
    assert baseline["action_frame_accuracy"] == pytest.approx(100 * 8 / 12)
    assert baseline["map"] == pytest.approx({0.4: 50.0, 0.5: 12.5, 0.8: 0.0, 0.9: 0.0})
    details = results["recordings"]
    assert details[1] == {
        "name": "b",
        "frames": 6,
        "actions": 1,
        "segments": [],
        "frame_accuracy": pytest.approx(100 * 2 / 6),
        "action_frame_accuracy": 0.0,
    }
    assert details[0]["segments"] == found[10]  # as the recognizer gave them

    table = format_untrimmed_table(results, id2label=ID2LABEL, per_recording=True)
    assert "| recognizer | 62.5 | 66.7 | 75.0 | 75.0 | 75.0 | 0.0 |" in table
    assert "| baseline: class 0 (wave) everywhere | 50.0 | 66.7 | 50.0 | 12.5 | 0.0 | 0.0 |" in table
    assert "mAP@0.4 (%)" in table and "2 recordings, 16 frames, 3 actions" in table
    assert "| b | 6 | 1 | 0 | 33.3 | 0.0 |" in table


@pytest.mark.parametrize(
    ("recognize", "recordings", "message"),
    [
        (lambda x: [], None, "must return a dict with 'segments'.*recording 'a'"),
        (
            lambda x: {"segments": [{"label": 0, "score": 1.0, "start": 0, "end": 11}]},
            None,
            r"recognize\(\) on recording 'a' \(10 frames\).*\[0, 11\)",
        ),
        (lambda x: {"segments": [{"label": "wave", "score": 1.0, "start": 0, "end": 5}]}, None, "pass id2label"),
        (lambda x: {"segments": [{"label": 0, "score": float("nan"), "start": 0, "end": 5}]}, None, "score nan"),
        (
            lambda x: {"segments": []},
            [("a", np.zeros((10, 150)), [{"label": 0, "start": 5, "end": 12}])],
            r"ground truth of recording 'a'.*\[5, 12\)",
        ),
        (lambda x: {"segments": []}, [("a", np.zeros((10, 150)), [])] * 2, "Two recordings are named 'a'"),
        (lambda x: {"segments": []}, [("a", np.zeros((0, 150)), [])], "Recording 'a' has no frame"),
        (lambda x: {"segments": []}, [("a", np.zeros((10, 150)), [])], "holds no action"),
        (lambda x: {"segments": []}, [], "No recording to evaluate"),
    ],
)
def test_bad_inputs_are_named(recognize, recordings, message):
    default = [("a", np.zeros((10, 150)), [{"label": 0, "start": 0, "end": 4}])]
    with pytest.raises(ValueError, match=message):
        evaluate_untrimmed(recognize, default if recordings is None else recordings)


def test_unknown_label_names_are_named():
    recordings = [("a", np.zeros((10, 150)), [{"label": 0, "start": 0, "end": 4}])]
    with pytest.raises(ValueError, match=r"'jump', which is not in id2label \(\['clap', 'squat', 'wave'\]\)"):
        evaluate_untrimmed(
            lambda x: {"segments": [{"label": "jump", "score": 1.0, "start": 0, "end": 4}]},
            recordings,
            id2label=ID2LABEL,
        )


def test_the_command_scores_a_checkpoint_on_a_folder_of_recordings(tmp_path, capsys):
    """`mamp-evaluate-untrimmed` on SYNTHETIC recordings in the PKU-MMD raw layout, with a tiny random classifier
    (the figures are meaningless; the path and the output's shape are checked)."""
    from mamp_hub.data.untrimmed import UntrimmedConfig, write_untrimmed_pku
    from mamp_hub.tools.evaluate_untrimmed import main

    short = UntrimmedConfig(num_actions=(2, 2), idle_frames=(30, 40))
    write_untrimmed_pku(tmp_path / "data", num_recordings=2, config=short)
    model = save_tiny_classifier(tmp_path / "model")
    out = tmp_path / "results.json"
    main([str(tmp_path / "data"), "--model", str(model), "--stride", "8", "--out", str(out), "--per-recording"])
    printed = capsys.readouterr().out
    assert "| recognizer |" in printed and "| baseline: class" in printed and "mAP@0.5 (%)" in printed
    results = json.loads(out.read_text())
    assert results["num_recordings"] == 2 and results["settings"]["stride"] == 8
    assert set(results["model"]) == {"frame_accuracy", "action_frame_accuracy", "map"}
    assert [detail["name"] for detail in results["recordings"]] == sorted(
        detail["name"] for detail in results["recordings"]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{tmp}/missing", "--model", "{tmp}"], "has no skeleton/ and label/ folders"),
        (["{tmp}", "--model", "{tmp}", "--out", "{tmp}/results.txt"], r"--out '.*results.txt' must end in .json"),
        (["{tmp}", "--model", "{tmp}", "--batch-size", "0"], "`--batch-size` must be a positive integer, got 0"),
    ],
)
def test_the_command_refuses_bad_arguments_in_one_line(tmp_path, capsys, argv, message):
    from mamp_hub.tools.evaluate_untrimmed import main

    (tmp_path / "skeleton").mkdir()
    (tmp_path / "label").mkdir()
    (tmp_path / "skeleton" / "a.txt").write_text("0 " * 150)
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(tmp=tmp_path) for arg in argv])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("mamp-evaluate-untrimmed: error:")
    assert re.search(message, error), error
    assert not (tmp_path / "results.txt").exists()
