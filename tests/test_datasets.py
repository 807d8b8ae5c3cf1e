"""Data sets, the .npz reader and writer, the collator and the semi-supervised subsets."""

from __future__ import annotations

import pickle
import zipfile
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mamp_hub import MampSkeletonProcessor
from mamp_hub.data import (
    ArraySkeletonDataset,
    NpzSkeletonDataset,
    NpzWriter,
    NTUSkeletonDataset,
    PKUMMDSkeletonDataset,
    SkeletonDataCollator,
    load_npz,
    realign_npz,
    semi_supervised_indices,
    semi_supervised_subset,
)
from mamp_hub.data.npz import ALIGNMENT
from mamp_hub.pipelines import load_skeleton_file
from mamp_hub.skeletons import ACTION_NAMES, NTU_BONES, NTU_MIRROR_PAIRS, NTU_PARENTS, get_id2label
from mamp_hub.skeletons.layouts import count_valid_frames


def ntu_like_arrays(num_samples: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 300, 150) sequences of 40..300 frames, one-hot (N, num_classes) labels."""
    rng = np.random.default_rng(seed)
    x = np.zeros((num_samples, 300, 150), dtype=np.float32)
    for i, length in enumerate(rng.integers(40, 301, num_samples)):
        x[i, :length, : 75 if i % 2 else 150] = rng.normal(size=(length, 75 if i % 2 else 150))
    return x, np.eye(num_classes)[rng.integers(0, num_classes, num_samples)]


@pytest.fixture
def ntu60_file(tmp_path):
    x, y = ntu_like_arrays(12, 60)
    path = tmp_path / "NTU60_XSub.npz"
    np.savez(path, x_train=x[:8], y_train=y[:8], x_test=x[8:], y_test=y[8:])
    return path, x, y


def test_load_npz_maps_stored_arrays_and_reads_compressed_ones(ntu60_file, tmp_path):
    path, x, y = ntu60_file
    arrays = load_npz(path)
    assert isinstance(arrays["x_train"], np.memmap) and not arrays["x_train"].flags.writeable
    np.testing.assert_array_equal(arrays["x_train"], x[:8])
    np.testing.assert_array_equal(arrays["y_test"], y[8:])
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, x_train=x)
    assert not isinstance(load_npz(compressed)["x_train"], np.memmap)
    np.testing.assert_array_equal(load_npz(compressed)["x_train"], x)
    with pytest.raises(ValueError, match="no array named"):
        load_npz(path, keys=["x_val"])


def test_npz_writer_streams_rows_and_np_load_reads_the_file(tmp_path):
    rows = np.random.default_rng(0).normal(size=(5, 7, 3)).astype(np.float32)
    with NpzWriter(tmp_path / "out.npz") as writer:
        writer.add("names", np.array(["a", "bc"]))
        writer.add("scalar", np.array("SYNTHETIC"))
        writer.add_rows("rows", iter(rows), num_rows=5, row_shape=(7, 3), dtype=np.float32)
    with np.load(tmp_path / "out.npz", allow_pickle=False) as loaded:
        np.testing.assert_array_equal(loaded["rows"], rows)
        assert loaded["names"].tolist() == ["a", "bc"] and loaded["scalar"].shape == ()
    mapped = load_npz(tmp_path / "out.npz")
    np.testing.assert_array_equal(mapped["rows"], rows)
    assert zipfile.ZipFile(tmp_path / "out.npz").testzip() is None
    for name, array in mapped.items():  # unaligned arrays are copied whole by NumPy's take, matmul, ...
        assert isinstance(array, np.memmap) and array.ctypes.data % ALIGNMENT == 0, name
    with pytest.raises(ValueError, match="declared with 6 rows"), NpzWriter(tmp_path / "bad.npz") as writer:
        writer.add_rows("rows", iter(rows), num_rows=6, row_shape=(7, 3), dtype=np.float32)
    assert not (tmp_path / "bad.npz").exists() and not (tmp_path / "bad.npz.partial").exists()


def test_realign_npz_copies_a_savez_file_with_aligned_arrays(ntu60_file, tmp_path, caplog):
    path, x, y = ntu60_file
    with caplog.at_level("WARNING"):
        NpzSkeletonDataset(path)
    assert "realign_npz" in caplog.text  # np.savez's x_train is misaligned
    realign_npz(path, tmp_path / "aligned.npz")
    arrays = load_npz(tmp_path / "aligned.npz")
    assert sorted(arrays) == sorted(np.load(path).files)
    assert all(array.ctypes.data % ALIGNMENT == 0 for array in arrays.values())
    np.testing.assert_array_equal(arrays["x_train"], x[:8])
    np.testing.assert_array_equal(arrays["y_test"], y[8:])


def write_bad_files(folder) -> dict[str, object]:
    """Files that are not what their names say, cut short, damaged, or of Python objects -> the path of each."""
    np.save(folder / "clips.npy", np.zeros((2, 30, 150), np.float32))
    objects = np.array([{"joints": 1}], dtype=object)
    np.savez(folder / "objects.npz", x_train=objects, y_train=np.zeros(1), x_test=objects, y_test=np.zeros(1))
    np.save(folder / "objects.npy", np.array([{"joints": 1}], dtype=object), allow_pickle=True)
    np.savez_compressed(folder / "crc.npz", x_train=np.random.default_rng(0).normal(size=(2, 300, 150)))
    damaged = bytearray((folder / "crc.npz").read_bytes())
    damaged[2000:2100] = bytes(100)
    (folder / "crc.npz").write_bytes(damaged)
    (folder / "garbage.npy").write_bytes(b"not an array at all" * 8)
    (folder / "garbage.npz").write_bytes(b"not an archive at all" * 8)
    (folder / "cut.npy").write_bytes((folder / "clips.npy").read_bytes()[:300])
    return {path.name: path for path in folder.iterdir()}


@pytest.mark.parametrize(
    ("reader", "name", "message"),
    [
        (NpzSkeletonDataset, "clips.npy", "is a .npy file of one array, not an .npz file .*load this one with np.load"),
        (load_npz, "clips.npy", "is a .npy file of one array, not an .npz file"),
        (NpzSkeletonDataset, "garbage.npz", r"is no zip archive \(cut short, or in another format\)"),
        (NpzSkeletonDataset, "objects.npz", "Array 'x_train' of .*objects.npz' holds Python objects"),
        (load_npz, "crc.npz", "Array 'x_train' of .*crc.npz' is truncated or damaged"),
        (load_skeleton_file, "objects.npy", "objects.npy' holds Python objects .*does not load"),
        (load_skeleton_file, "objects.npz", "Array 'x_test' of .*objects.npz' holds Python objects"),
        (load_skeleton_file, "garbage.npy", "garbage.npy' is not a NumPy array: it does not start with a valid .npy"),
        (load_skeleton_file, "garbage.npz", "garbage.npz' is no zip archive"),
        (load_skeleton_file, "cut.npy", "cut.npy' is truncated or damaged"),
    ],
)
def test_files_that_are_not_what_they_claim_are_refused_naming_them(tmp_path, reader, name, message):
    """Every reader of skeleton files names the file (and the array) and never suggests unpickling it."""
    paths = write_bad_files(tmp_path)
    with pytest.raises(ValueError, match=message) as error:
        reader(paths[name])
    assert "allow_pickle" not in str(error.value) and "pickle.load" not in str(error.value)


def test_ntu_dataset_items_and_names(ntu60_file):
    path, x, y = ntu60_file
    train = NTUSkeletonDataset(path, split="train")
    test = NTUSkeletonDataset(path, split="test", mmap=False)
    assert (len(train), len(test), train.num_classes, train.layout) == (8, 4, 60, "ntu_flat")
    item = train[3]
    np.testing.assert_array_equal(item["skeleton_values"], x[3])
    assert item["labels"] == int(np.argmax(y[3])) and isinstance(item["labels"], int)
    assert train.id2label[0] == "drink water" and test.id2label[59] == "walking apart from each other"
    with pytest.raises(ValueError, match="split"):
        NTUSkeletonDataset(path, split="val")


def test_dataset_class_tables(tmp_path):
    for num_classes, dataset_class, name in (
        (120, NTUSkeletonDataset, "ntu120"),
        (51, PKUMMDSkeletonDataset, "pku_mmd"),
    ):
        x, y = ntu_like_arrays(4, num_classes)
        np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y)
        assert dataset_class(tmp_path / "d.npz").id2label == get_id2label(name)
    x, y = ntu_like_arrays(4, 7)
    np.savez(tmp_path / "seven.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    with pytest.raises(ValueError, match="NpzSkeletonDataset"):
        NTUSkeletonDataset(tmp_path / "seven.npz")
    assert NpzSkeletonDataset(tmp_path / "seven.npz").num_classes == 7
    np.savez(tmp_path / "named.npz", x_train=x, y_train=y, x_test=x, y_test=y, class_names=np.array(list("abcdefg")))
    assert NpzSkeletonDataset(tmp_path / "named.npz").id2label[6] == "g"
    np.savez(tmp_path / "flat.npz", x_train=x[:, :, :10], y_train=y, x_test=x, y_test=y)
    with pytest.raises(ValueError, match="NTU layout"):
        NpzSkeletonDataset(tmp_path / "flat.npz")


def test_skeleton_tables():
    assert (
        len(ACTION_NAMES["ntu60"]) == 60 and len(ACTION_NAMES["ntu120"]) == 120 and len(ACTION_NAMES["pku_mmd"]) == 51
    )
    assert get_id2label("ntu120")[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert get_id2label("pku_mmd")[0] == "bow" and get_id2label("pku_mmd")[50] == "writing"
    assert len(NTU_BONES) == 24 and NTU_PARENTS.count(-1) == 1
    mirrored = [j for pair in NTU_MIRROR_PAIRS for j in pair]
    assert len(set(mirrored)) == 20  # every limb joint has a partner; the 5 spine/head joints have none
    with pytest.raises(ValueError, match="ntu60"):
        get_id2label("ntu")


def test_collator_batches_with_one_processor_call(ntu60_file):
    path, x, y = ntu60_file
    dataset = NTUSkeletonDataset(path)
    processor = MampSkeletonProcessor(num_frames=16)
    batch = SkeletonDataCollator(processor, layout=dataset.layout)([dataset[i] for i in range(5)])
    assert batch["skeleton_values"].shape == (5, 2, 16, 25, 3) and batch["labels"].dtype == torch.int64
    torch.testing.assert_close(batch["skeleton_values"], processor(x[:5])["skeleton_values"], rtol=0, atol=0)
    assert batch["labels"].tolist() == np.argmax(y[:5], axis=1).tolist()

    # Layout inferred from the items; the random crop and rotation are the processor's, from the same generator.
    training = SkeletonDataCollator(processor, training=True, generator=torch.Generator().manual_seed(0))
    first = training([dataset[i] for i in range(5)])["skeleton_values"]
    augmented = processor(x[:5], training=True, generator=torch.Generator().manual_seed(0))["skeleton_values"]
    torch.testing.assert_close(first, augmented, rtol=0, atol=0)
    assert not torch.equal(first, batch["skeleton_values"])

    loader = DataLoader(dataset, batch_size=4, collate_fn=SkeletonDataCollator(processor), num_workers=0)
    assert [len(b["labels"]) for b in loader] == [4, 4]


def test_items_carry_valid_frames_counted_once_and_shared_with_workers(ntu60_file, monkeypatch):
    path, x, _ = ntu60_file
    dataset = NTUSkeletonDataset(path)
    assert not dataset.sequences.flags.aligned  # np.savez's members are misaligned: the slow path of NumPy
    clone = pickle.loads(ForkingPickler.dumps(dataset))  # as a spawned worker receives it
    processor = MampSkeletonProcessor(num_frames=16)
    loader = DataLoader(
        dataset, batch_size=4, num_workers=2, multiprocessing_context="fork", collate_fn=SkeletonDataCollator(processor)
    )
    batches = list(loader)  # the workers count
    torch.testing.assert_close(batches[1]["skeleton_values"], processor(x[4:8])["skeleton_values"], rtol=0, atol=0)

    def no_counting(*args):
        raise AssertionError("counted again")

    monkeypatch.setattr("mamp_hub.data.datasets.count_valid_frames", no_counting)
    expected = [count_valid_frames(sequence) for sequence in x[:8]]
    assert [dataset[i]["valid_frames"] for i in range(8)] == [clone[i]["valid_frames"] for i in range(8)] == expected
    assert "valid_frames" not in ArraySkeletonDataset(x, np.zeros(len(x), int))[0]  # no layout: not counted


def test_array_dataset_with_sequences_of_different_lengths():
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(length, 25, 3)).astype(np.float32) for length in (70, 120, 300)]  # one person
    dataset = ArraySkeletonDataset(sequences, labels=[2, 0, 1], layout="TVC", id2label={0: "a", 1: "b", 2: "c"})
    processor = MampSkeletonProcessor(num_frames=30)
    batch = SkeletonDataCollator(processor, layout=dataset.layout)([dataset[i] for i in range(3)])
    padded = np.zeros((3, 300, 25, 3), dtype=np.float32)
    for i, sequence in enumerate(sequences):
        padded[i, : len(sequence)] = sequence
    torch.testing.assert_close(batch["skeleton_values"], processor(padded, layout="TVC")["skeleton_values"])
    assert batch["labels"].tolist() == [2, 0, 1] and [dataset[i]["valid_frames"] for i in range(3)] == [70, 120, 300]
    with pytest.raises(ValueError, match="one label per sequence"):
        ArraySkeletonDataset(sequences, labels=[0, 1])


def test_semi_supervised_subsets_are_seeded_and_follow_the_official_protocol(ntu60_file):
    for ratio in (0.01, 0.1):
        first = semi_supervised_indices(40_000, ratio, seed=0)
        assert len(first) == int(40_000 * ratio) and len(set(first.tolist())) == len(first)
        np.testing.assert_array_equal(first, semi_supervised_indices(40_000, ratio, seed=0))
        assert not np.array_equal(first, semi_supervised_indices(40_000, ratio, seed=1))
        # The official feeder: NumPy's global generator seeded with the run seed, a shuffle, the first part.
        np.random.seed(0)
        shuffled = np.arange(40_000)
        np.random.shuffle(shuffled)
        np.testing.assert_array_equal(first, shuffled[: int(40_000 * ratio)])

    path, x, _ = ntu60_file
    subset = semi_supervised_subset(NTUSkeletonDataset(path), 0.5, seed=0)
    assert len(subset) == 4
    np.testing.assert_array_equal(subset[0]["skeleton_values"], x[subset.indices[0]])
    with pytest.raises(ValueError, match="ratio"):
        semi_supervised_indices(10, 0.0)


# ---------------------------------------------------------------------------------------------------- checks at open


def save_split(path, x: np.ndarray, y: np.ndarray, **extra: np.ndarray) -> None:
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y, **extra)


def test_labels_are_checked_at_open_and_sequences_stay_mapped(tmp_path):
    x, y = ntu_like_arrays(6, 60)
    save_split(tmp_path / "NTU60_XSub.npz", x, y)
    dataset = NTUSkeletonDataset(tmp_path / "NTU60_XSub.npz")
    assert isinstance(dataset.sequences.base, np.memmap)  # opening read the labels, not the sequences
    assert dataset.labels.tolist() == np.argmax(y, axis=1).tolist()
    y[5] = 0  # the last label is bad: the file fails when it opens, not when item 5 is read
    save_split(tmp_path / "NTU60_XSub.npz", x, y)
    with pytest.raises(ValueError, match="Row 5 of y_train"):
        NTUSkeletonDataset(tmp_path / "NTU60_XSub.npz")


def test_valid_labels_in_other_forms_are_accepted(tmp_path):
    x, y = ntu_like_arrays(4, 5)
    indices = np.argmax(y, axis=1)
    for labels in (indices, indices.astype(np.float32), y.astype(bool), y.astype(np.int8)):  # whole floats are fine
        assert ArraySkeletonDataset(x, labels, id2label=dict(enumerate("abcde"))).labels.tolist() == indices.tolist()
    save_split(tmp_path / "indices.npz", x, indices, class_names=np.array(list("abcde")))
    assert NpzSkeletonDataset(tmp_path / "indices.npz").num_classes == 5
    assert ArraySkeletonDataset(x, indices).num_classes == indices.max() + 1


def one_hot(rows: list[int], num_classes: int = 60) -> np.ndarray:
    return np.eye(num_classes)[rows]


def with_row(targets: np.ndarray, row: int, values: dict[int, float]) -> np.ndarray:
    targets = targets.copy()
    targets[row] = 0
    for column, value in values.items():
        targets[row, column] = value
    return targets


@pytest.mark.parametrize(
    ("dataset_class", "y", "extra", "message"),
    [
        # One-hot rows that are not one-hot: all zero, multi-hot, a value other than 0 and 1, nan.
        (NTUSkeletonDataset, with_row(one_hot([0, 1, 2, 3]), 2, {}), {}, r"Row 2 of y_train .* none"),
        (NTUSkeletonDataset, with_row(one_hot([0, 1, 2, 3]), 1, {1: 1, 5: 1}), {}, r"Row 1 .*\{1: 1.0, 5: 1.0\}"),
        (NpzSkeletonDataset, with_row(one_hot([0, 1, 2, 3], 7), 3, {4: 0.5}), {}, r"Row 3 .*\{4: 0.5\}"),
        (NpzSkeletonDataset, with_row(one_hot([0, 1, 2, 3], 7), 0, {0: np.nan}), {}, r"Row 0 .*\{0: nan\}"),
        # Class indices that are not whole, negative, out of range of the class names, or not numbers.
        (NpzSkeletonDataset, np.array([0.0, 1.5, 2.0, 3.0]), {}, r"Label 1 of y_train .* is 1\.5 .*whole"),
        (NpzSkeletonDataset, np.array([0.0, 1.0, np.nan, 3.0]), {}, r"Label 2 .* is nan"),
        (NpzSkeletonDataset, np.array([0, -1, 2, 3]), {}, r"Label 1 .* is -1 .*at least 0"),
        (NpzSkeletonDataset, np.array([0, 1, 7, 3]), {"class_names": np.array(list("abcdefg"))}, r"is 7 .*7 classes"),
        (NpzSkeletonDataset, np.array([True, False, True, True]), {}, r"y_train .* booleans"),
        (NpzSkeletonDataset, np.array(["a", "b", "c", "d"]), {}, r"y_train .* dtype <U1"),
        # Class counts that disagree: a 60-class file as PKU-MMD, fewer names than columns, not an NTU count.
        (PKUMMDSkeletonDataset, one_hot([0, 1, 2, 59]), {}, r"60 one-hot columns but there are 51 classes"),
        (NpzSkeletonDataset, one_hot([0, 1, 2, 3]), {"class_names": np.array(list("abc"))}, r"60 .* 3 classes"),
        (NTUSkeletonDataset, one_hot([0, 1, 2, 3], 7), {}, r"has 7 classes but NTU RGB\+D has 60 or 120"),
        (NTUSkeletonDataset, np.array([0, 1, 2, 58]), {}, r"has 59 classes"),
    ],
)
def test_bad_labels_fail_when_the_file_opens(tmp_path, dataset_class, y, extra, message):
    x, _ = ntu_like_arrays(len(y), 1)
    save_split(tmp_path / "d.npz", x, y, **extra)
    with pytest.raises(ValueError, match=message):
        dataset_class(tmp_path / "d.npz")


@pytest.mark.parametrize(
    ("dataset_class", "shape", "message"),
    [
        (NpzSkeletonDataset, (4, 300), r"shape \(4, 300\)"),
        (NpzSkeletonDataset, (4, 300, 25, 3), r"shape \(4, 300, 25, 3\)"),
        (NpzSkeletonDataset, (4, 300, 10), r"shape \(4, 300, 10\)"),
        (NpzSkeletonDataset, (4, 0, 150), r"shape \(4, 0, 150\)"),
        (NTUSkeletonDataset, (4, 300, 90), r"shape \(4, 300, 90\).*75 or 150"),
        (PKUMMDSkeletonDataset, (4, 300, 153), r"shape \(4, 300, 153\).*75 or 150"),
        (NpzSkeletonDataset, (0, 300, 150), r"x_train .* holds no sequences \(shape \(0, 300, 150\)\)"),
    ],
)
def test_sequences_of_the_wrong_shape_fail_when_the_file_opens(tmp_path, dataset_class, shape, message):
    num_classes = {NTUSkeletonDataset: 60, PKUMMDSkeletonDataset: 51}.get(dataset_class, 3)
    save_split(tmp_path / "d.npz", np.zeros(shape, np.float32), one_hot([0] * shape[0], num_classes))
    with pytest.raises(ValueError, match=message):
        dataset_class(tmp_path / "d.npz")


@pytest.mark.parametrize(
    ("sequences", "labels", "kwargs", "message"),
    [
        (np.zeros((0, 300, 150)), [], {}, r"no sequences"),
        (np.zeros((3, 300, 150)), [0, 1], {}, r"3 sequences but 2 labels"),
        (np.zeros((2, 300, 150)), [0, 1], {"layout": "TVC"}, r"shape \(2, 300, 150\).*'TVC'"),
        ([np.zeros((30, 25, 3)), np.zeros((30, 75))], [0, 1], {"layout": "TVC"}, r"Sequence 1 has shape \(30, 75\)"),
        (np.zeros((2, 300, 150)), [0, 1], {"layout": "NTU"}, r"Unknown layout 'NTU'"),
        (np.zeros((2, 300, 150)), [0, 1], {"id2label": {1: "a", 2: "b"}}, r"keys \[1, 2\]"),
        (np.zeros((2, 300, 150)), [0, 1], {"id2label": {}}, r"keys \[\]"),
        (np.zeros((2, 300, 150)), [0, 2], {"id2label": {0: "a", 1: "b"}}, r"Label 1 of labels is 2 .*2 classes"),
        (np.zeros((2, 300, 150)), np.zeros((2, 3, 4)), {}, r"labels has shape \(2, 3, 4\)"),
    ],
)
def test_array_dataset_refuses_bad_input(sequences, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ArraySkeletonDataset(sequences, labels, **kwargs)


@pytest.mark.parametrize(
    ("num_samples", "ratio", "message"),
    [
        (100, 0.0, r"got 0\.0"),
        (100, -0.1, r"got -0\.1"),
        (100, 1.5, r"got 1\.5"),
        (100, float("nan"), r"got nan"),
        (100, "0.1", r"got '0\.1'"),
        (50, 0.01, r"`ratio` 0\.01 of 50 samples keeps 0"),
        (0, 0.5, r"`num_samples` must be a positive integer, got 0"),
    ],
)
def test_semi_supervised_ratio_out_of_range(ntu60_file, num_samples, ratio, message):
    with pytest.raises(ValueError, match=message):
        semi_supervised_indices(num_samples, ratio)
    if num_samples == 100:  # the subset of a data set says the same
        with pytest.raises(ValueError, match=message):
            semi_supervised_subset(NTUSkeletonDataset(ntu60_file[0]), ratio)
