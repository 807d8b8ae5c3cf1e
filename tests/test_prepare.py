"""Preparation from raw downloads: tiny NTU `.skeleton` and PKU-MMD files written in the real formats (corrupt
ones included) -> the expected `.npz` arrays and the list of skipped files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import RNG, body, per_frame, pku_raw, write_skeleton_file

from mamp_hub.data.prepare_ntu import main as prepare_ntu_main
from mamp_hub.data.prepare_ntu import prepare_ntu
from mamp_hub.data.prepare_pku import prepare_pku

# ---------------------------------------------------------------------------------------------------- NTU


def centred(*actors: np.ndarray) -> np.ndarray:
    """The expected (300, 150) row: actors side by side, minus actor 1's first-frame joint 2, zero padded."""
    joints = np.concatenate([a.astype(np.float32).reshape(len(a), 75) for a in actors], axis=1)
    joints -= np.tile(actors[0][0, 1].astype(np.float32), len(actors) * 25)
    row = np.zeros((300, 150), dtype=np.float32)
    row[: len(joints), : joints.shape[1]] = joints
    return row


@pytest.fixture
def ntu_raw(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """Raw files and the row each must become; corrupt files have no row."""
    raw = tmp_path / "nturgb+d_skeletons"
    raw.mkdir()
    expected = {}

    # One body.
    a = body(20)
    write_skeleton_file(raw / "S001C001P002R001A001.skeleton", per_frame(("7205759403792793", a, 0)))
    expected["S001C001P002R001A001"] = centred(a)

    # A second body seen in only 5 frames is noise; a frame without any body is dropped.
    b, noise = body(30), body(5)
    frames = per_frame(("1", b, 0), ("2", noise, 10))
    frames.insert(15, [])
    write_skeleton_file(raw / "S002C003P001R001A010.skeleton", frames)
    expected["S002C003P001R001A010"] = centred(b)

    # Two actors: the one that moves more is actor 1.
    calm, lively = body(40, motion=0.002), body(40, motion=0.1)
    write_skeleton_file(raw / "S001C002P003R002A050.skeleton", per_frame(("10", calm, 0), ("11", lively, 0)))
    expected["S001C002P003R002A050"] = centred(lively, calm)

    # A body wider than tall in every frame is not a person.
    person, wide = body(25), body(25, wide=True, motion=0.2)
    write_skeleton_file(raw / "S001C003P004R001A023.skeleton", per_frame(("5", wide, 0), ("6", person, 0)))
    expected["S001C003P004R001A023"] = centred(person)

    # Corrupt files: truncated inside a frame, a value that is not a number, no body at all.
    write_skeleton_file(raw / "S001C001P005R001A003.skeleton", per_frame(("1", body(12), 0)))
    text = (raw / "S001C001P005R001A003.skeleton").read_text()
    (raw / "S001C001P005R001A003.skeleton").write_text(text[: len(text) // 2])
    write_skeleton_file(raw / "S001C001P008R001A004.skeleton", per_frame(("1", body(12), 0)))
    text = (raw / "S001C001P008R001A004.skeleton").read_text()
    lines = text.splitlines()
    lines[40] = "0.12O4 " + lines[40].split(" ", 1)[1]  # an x coordinate that is not a number
    (raw / "S001C001P008R001A004.skeleton").write_text("\n".join(lines))
    write_skeleton_file(raw / "S001C002P001R001A005.skeleton", [[], [], []])
    (raw / "readme.txt").write_text("not a skeleton file")
    return raw, expected


def test_ntu60_from_skeleton_files(ntu_raw, tmp_path):
    raw, expected = ntu_raw
    written = prepare_ntu([raw], tmp_path / "out", dataset="ntu60", num_workers=2, progress=False)
    assert sorted(written) == ["NTU60_XSub.npz", "NTU60_XView.npz", "NTU60_skipped.txt"]

    skipped = dict(line.split("\t") for line in Path(written["NTU60_skipped.txt"]).read_text().splitlines())
    assert sorted(skipped) == ["S001C001P005R001A003", "S001C001P008R001A004", "S001C002P001R001A005"]
    assert "truncated" in skipped["S001C001P005R001A003"]
    assert "could not convert" in skipped["S001C001P008R001A004"]
    assert "no frame has a body" in skipped["S001C002P001R001A005"]

    # Cross-subject: training subjects in the order of the protocol's list (1, 2, 4, ...), test subject 3.
    with np.load(written["NTU60_XSub.npz"]) as xsub:
        train = ["S002C003P001R001A010", "S001C001P002R001A001", "S001C003P004R001A023"]
        np.testing.assert_array_equal(xsub["x_train"], np.stack([expected[name] for name in train]))
        np.testing.assert_array_equal(xsub["x_test"], expected["S001C002P003R002A050"][None])
        assert xsub["y_train"].shape == (3, 60) and xsub["y_train"].dtype == np.float64
        assert np.argmax(xsub["y_train"], axis=1).tolist() == [9, 0, 22] and np.argmax(xsub["y_test"]) == 49
    # Cross-view: cameras 2 then 3 train, camera 1 tests.
    with np.load(written["NTU60_XView.npz"]) as xview:
        train = ["S001C002P003R002A050", "S001C003P004R001A023", "S002C003P001R001A010"]  # by name in a group
        np.testing.assert_array_equal(xview["x_train"], np.stack([expected[name] for name in train]))
        np.testing.assert_array_equal(xview["x_test"], expected["S001C001P002R001A001"][None])


def test_ntu120_copies_a_lone_actor_and_splits_by_setup(ntu_raw, tmp_path):
    raw, expected = ntu_raw
    missing = tmp_path / "NTU_RGBD120_samples_with_missing_skeletons.txt"
    missing.write_text("S001C003P004R001A023\n")
    prepare_ntu_main(
        [
            "--dataset",
            "ntu120",
            "--raw-dir",
            str(raw),
            "--output-dir",
            str(tmp_path / "out"),
            "--workers",
            "0",
            "--missing-skeletons",
            str(missing),
        ]
    )
    with np.load(tmp_path / "out" / "NTU120_XSet.npz") as xset:  # even setups train, odd ones test
        np.testing.assert_array_equal(xset["x_train"][0, :, :75], expected["S002C003P001R001A010"][:, :75])
        np.testing.assert_array_equal(xset["x_train"][0, :, 75:], xset["x_train"][0, :, :75])
        np.testing.assert_array_equal(xset["x_test"][1], expected["S001C002P003R002A050"])  # two actors: as is
        assert len(xset["x_test"]) == 2 and xset["y_test"].shape == (2, 120)  # the listed sample is left out
    with np.load(tmp_path / "out" / "NTU120_XSub.npz") as xsub:  # subjects 1 and 2 train, subject 3 tests
        lone = [expected[name].copy() for name in ("S002C003P001R001A010", "S001C001P002R001A001")]
        for row in lone:
            row[:, 75:] = row[:, :75]
        np.testing.assert_array_equal(xsub["x_train"], np.stack(lone))
        np.testing.assert_array_equal(xsub["x_test"], expected["S001C002P003R002A050"][None])
        assert np.argmax(xsub["y_train"], axis=1).tolist() == [9, 0]
        assert np.argmax(xsub["y_test"], axis=1).tolist() == [49]


def test_ntu_refuses_folders_without_skeleton_files(tmp_path):
    with pytest.raises(ValueError, match=r"No NTU .skeleton files"):
        prepare_ntu([tmp_path], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="ntu60"):
        prepare_ntu([tmp_path], tmp_path / "out", dataset="ntu", progress=False)


# ---------------------------------------------------------------------------------------------------- PKU-MMD


def test_pku_mmd_instances_from_skeleton_and_label_files(tmp_path):
    raw = tmp_path / "pku_v1"
    (raw / "skeleton").mkdir(parents=True)
    (raw / "label").mkdir()
    recordings = {name: np.round(RNG.normal(size=(420, 150)), 4) for name in ("0002-L", "0002-M", "0003-R")}
    recordings["0002-L"][60:80] = 0
    for name, frames in recordings.items():
        np.savetxt(raw / "skeleton" / f"{name}.txt", frames, fmt="%.4f")
    (raw / "label" / "0002-L.txt").write_text("3,10,40,1\n7,5,400,2\n52,1,9,1\n12,60,80,1\n")
    (raw / "label" / "0002-M.txt").write_text("51,100,130,1\n")
    (raw / "label" / "0003-R.txt").write_text("1,0,10,1\n")
    text = (raw / "skeleton" / "0003-R.txt").read_text()
    (raw / "skeleton" / "0003-R.txt").write_text(text[: len(text) - 300])  # last line cut short
    (raw / "cross-subject.txt").write_text("Training videos: \n0002-L, 0003-R\nValidataion videos: \n0002-M\n")

    written = prepare_pku(raw, tmp_path / "out", phase=1, cross_subject=raw / "cross-subject.txt", num_workers=0)
    assert sorted(written) == ["PKUv1_XSub.npz", "PKUv1_skipped.txt"]
    skipped = dict(line.split("\t") for line in Path(written["PKUv1_skipped.txt"]).read_text().splitlines())
    assert sorted(skipped) == ["0002-L_2", "0002-L_3", "0003-R"]  # label 52, all-zero frames, corrupt file
    assert "not in 1..51" in skipped["0002-L_2"] and "all zero" in skipped["0002-L_3"]

    def padded(frames: np.ndarray) -> np.ndarray:
        row = np.zeros((300, 150), dtype=np.float32)
        row[: len(frames)] = frames[:300]
        return row

    with np.load(written["PKUv1_XSub.npz"]) as xsub:
        train = recordings["0002-L"]
        np.testing.assert_array_equal(xsub["x_train"], np.stack([padded(train[10:40]), padded(train[5:305])]))
        assert np.argmax(xsub["y_train"], axis=1).tolist() == [2, 6] and xsub["y_train"].shape == (2, 51)
        np.testing.assert_array_equal(xsub["x_test"], padded(recordings["0002-M"][100:130])[None])
        assert np.argmax(xsub["y_test"], axis=1).tolist() == [50]


def test_pku_mmd_needs_a_split_file(tmp_path):
    with pytest.raises(ValueError, match="split file"):
        prepare_pku(tmp_path, tmp_path / "out")
    (tmp_path / "split.txt").write_text("Training videos:\n")
    with pytest.raises(ValueError, match="second line"):
        prepare_pku(tmp_path, tmp_path / "out", cross_view=tmp_path / "split.txt")


# ---------------------------------------------------------------------------------------------------- checks


def replace_x(path: Path, line: int, value: str) -> None:
    """Writes `value` as the x coordinate on one line of a skeleton file."""
    lines = path.read_text().splitlines()
    lines[line] = value + " " + lines[line].split(" ", 1)[1]
    path.write_text("\n".join(lines) + "\n")


def test_ntu_skips_and_lists_non_finite_coordinates(ntu_raw, tmp_path):
    raw, expected = ntu_raw
    # Line 10 is joint 6 of the first frame (frame count, body count, body line, joint count, joints 0..5).
    bad = {"S001C001P002R001A011": "nan", "S001C001P002R001A012": "-inf", "S001C001P002R001A013": "1e39"}
    for name, value in bad.items():
        write_skeleton_file(raw / f"{name}.skeleton", per_frame(("72057", body(20), 0)))
        replace_x(raw / f"{name}.skeleton", 10, value)
    written = prepare_ntu([raw], tmp_path / "out", dataset="ntu60", num_workers=0, progress=False)
    skipped = dict(line.split("\t") for line in Path(written["NTU60_skipped.txt"]).read_text().splitlines())
    for name, value in {**bad, "S001C001P002R001A013": "inf"}.items():  # 1e39 overflows float32 to inf
        assert f"body 72057: non-finite coordinate x = {value} at joint 6 of its frame 0" in skipped[name]
    with np.load(written["NTU60_XSub.npz"]) as xsub:  # the other samples are written as before
        train = ["S002C003P001R001A010", "S001C001P002R001A001", "S001C003P004R001A023"]
        np.testing.assert_array_equal(xsub["x_train"], np.stack([expected[name] for name in train]))
        assert np.isfinite(xsub["x_train"]).all()


def test_ntu_refuses_folders_whose_files_all_fail(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_skeleton_file(raw / "S001C001P001R001A001.skeleton", [[], []])
    write_skeleton_file(raw / "S001C001P001R001A000.skeleton", per_frame(("1", body(20), 0)))  # no action 0
    with pytest.raises(ValueError, match=r"None of the 2 \.skeleton files .*NTU60_skipped\.txt"):
        prepare_ntu(str(raw), tmp_path / "out", num_workers=0, progress=False)  # one folder, passed alone
    skipped = dict(line.split("\t") for line in (tmp_path / "out" / "NTU60_skipped.txt").read_text().splitlines())
    assert "no frame has a body" in skipped["S001C001P001R001A001"]
    assert "action A000 is not one of the 60 classes" in skipped["S001C001P001R001A000"]
    assert not list((tmp_path / "out").glob("*.npz"))


def test_pku_mmd_skips_and_lists_non_finite_coordinates_and_labels_that_are_not_whole(tmp_path):
    frames = np.round(RNG.normal(size=(400, 150)), 4)
    frames[50, 7], frames[60, 8], frames[390, 3] = np.nan, np.inf, np.nan  # frame 390 is in no instance
    frames[250, 0] = 1e39  # beyond the float32 range
    labels = "3,10,40,1\n4,45,70,1\n3.5,100,130,1\nnan,100,130,1\n5,100.5,130,1\n6,200,230,1\n7,380,400,1\n"
    labels += "8,240,260,1\n"
    raw = pku_raw(tmp_path, {"0002-L": frames}, {"0002-L": labels})
    written = prepare_pku(raw, tmp_path / "out", cross_subject=raw / "cross-subject.txt", num_workers=0)
    skipped = dict(line.split("\t") for line in Path(written["PKUv1_skipped.txt"]).read_text().splitlines())
    assert sorted(skipped) == ["0002-L_1", "0002-L_2", "0002-L_3", "0002-L_4", "0002-L_6", "0002-L_7"]
    assert "frame 50 holds nan, not a finite float32 coordinate (2 such frames)" in skipped["0002-L_1"]
    assert "frame 250 holds 1e+39, not a finite float32 coordinate" in skipped["0002-L_7"]
    assert "label line 3 reads 3.5,100,130" in skipped["0002-L_2"] and "nan,100,130" in skipped["0002-L_3"]
    assert "5,100.5,130" in skipped["0002-L_4"] and "frame 390" in skipped["0002-L_6"]
    with np.load(written["PKUv1_XSub.npz"], allow_pickle=False) as xsub:
        kept = np.zeros((2, 300, 150), dtype=np.float32)
        kept[0, :30], kept[1, :30] = frames[10:40], frames[200:230]
        np.testing.assert_array_equal(xsub["x_train"], kept)
        assert np.argmax(xsub["y_train"], axis=1).tolist() == [2, 5] and len(xsub["x_test"]) == 0


def test_pku_mmd_refuses_downloads_without_usable_instances(tmp_path):
    raw = pku_raw(tmp_path, {}, {})
    with pytest.raises(ValueError, match=r"skeleton' holds no \.txt recordings"):
        prepare_pku(raw, tmp_path / "out", cross_subject=raw / "cross-subject.txt", num_workers=0)
    raw = pku_raw(tmp_path / "second", {"0002-L": np.ones((50, 150))}, {"0002-L": "52,0,10,1\n"})
    with pytest.raises(ValueError, match=r"None of the 1 recordings .*PKUv1_skipped\.txt"):
        prepare_pku(raw, tmp_path / "out", cross_subject=raw / "cross-subject.txt", num_workers=0)
    assert "label 52" in (tmp_path / "out" / "PKUv1_skipped.txt").read_text()
    assert not list((tmp_path / "out").glob("*.npz"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_workers": -1}, r"`num_workers` is -1"),
        ({"num_workers": 1.5}, r"`num_workers` is 1\.5"),
        ({"max_frames": 0}, r"`max_frames` is 0"),
        ({"max_frames": 2.5}, r"`max_frames` is 2\.5"),
    ],
)
@pytest.mark.parametrize("dataset", ["ntu", "pku"])
def test_preparation_refuses_bad_counts(tmp_path, dataset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        if dataset == "ntu":
            prepare_ntu([tmp_path], tmp_path / "out", progress=False, **kwargs)
        else:
            prepare_pku(tmp_path, tmp_path / "out", cross_subject=tmp_path / "split.txt", progress=False, **kwargs)
