"""Whole PKU-MMD recordings: `read_pku_recording` on tiny files in the real format, and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mamp_hub.data.prepare_pku import iter_pku_recordings, read_pku_recording

RNG = np.random.default_rng(0)


def write_recording(folder: Path, name: str, frames: np.ndarray, labels: str) -> tuple[Path, Path]:
    (folder / "skeleton").mkdir(parents=True, exist_ok=True)
    (folder / "label").mkdir(exist_ok=True)
    skeleton, label = folder / "skeleton" / f"{name}.txt", folder / "label" / f"{name}.txt"
    np.savetxt(skeleton, frames, fmt="%.4f")
    label.write_text(labels)
    return skeleton, label


def test_reads_the_whole_recording_and_its_segments(tmp_path):
    frames = np.round(RNG.normal(size=(90, 150)), 4)
    skeleton, label = write_recording(tmp_path, "0002-L", frames, "3,10,40,1\n51,40,90,2\n1,0,5,1\n")
    array, segments = read_pku_recording(skeleton, label)
    assert array.dtype == np.float32 and array.shape == (90, 150)
    np.testing.assert_array_equal(array, frames.astype(np.float32))
    assert segments == [
        {"label": 2, "start": 10, "end": 40},  # labels 0-based, frames as in the file, end exclusive
        {"label": 50, "start": 40, "end": 90},  # ending with the recording's last frame
        {"label": 0, "start": 0, "end": 5},
    ]
    # The same frames as the trimmed preparation cuts for that instance.
    np.testing.assert_array_equal(array[segments[0]["start"] : segments[0]["end"]], frames[10:40].astype(np.float32))


def test_a_recording_without_actions_and_a_folder(tmp_path):
    frames = np.ones((20, 150))
    write_recording(tmp_path, "0003-M", frames, "")
    write_recording(tmp_path, "0002-R", frames, "7,1,20,1\n")
    recordings = list(iter_pku_recordings(tmp_path))
    assert [name for name, _, _ in recordings] == ["0002-R", "0003-M"]
    assert recordings[0][2] == [{"label": 6, "start": 1, "end": 20}] and recordings[1][2] == []
    assert [name for name, _, _ in iter_pku_recordings(tmp_path, names=["0003-M"])] == ["0003-M"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("3,10,40,1\n3,30,61,1\n", r"line 2: the action spans frames \[30, 61\).* <= 60"),  # past the recording
        ("3,10,10,1\n", r"line 1: the action spans frames \[10, 10\)"),
        ("3,40,10,1\n", r"line 1: the action spans frames \[40, 10\)"),
        ("3,-1,10,1\n", r"line 1: the action spans frames \[-1, 10\)"),
        ("3,10,40,1\n52,0,10,1\n", "line 2: label 52 is not in 1..51"),
        ("0,0,10,1\n", "line 1: label 0 is not in 1..51"),
        ("3,10.5,40,1\n", "line 1: label line 1 reads 3,10.5,40; label, start and end must be whole"),
        ("3,10\n", "label lines have 2 values"),
        ("3,x,40,1\n", "could not convert string 'x'"),
    ],
)
def test_bad_label_files_name_the_file_and_line(tmp_path, labels, message):
    skeleton, label = write_recording(tmp_path, "0002-L", np.ones((60, 150)), labels)
    with pytest.raises(ValueError, match=message) as error:
        read_pku_recording(skeleton, label)
    assert str(label) in str(error.value)


def test_bad_skeleton_files_are_named(tmp_path):
    skeleton, label = write_recording(tmp_path, "0002-L", np.ones((10, 149)), "1,0,5,1\n")
    with pytest.raises(ValueError, match="skeleton lines have 149 values, expected 150") as error:
        read_pku_recording(skeleton, label)
    assert str(skeleton) in str(error.value)
    skeleton.write_text("")
    with pytest.raises(ValueError, match="holds no frame"):
        read_pku_recording(skeleton, label)
    with pytest.raises(OSError, match=r"missing\.txt"):
        read_pku_recording(tmp_path / "missing.txt", label)
