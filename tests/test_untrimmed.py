"""SYNTHETIC untrimmed recordings: layout, exact segments, idle stretches, smooth blends, the PKU-MMD raw files."""

from __future__ import annotations

import numpy as np
import pytest

from mamp_hub.data.prepare_pku import iter_pku_recordings
from mamp_hub.data.synthetic import TWO_PERSON_CLASSES, SyntheticActionConfig
from mamp_hub.data.untrimmed import (
    UntrimmedConfig,
    generate_untrimmed_recording,
    generate_untrimmed_recordings,
    main,
    write_untrimmed_pku,
)
from mamp_hub.metrics import BACKGROUND, segments_to_frame_labels

SPINE_BASE, SPINE_MID, SPINE_SHOULDER, RIGHT_HAND = 0, 1, 20, 11
NOISE_FREE = UntrimmedConfig(actions=SyntheticActionConfig(noise_std=0.0))


def bodies(recording) -> np.ndarray:
    return recording.skeleton.reshape(-1, 2, 25, 3)


def test_layout_segments_and_determinism():
    config = UntrimmedConfig()
    recordings = generate_untrimmed_recordings(6, seed=2)
    for index, recording in enumerate(recordings):
        frames = len(recording.skeleton)
        assert recording.name == f"synthetic_{index:04d}"
        assert recording.skeleton.shape == (frames, 150) and recording.skeleton.dtype == np.float32
        assert recording.subject % 2 == 0 and recording.view in (1, 2, 3)  # test subjects by default
        assert config.num_actions[0] <= len(recording.segments) <= config.num_actions[1]
        bounds = [0] + [edge for s in recording.segments for edge in (s["start"], s["end"])] + [frames]
        idle, lengths = np.diff(bounds)[::2], np.diff(bounds)[1::2]
        assert ((idle >= config.idle_frames[0]) & (idle <= config.idle_frames[1])).all()
        assert ((lengths >= config.actions.min_frames) & (lengths <= config.actions.max_frames)).all()
        assert all(isinstance(s["label"], int) and 0 <= s["label"] < 10 for s in recording.segments)
        np.testing.assert_array_equal(bodies(recording)[0, 0, SPINE_MID], 0)  # centred as the NTU files
    again = generate_untrimmed_recording(4, seed=2)
    np.testing.assert_array_equal(again.skeleton, recordings[4].skeleton)  # independent of how many are generated
    assert again.segments == recordings[4].segments
    other = generate_untrimmed_recording(4, seed=3)
    assert other.segments != again.segments
    labels = {s["label"] for r in generate_untrimmed_recordings(10) for s in r.segments}
    assert labels == set(range(10))


def test_idle_stretches_stand_still_with_sensor_noise():
    clean = generate_untrimmed_recording(1, config=NOISE_FREE)
    noisy = generate_untrimmed_recording(1)
    assert clean.segments == noisy.segments
    blend = NOISE_FREE.transition_frames
    first = clean.segments[0]["start"]
    still = slice(0, first - blend)  # the idle frames before the blend into the first action
    np.testing.assert_array_equal(bodies(clean)[still, 0], np.broadcast_to(bodies(clean)[0, 0], (first - blend, 25, 3)))
    spread = bodies(noisy)[still, 0].std(axis=0)
    assert 0.007 < np.median(spread) < 0.013  # the clips' sensor noise, 0.01 m
    rest = bodies(clean)[0, 0]
    assert rest[RIGHT_HAND, 1] < rest[SPINE_MID, 1]  # arms down


def test_blends_are_smooth_and_only_outside_the_segments():
    def largest_idle_step(config):
        largest = 0.0
        for index in range(4):
            recording = generate_untrimmed_recording(index, config=config)
            labels = segments_to_frame_labels(recording.segments, len(recording.skeleton))
            step = np.abs(np.diff(bodies(recording)[:, 0], axis=0)).max(axis=(1, 2))
            idle = (labels[:-1] == BACKGROUND) | (labels[1:] == BACKGROUND)  # idle frames and the steps into them
            largest = max(largest, step[idle].max())
        return largest

    assert largest_idle_step(NOISE_FREE) < 0.2  # metres per frame, as fast as the clips' own movements
    abrupt = UntrimmedConfig(actions=NOISE_FREE.actions, transition_frames=0)
    assert largest_idle_step(abrupt) > 0.5  # without blends, e.g. the arm jumps up for a wave


def test_actions_are_the_clip_classes():
    recordings = generate_untrimmed_recordings(12, config=NOISE_FREE)
    checked = set()
    for recording in recordings:
        x = bodies(recording)
        for segment in recording.segments:
            action = x[segment["start"] : segment["end"]]
            if segment["label"] == 1:  # hold right hand up: the hand held still above the shoulders throughout
                assert (action[:, 0, RIGHT_HAND, 1] > action[:, 0, SPINE_SHOULDER, 1] + 0.05).all()
                assert np.ptp(action[:, 0, RIGHT_HAND], axis=0).max() < 1e-5
            elif segment["label"] in (4, 5):  # squat: the spine base drops
                assert action[:, 0, SPINE_BASE, 1].min() < action[0, 0, SPINE_BASE, 1] - 0.2
            checked.add(segment["label"])
    assert {1, 4, 5} <= checked


def test_second_person_only_around_interactions():
    for recording in generate_untrimmed_recordings(8):
        present = np.abs(bodies(recording)[:, 1]).sum(axis=(1, 2)) > 0
        expected = np.zeros(len(present), dtype=bool)
        for s in recording.segments:
            if s["label"] in TWO_PERSON_CLASSES:
                expected[s["start"] - 15 : s["end"] + 15] = True
        np.testing.assert_array_equal(present, expected)


def test_subject_sets():
    train = UntrimmedConfig(subjects="train")
    assert all(r.subject % 2 == 1 for r in generate_untrimmed_recordings(6, config=train))
    classes = UntrimmedConfig(classes=(2, 7))
    assert {s["label"] for r in generate_untrimmed_recordings(4, config=classes) for s in r.segments} == {2, 7}


def test_pku_mmd_files_round_trip(tmp_path):
    names = write_untrimmed_pku(tmp_path, num_recordings=2, seed=1)
    assert names == ["synthetic_0000", "synthetic_0001"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        ["README.txt"] + [f"{name}.txt" for name in names] * 2
    )
    first = (tmp_path / "label" / "synthetic_0000.txt").read_text().splitlines()[0]
    expected = generate_untrimmed_recordings(2, seed=1)
    s = expected[0].segments[0]
    assert first == f"{s['label'] + 1},{s['start']},{s['end']},2"  # 1-based labels as PKU-MMD's
    for (name, skeleton, segments), recording in zip(iter_pku_recordings(tmp_path), expected, strict=True):
        assert name == recording.name and segments == recording.segments
        np.testing.assert_allclose(skeleton, recording.skeleton, atol=6e-7)
    assert "SYNTHETIC" in (tmp_path / "README.txt").read_text()


def test_command_line(tmp_path, capsys):
    main(["--output-dir", str(tmp_path / "out"), "--num-recordings", "1", "--max-actions", "4"])
    assert "Wrote 1 SYNTHETIC" in capsys.readouterr().out
    assert (tmp_path / "out" / "label" / "synthetic_0000.txt").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--output-dir", str(tmp_path / "bad"), "--transition-frames", "30"])
    assert exit_info.value.code == 2
    assert "`idle_frames` (40, 100) must start at 2 * transition_frames = 60" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_actions": (0, 3)}, r"`num_actions` .* 1 <= low <= high, got \(0, 3\)"),
        ({"num_actions": (5, 3)}, r"got \(5, 3\)"),
        ({"num_actions": (2.5, 3)}, r"got \(2.5, 3\)"),
        ({"idle_frames": (10, 50)}, r"`idle_frames` \(10, 50\) must start at 2 \* transition_frames = 30"),
        ({"transition_frames": -1}, "`transition_frames` must be an integer >= 0, got -1"),
        ({"classes": (3, 10)}, r"`classes` .* 0..9 .*got \(3, 10\)"),
        ({"classes": ()}, r"got \(\)"),
        ({"classes": (1, 1)}, r"got \(1, 1\)"),
        ({"subjects": "odd"}, "`subjects` must be one of .*'odd'"),
        ({"actions": {"noise_std": 0}}, "`actions` must be a SyntheticActionConfig"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        UntrimmedConfig(**options)


def test_bad_counts_are_named():
    with pytest.raises(ValueError, match="`num_recordings` must be an integer >= 1, got 0"):
        generate_untrimmed_recordings(0)
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0, got -1"):
        generate_untrimmed_recording(0, seed=-1)
    with pytest.raises(ValueError, match=r"`index` must be an integer >= 0, got 1\.5"):
        generate_untrimmed_recording(1.5)
