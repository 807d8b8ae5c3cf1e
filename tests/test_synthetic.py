"""The SYNTHETIC action generator: NTU layout, determinism, subjects and views, and classes that differ in motion."""

from __future__ import annotations

import numpy as np
import pytest

from mamp_hub.data import NpzSkeletonDataset
from mamp_hub.data.synthetic import (
    SYNTHETIC_ACTION_NAMES,
    SyntheticActionConfig,
    generate_synthetic_actions,
    main,
    write_synthetic_npz,
)

SPINE_BASE, SPINE_MID, LEFT_SHOULDER, RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_HAND, LEFT_HAND = 0, 1, 4, 8, 9, 11, 7


@pytest.fixture(scope="module")
def data():
    return generate_synthetic_actions(1000, seed=0)


def joints(data, label: int | None = None, view: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Valid frames (T, 2, 25, 3) of the samples of a class (and view), and the indices of those samples."""
    selected = np.ones(len(data.labels), dtype=bool)
    if label is not None:
        selected &= data.labels == label
    if view is not None:
        selected &= data.views == view
    rows = np.flatnonzero(selected)
    return [data.sequences[i, : data.lengths[i]].reshape(-1, 2, 25, 3) for i in rows], rows


def test_layout_lengths_persons_and_centring(data):
    assert data.sequences.shape == (1000, 300, 150) and data.sequences.dtype == np.float32
    assert np.bincount(data.labels).tolist() == [100] * len(SYNTHETIC_ACTION_NAMES)
    assert data.lengths.min() >= 60 and data.lengths.max() <= 200
    x = data.sequences.reshape(1000, 300, 2, 25, 3)
    frames = np.arange(300)[None]
    nonzero = np.abs(x[:, :, 0]).sum(axis=(2, 3)) > 0
    np.testing.assert_array_equal(nonzero, frames < data.lengths[:, None])  # zero padding after each length
    np.testing.assert_array_equal(x[:, 0, 0, SPINE_MID], 0)  # centred on person 1's first spine-middle joint
    second = np.abs(x[:, :, 1]).sum(axis=(1, 2, 3)) > 0
    np.testing.assert_array_equal(second, np.isin(data.labels, (8, 9)))  # two persons only in interactions


def test_deterministic_by_seed():
    config = SyntheticActionConfig(num_subjects=6, min_frames=30, max_frames=50, padded_frames=64)
    first = generate_synthetic_actions(40, seed=5, config=config)
    again = generate_synthetic_actions(40, seed=5, config=config)
    other = generate_synthetic_actions(40, seed=6, config=config)
    for name in ("sequences", "labels", "subjects", "views", "lengths"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.sequences.shape == (40, 64, 150) and not np.array_equal(first.sequences, other.sequences)


def test_bone_lengths_belong_to_subjects(data):
    sequences, rows = joints(data)
    upper_arm = np.array(
        [np.median(np.linalg.norm(s[:, 0, RIGHT_ELBOW] - s[:, 0, RIGHT_SHOULDER], axis=-1)) for s in sequences]
    )
    subjects = data.subjects[rows]
    within = np.mean([upper_arm[subjects == s].std() for s in np.unique(subjects)])
    between = np.std([upper_arm[subjects == s].mean() for s in np.unique(subjects)])
    assert within < 0.003 < 0.01 < between  # metres: constant per subject, different between subjects


def test_views_turn_the_camera(data):
    """The shoulder line of a person facing the front camera is along x; views 2 and 3 see it turned by 45 deg."""
    for view, expected in ((1, 0.0), (2, 45.0), (3, -45.0)):
        sequences, _ = joints(data, label=1, view=view)  # one person, standing still
        shoulders = np.stack([s[0, 0, LEFT_SHOULDER] - s[0, 0, RIGHT_SHOULDER] for s in sequences])
        angle = np.degrees(np.arctan2(shoulders[:, 2], -shoulders[:, 0]))
        assert abs(np.median(angle) - expected) < 10


def relative(sequences: list[np.ndarray], joint: int, origin: int) -> np.ndarray:
    """All frames of one joint relative to another, person 1: (frames in total, 3)."""
    return np.concatenate([s[:, 0, joint] - s[:, 0, origin] for s in sequences])


def test_pairs_share_their_poses_and_differ_in_motion(data):
    wave, _ = joints(data, label=0)
    hold, _ = joints(data, label=1)
    # Where the hand is: the same distribution over frames...
    wave_hand, hold_hand = relative(wave, RIGHT_HAND, RIGHT_SHOULDER), relative(hold, RIGHT_HAND, RIGHT_SHOULDER)
    np.testing.assert_allclose(wave_hand.mean(0), hold_hand.mean(0), atol=0.03)
    np.testing.assert_allclose(wave_hand.std(0), hold_hand.std(0), atol=0.03)
    # ...how it moves: waving moves it, holding does not (beyond sensor noise).
    motion = [np.median([s[:, 0, RIGHT_HAND].std(0).mean() for s in group]) for group in (wave, hold)]
    assert motion[0] > 5 * motion[1]

    # Clapping fast and slowly: the same hand positions, about 3 Hz against 1 Hz.
    fast, slow = (joints(data, label=label)[0] for label in (6, 7))
    np.testing.assert_allclose(
        relative(fast, LEFT_HAND, RIGHT_HAND).std(0), relative(slow, LEFT_HAND, RIGHT_HAND).std(0), atol=0.02
    )

    def clapping_frequency(sequence: np.ndarray) -> float:  # Hz, at 30 frames per second
        gap = np.linalg.norm(sequence[:, 0, LEFT_HAND] - sequence[:, 0, RIGHT_HAND], axis=-1)
        spectrum = np.abs(np.fft.rfft(gap - gap.mean()))
        return float(np.argmax(spectrum) * 30 / len(gap))

    assert 2.2 < np.median([clapping_frequency(s) for s in fast]) < 4
    assert 0.6 < np.median([clapping_frequency(s) for s in slow]) < 1.4

    # Arm circles: the same circle, run in opposite directions (signed area of the hand's path, front view).
    def turning(sequence: np.ndarray) -> float:
        path = sequence[:, 0, RIGHT_HAND, :2] - sequence[:, 0, RIGHT_HAND, :2].mean(0)
        return float(np.sum(path[:-1, 0] * path[1:, 1] - path[1:, 0] * path[:-1, 1]))

    clockwise, counter = (joints(data, label=label, view=1)[0] for label in (2, 3))
    # Clockwise as the performer sees the hand; the front camera faces the performer, so it sees the opposite.
    assert np.mean([turning(s) < 0 for s in clockwise]) > 0.9 and np.mean([turning(s) > 0 for s in counter]) > 0.9

    # Squats and meetings are time-reversed pairs: a quick change one way, a slow one back.
    def fastest_drop_over_fastest_rise(signal: np.ndarray) -> float:
        velocity = np.diff(np.convolve(signal, np.ones(9) / 9, mode="valid"))  # smoothed: sensor noise aside
        return -velocity.min() / velocity.max()

    for label, signal in (
        (4, lambda s: s[:, 0, SPINE_BASE, 1]),  # height of the hips
        (8, lambda s: np.linalg.norm(s[:, 0, SPINE_BASE] - s[:, 1, SPINE_BASE], axis=-1)),  # distance apart
    ):
        forward, backward = joints(data, label=label)[0], joints(data, label=label + 1)[0]
        assert np.median([fastest_drop_over_fastest_rise(signal(s)) for s in forward]) > 1.5
        assert np.median([fastest_drop_over_fastest_rise(signal(s)) for s in backward]) < 1 / 1.5
        heights = [np.concatenate([signal(s) for s in group]) for group in (forward, backward)]
        assert abs(heights[0].mean() - heights[1].mean()) < 0.05 and abs(heights[0].std() - heights[1].std()) < 0.05


@pytest.mark.parametrize(
    ("split", "field", "train_values"), [("subject", "subject", {1, 3, 5}), ("view", "view", {2, 3})]
)
def test_npz_file_in_the_ntu_layout(tmp_path, split, field, train_values):
    config = SyntheticActionConfig(num_subjects=6, max_frames=80)
    path = write_synthetic_npz(tmp_path / "synthetic.npz", num_samples=120, split=split, seed=1, config=config)
    with np.load(path) as arrays:
        assert set(arrays[f"{field}_train"].tolist()) == train_values
        assert not set(arrays[f"{field}_test"].tolist()) & train_values
        assert arrays["x_train"].shape[1:] == (300, 150) and arrays["y_train"].shape[1] == 10
        assert len(arrays["x_train"]) + len(arrays["x_test"]) == 120
        assert "SYNTHETIC" in str(arrays["description"])
    dataset = NpzSkeletonDataset(path, split="test")
    assert all(name.startswith("synthetic: ") for name in dataset.id2label.values()) and dataset.num_classes == 10


def test_console_script_says_synthetic(tmp_path, capsys):
    main(["--output", str(tmp_path / "demo.npz"), "--num-samples", "20", "--split", "view"])
    assert "SYNTHETIC" in capsys.readouterr().out and (tmp_path / "demo.npz").exists()
    with pytest.raises(ValueError, match="split"):
        write_synthetic_npz(tmp_path / "x.npz", num_samples=10, split="setup")
    with pytest.raises(ValueError, match="min_frames"):
        SyntheticActionConfig(min_frames=100, max_frames=50)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"noise_std": float("nan")}, r"`noise_std` .* got nan"),
        ({"noise_std": float("inf")}, r"`noise_std` .* got inf"),
        ({"noise_std": -0.01}, r"`noise_std` .* got -0\.01"),
        ({"noise_std": "0.01"}, r"`noise_std` .* got '0\.01'"),
        ({"speed_range": (0.0, 1.0)}, r"`speed_range` .*0 < low <= high, got \(0\.0, 1\.0\)"),
        ({"speed_range": (1.25, 0.8)}, r"`speed_range` .* got \(1\.25, 0\.8\)"),
        ({"speed_range": (0.8, float("nan"))}, r"`speed_range` .* got \(0\.8, nan\)"),
        ({"amplitude_range": (-0.1, 1.0)}, r"`amplitude_range` .*0 <= low <= high, got \(-0\.1, 1\.0\)"),
        ({"amplitude_range": (1.0,)}, r"`amplitude_range` .* got \(1\.0,\)"),
        ({"num_subjects": 1}, r"`num_subjects` .* got 1"),
        ({"num_subjects": 2.5}, r"`num_subjects` must be an integer, got 2\.5"),
        ({"min_frames": 1}, r"min_frames=1,"),
        ({"min_frames": 100, "max_frames": 50}, r"min_frames=100, max_frames=50"),
        ({"max_frames": 400}, r"max_frames=400, padded_frames=300"),
        ({"padded_frames": True}, r"`padded_frames` must be an integer, got True"),
    ],
)
def test_config_refuses_bad_values(fields, message):
    with pytest.raises(ValueError, match=message):
        SyntheticActionConfig(**fields)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_samples": 0}, r"`num_samples` must be an integer >= 1, got 0"),
        ({"num_samples": 2.5}, r"`num_samples` .* got 2\.5"),
        ({"num_samples": 10, "seed": -1}, r"`seed` must be an integer >= 0, got -1"),
    ],
)
def test_generator_refuses_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_synthetic_actions(**kwargs)


def test_console_script_refuses_a_nan_noise_level(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMP_HUB_TRACEBACK", "1")  # the exception itself, whether or not main reports it as one line
    with pytest.raises(ValueError, match=r"`noise_std` .* got nan"):
        main(["--output", str(tmp_path / "nan.npz"), "--num-samples", "10", "--noise-std", "nan"])
    assert not (tmp_path / "nan.npz").exists()
