"""`StreamingActionRecognizer`: frames pushed in chunks of any sizes give the windows of the offline call, with a
pipeline, a model and its processor, or an ONNX export; memory for one window; bad streams refused."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_NUM_FRAMES, moving_people, save_tiny_classifier, synthetic_recording, tiny_config
from transformers import pipeline

from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor, StreamingActionRecognizer

WINDOW, STRIDE = 20, 6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def classifier(checkpoint):
    return pipeline("skeleton-action-recognition", model=str(checkpoint))


def stream(recognizer: StreamingActionRecognizer, frames: np.ndarray, sizes, tracks: np.ndarray | None = None):
    """Push `frames` (persons first, or frames first for a 3-D or 2-D array) in chunks of `sizes`, then flush."""
    frame_axis = 1 if frames.ndim == 4 else 0
    windows, position = [], 0
    for size in sizes:
        chunk = frames[:, position : position + size] if frame_axis else frames[position : position + size]
        chunk_tracks = None if tracks is None else tracks[:, position : position + size]
        windows += recognizer.push(chunk, tracks=chunk_tracks)
        position += size
    assert position >= frames.shape[frame_axis]
    return windows + recognizer.flush()


def random_sizes(total: int, seed: int, largest: int = 3 * WINDOW) -> list[int]:
    """Chunk sizes from 0 (an empty push) to several windows, adding up to at least `total`."""
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(rng.choice([0, 1, 2, STRIDE, WINDOW - 1, WINDOW, WINDOW + 1, largest, rng.integers(largest)])))
    return sizes


@pytest.mark.parametrize("seed", [0, 1])
def test_chunks_of_any_sizes_give_exactly_the_offline_windows(classifier, seed):
    people = moving_people(3, 130, seed=seed, speeds=(1.0, 0.3, 0.6))
    people[0, 40:70] = 0  # someone leaves for a while
    people[:, 90:100] = 0  # nobody at all for 10 frames
    people[2, 10, 4, 0] = np.nan  # a failed detection: that person's frame is missing
    offline = classifier(people, window=WINDOW, stride=STRIDE, fps=30, return_windows=True)["windows"]
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE, fps=30)
    assert stream(recognizer, people, random_sizes(130, seed)) == offline
    assert stream(recognizer, people, [STRIDE] * 22) == offline  # after flush, a new stream
    assert stream(recognizer, people, [130]) == offline


def test_windows_come_as_soon_as_they_are_complete(classifier):
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE)
    frames = synthetic_recording(2)[:45]  # NTU rows, (frames, 150)
    assert recognizer.push(frames[:19]) == [] and recognizer.frames_seen == 19
    assert [(w["start"], w["end"]) for w in recognizer.push(frames[19:20])] == [(0, 20)]
    assert [(w["start"], w["end"]) for w in recognizer.push(frames[20:38])] == [(6, 26), (12, 32), (18, 38)]
    assert recognizer.push(frames[38:38]) == []
    assert [(w["start"], w["end"]) for w in recognizer.push(frames[38:45])] == [(24, 44)]
    assert [(w["start"], w["end"]) for w in recognizer.flush()] == [(25, 45)]  # the last window ends at the last frame
    assert recognizer.frames_seen == 0 and recognizer.flush() == []

    assert recognizer.push(frames[:12]) == []  # shorter than a window: one window, at the end
    assert [(w["start"], w["end"]) for w in recognizer.flush()] == [(0, 12)]
    recognizer.push(frames[:26])  # windows 0-20 and 6-26: the last one ends at the last frame already
    assert recognizer.flush() == []


def test_memory_is_one_window_of_frames(classifier):
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=WINDOW)
    frames = moving_people(2, 200)
    windows = []
    for start in range(0, 200, 25):
        windows += recognizer.push(frames[:, start : start + 25])
    assert len(windows) == 10 and recognizer.frames_seen == 200
    buffer = recognizer._joints  # the ring buffer: the stream's only frames
    assert buffer.shape == (2, WINDOW, 25, 3)


def test_several_model_calls_per_push_agree_with_the_offline_batches(classifier):
    recording = synthetic_recording(3)
    offline = classifier(recording, window=WINDOW, stride=STRIDE, return_windows=True, batch_size=4)["windows"]
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE, batch_size=4)
    windows = stream(recognizer, recording, random_sizes(len(recording), 3))
    # Batches of other sizes round the float32 products differently: same windows and labels, scores to 1e-6.
    assert [(w["start"], w["end"], w["label"]) for w in windows] == [
        (w["start"], w["end"], w["label"]) for w in offline
    ]
    np.testing.assert_allclose([w["score"] for w in windows], [w["score"] for w in offline], rtol=0, atol=1e-6)


def test_each_track_in_a_stream(classifier):
    people = moving_people(2, 90)
    swapped = people.copy()
    swapped[:, 45:] = people[::-1, 45:]
    ids = np.array([[11] * 45 + [12] * 45, [12] * 45 + [11] * 45])
    offline = classifier(people, tracks=[11, 12], window=WINDOW, stride=STRIDE, persons="each", return_windows=True)
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE, persons="each")
    assert stream(recognizer, swapped, random_sizes(90, 4), tracks=ids) == offline["windows"]
    assert {w["track"] for w in offline["windows"]} == {11, 12}


def test_centred_windows_stream_the_same(classifier):
    rows = synthetic_recording(2).reshape(-1, 2, 75)  # NTU rows of two person slots
    present = rows.any(axis=2, keepdims=True)  # a camera's coordinates for the people present
    recording = (rows + present * np.tile(np.float32([0.5, 0.0, 3.0]), 25)).reshape(-1, 150)
    offline = classifier(recording, window=WINDOW, stride=STRIDE, centre=True, return_windows=True)["windows"]
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE, centre=True)
    assert stream(recognizer, recording, random_sizes(len(recording), 7)) == offline


def test_people_may_join_the_stream(classifier):
    people = moving_people(2, 60)
    people[1, :33] = 0
    offline = classifier(people, window=WINDOW, stride=STRIDE, return_windows=True)["windows"]
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE)
    windows = recognizer.push(people[0, :33])  # (frames, 25, 3): one person so far
    windows += recognizer.push(people[:, 33:])  # then two
    assert windows + recognizer.flush() == offline


def test_a_model_with_its_processor_or_its_checkpoint(classifier, checkpoint):
    recording = synthetic_recording(2)
    offline = classifier(recording, window=WINDOW, stride=STRIDE, return_windows=True)["windows"]
    model = MampForSkeletonClassification.from_pretrained(checkpoint)
    saved = StreamingActionRecognizer(model, window=WINDOW, stride=STRIDE)  # the processor saved with the model
    assert stream(saved, recording, random_sizes(len(recording), 5)) == offline
    given = StreamingActionRecognizer(
        model, WINDOW, STRIDE, processor=MampSkeletonProcessor(num_frames=TINY_NUM_FRAMES)
    )
    assert stream(given, recording, [len(recording)]) == offline

    in_memory = MampForSkeletonClassification(tiny_config(num_labels=10, classifier_head="finetune"))
    with pytest.raises(ValueError, match="pass processor=MampSkeletonProcessor"):
        StreamingActionRecognizer(in_memory)
    with pytest.raises(TypeError, match="Got ndarray"):
        StreamingActionRecognizer(recording)
    embedder = pipeline("skeleton-feature-extraction", model=str(checkpoint))
    with pytest.raises(TypeError, match="skeleton-action-recognition pipeline"):
        StreamingActionRecognizer(embedder)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs onnxruntime (the onnx extra)")
def test_an_onnx_export_streams_the_same_windows(classifier, checkpoint, tmp_path):
    import onnxruntime

    from mamp_hub.tools.onnx_export import export_onnx, load_for_export

    path = export_onnx(load_for_export(checkpoint), tmp_path / "model.onnx").path
    recording = synthetic_recording(2)
    offline = classifier(recording, window=WINDOW, stride=STRIDE, return_windows=True)["windows"]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for source in (session, path, str(path)):
        recognizer = StreamingActionRecognizer(source, window=WINDOW, stride=STRIDE)
        windows = stream(recognizer, recording, random_sizes(len(recording), 6))
        assert [(w["start"], w["end"], w["label"]) for w in windows] == [
            (w["start"], w["end"], w["label"]) for w in offline
        ]
        np.testing.assert_allclose([w["score"] for w in windows], [w["score"] for w in offline], rtol=0, atol=1e-4)

    features = export_onnx(load_for_export(checkpoint, "features"), tmp_path / "features.onnx").path
    with pytest.raises(ValueError, match="features export"):
        StreamingActionRecognizer(features)
    with pytest.raises(ValueError, match="no ONNX file"):
        StreamingActionRecognizer(tmp_path / "missing.onnx")


def test_a_stream_whose_joints_change_is_refused(classifier):
    recognizer = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE)
    recognizer.push(np.ones((5, 25, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(5, 24, 3\), which fits no layout of 25 joints"):
        recognizer.push(np.ones((5, 24, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(1, joints, channels\)"):
        recognizer.push(np.ones((25, 3), np.float32))  # one frame without its frame axis

    processor = MampSkeletonProcessor(num_frames=TINY_NUM_FRAMES, joint_layout="smpl")  # SMPL: 24 or 45 joints
    smpl = StreamingActionRecognizer(classifier, window=WINDOW, stride=STRIDE, processor=processor)
    smpl.push(np.random.default_rng(0).normal(size=(30, 24, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="have 45 joints of 3 values, the stream's earlier frames 24 of 3"):
        smpl.push(np.ones((5, 45, 3), np.float32))
    smpl.flush()
    assert smpl.push(np.ones((5, 45, 3), np.float32)) == []  # a new stream may have other joints


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 100}, "from 4 to 64, got 100"),
        ({"window": 20, "stride": 0}, "stride must be.*got 0"),
        ({"window": 20.5}, "got 20.5"),
        ({"fps": float("nan")}, "`fps` must be a finite number"),
        ({"persons": "two"}, "'two'"),
        ({"batch_size": 0}, "`batch_size` must be a positive integer, got 0"),
        ({"function_to_apply": "relu"}, "'relu'"),
    ],
)
def test_bad_settings_are_refused(classifier, options, message):
    with pytest.raises(ValueError, match=message):
        StreamingActionRecognizer(classifier, **options)


def test_a_live_loop_of_single_frames(classifier):
    recognizer = StreamingActionRecognizer(classifier, fps=30)  # the checkpoint's window (17) and stride (4)
    assert (recognizer.window, recognizer.stride) == (17, 4)
    frames = torch.from_numpy(moving_people(1, 30)[0])
    windows = [window for frame in frames for window in recognizer.push(frame[None])]
    assert [(w["start"], w["end_s"]) for w in windows] == [(0, 17 / 30), (4, 21 / 30), (8, 25 / 30), (12, 29 / 30)]
    assert [(w["start"], w["end"]) for w in recognizer.flush()] == [(13, 30)]


def test_bench_streaming_smoke_returns_rows_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_streaming

    path = tmp_path / "streaming.json"
    rows = bench_streaming.main(["--smoke", "--no-onnx", "--json", str(path)])
    assert [(row["task"], row["batch_size"]) for row in rows] == [
        ("windowed recognition (offline)", 1),
        ("windowed recognition (offline)", 4),
        ("streaming push", 1),
    ]
    assert rows[0]["window"] == 17 and rows[0]["stride"] == 4 and rows[0]["throughput"] > 0
    assert 0 < rows[2]["median_ms"] <= rows[2]["p95_ms"] and len(rows[2]["seconds"]) == 5
    assert json.loads(path.read_text())["results"] == rows
    assert "| streaming push | PyTorch | cpu | 17 / 4 | 1 | median" in capsys.readouterr().out
