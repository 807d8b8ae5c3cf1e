"""MampSkeletonProcessor: parity with the authors' test-time transform, layouts, ragged batches, training crop,
rotation, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REFERENCE
from safetensors.numpy import load_file
from transformers import AutoFeatureExtractor

from mamp_hub import MampSkeletonProcessor
from mamp_hub.skeletons import SKELETON_SOURCES, SOURCE_JOINT_COUNTS, to_ntu
from mamp_hub.skeletons.layouts import centre_on_first_frame, count_valid_frames
from mamp_hub.transforms import rotation_matrices


def random_sequences(batch: int, valid: list[int], frames: int = 300, persons: int = 2, seed: int = 0) -> np.ndarray:
    """(B, M, T, 25, 3) sequences with `valid[b]` non-zero frames each, zeros after."""
    rng = np.random.default_rng(seed)
    sequences = np.zeros((batch, persons, frames, 25, 3), dtype=np.float32)
    for b, length in enumerate(valid):
        sequences[b, :, :length] = rng.normal(size=(persons, length, 25, 3)) * 2
    return sequences


def as_layout(mtvc: np.ndarray, layout: str) -> np.ndarray:
    """(B, M, T, V, C) -> the same batch in another layout."""
    if layout == "MTVC":
        return mtvc
    if layout == "CTVM":
        return np.ascontiguousarray(mtvc.transpose(0, 4, 2, 3, 1))
    if layout == "ntu_flat":
        return np.ascontiguousarray(mtvc.transpose(0, 2, 1, 3, 4)).reshape(*mtvc.shape[:1], mtvc.shape[2], -1)
    raise ValueError(layout)


def test_matches_the_official_test_time_transform():
    reference = load_file(str(REFERENCE))
    sequence = reference["transform.input"]  # (C=3, T=300, V=25, M=2), 137 valid frames
    expected = reference["transform.output_p095_T120"]  # (C, 120, V, M)
    values = MampSkeletonProcessor(num_frames=120)(sequence)["skeleton_values"]  # layout detected: CTVM
    assert values.shape == (1, 2, 120, 25, 3) and values.dtype == torch.float32
    np.testing.assert_allclose(values[0].permute(3, 1, 2, 0).numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_frames", [120, 16, 64])
def test_resize_is_bilinear_interpolation_of_the_crop(num_frames):
    """Any crop window, resized as `F.interpolate(mode="bilinear", align_corners=False)` does, bit for bit."""
    processor = MampSkeletonProcessor(num_frames=num_frames)
    sequences = random_sequences(6, [300, 1, 2, 64, 137, 299])
    flat = as_layout(sequences, "ntu_flat")
    start = np.array([0, 0, 0, 5, 30, 1])
    length = np.array([300, 1, 2, 50, 100, 298])
    resized = processor._resize(list(flat), start, length)  # (B, M, num_frames, V*C)
    resized = resized.transpose(1, 2).reshape(len(flat), num_frames, -1)  # (B, num_frames, M*V*C) as `flat`
    for b in range(len(start)):
        window = torch.from_numpy(flat[b, start[b] : start[b] + length[b]]).T[None, None]  # (1, 1, F, length)
        expected = F.interpolate(window, size=(window.shape[2], num_frames), mode="bilinear", align_corners=False)
        torch.testing.assert_close(resized[b], expected[0, 0].T, rtol=0, atol=0)


def test_layouts_numpy_torch_and_batching_agree():
    processor = MampSkeletonProcessor(num_frames=32)
    sequences = random_sequences(3, [300, 80, 150])
    expected = processor(sequences, layout="MTVC")["skeleton_values"]
    for layout in ("MTVC", "CTVM", "ntu_flat"):
        batch = as_layout(sequences, layout)
        torch.testing.assert_close(processor(batch)["skeleton_values"], expected, rtol=0, atol=0)  # detected
        torch.testing.assert_close(processor(torch.from_numpy(batch), layout=layout)["skeleton_values"], expected)
        one_by_one = torch.cat([processor(sample, layout=layout)["skeleton_values"] for sample in batch])
        torch.testing.assert_close(one_by_one, expected, rtol=0, atol=0)
    assert isinstance(processor(sequences, layout="MTVC", return_tensors="np")["skeleton_values"], np.ndarray)


def test_one_person_layout_pads_the_missing_persons_with_zeros():
    processor = MampSkeletonProcessor(num_frames=20)
    single = random_sequences(2, [90, 40], persons=1)  # (B, 1, T, V, C)
    values = processor(single[:, 0], layout="TVC")["skeleton_values"]
    assert values.shape == (2, 2, 20, 25, 3)
    torch.testing.assert_close(values, processor(single, layout="MTVC")["skeleton_values"], rtol=0, atol=0)
    assert values[:, 1].abs().sum() == 0


def test_variable_lengths_and_padding_give_identical_results():
    processor = MampSkeletonProcessor(num_frames=40)
    padded = random_sequences(3, [300, 64, 131])
    ragged = [padded[0], padded[1, :, :64], padded[2, :, :200]]  # cut anywhere inside the zero tail
    longer = np.concatenate([padded, np.zeros_like(padded)], axis=2)  # 600 frames, more zero padding
    expected = processor(padded, layout="MTVC")["skeleton_values"]
    torch.testing.assert_close(processor(ragged, layout="MTVC")["skeleton_values"], expected, rtol=0, atol=0)
    torch.testing.assert_close(processor(ragged)["skeleton_values"], expected, rtol=0, atol=0)  # a list: per sequence
    torch.testing.assert_close(processor(longer, layout="MTVC")["skeleton_values"], expected, rtol=0, atol=0)


def test_training_crop_windows_follow_the_official_rule():
    processor = MampSkeletonProcessor()
    valid = np.array([300, 200, 100, 64, 40, 1] * 200)
    start, length = processor._crop_windows(valid, training=True, generator=torch.Generator().manual_seed(0))
    ratio = length / valid
    long_enough = valid * 0.5 >= 64
    assert ((ratio[long_enough] >= 0.5 - 1 / 64) & (ratio[long_enough] <= 1)).all()  # p in [0.5, 1], floored
    assert (length >= np.minimum(valid, 64)).all() and (length <= valid).all()  # at least 64 frames
    assert (start >= 0).all() and (start + length <= valid).all()
    assert len(np.unique(length[valid == 300])) > 50 and len(np.unique(start[valid == 300])) > 50  # random
    # Evaluation: frames [bias, valid - bias) with bias = int(0.05 * valid / 2).
    start, length = processor._crop_windows(np.array([137, 300, 20]), training=False, generator=None)
    assert start.tolist() == [3, 7, 0] and length.tolist() == [131, 286, 20]


def test_training_output_is_the_resized_random_crop_and_is_seeded():
    processor = MampSkeletonProcessor(num_frames=24, do_random_rotation=False)
    sequences = random_sequences(4, [300, 180, 70, 65])
    first = processor(sequences, training=True, layout="MTVC", seed=3)["skeleton_values"]
    again = processor(sequences, training=True, layout="MTVC", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again["skeleton_values"], rtol=0, atol=0)
    assert not torch.equal(first, processor(sequences, training=True, layout="MTVC", seed=4)["skeleton_values"])

    valid = np.array([300, 180, 70, 65])
    start, length = processor._crop_windows(valid, training=True, generator=torch.Generator().manual_seed(3))
    flat = torch.from_numpy(as_layout(sequences, "ntu_flat"))
    for b in range(4):
        window = flat[b, start[b] : start[b] + length[b]].T[None, None]
        expected = F.interpolate(window, size=(window.shape[2], 24), mode="bilinear", align_corners=False)
        expected = expected[0, 0].T.reshape(24, 2, 25, 3).permute(1, 0, 2, 3)
        torch.testing.assert_close(first[b], expected, rtol=0, atol=0)


def test_batches_longer_than_a_processing_block():
    """The processor works in blocks of samples: every sample of a 19-sample batch gets its own crop and rotation."""
    lengths = [300, 1, 2, 64, 137, 299, 80, 65, 200, 90, 150, 64, 100, 250, 70, 120, 66, 300, 75]
    sequences = random_sequences(len(lengths), lengths)
    processor = MampSkeletonProcessor(num_frames=24)
    batched = processor(sequences, layout="MTVC")["skeleton_values"]
    one_by_one = torch.cat([processor(sample, layout="MTVC")["skeleton_values"] for sample in sequences])
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=0)

    rotated = processor(sequences, training=True, layout="MTVC", seed=3)["skeleton_values"]
    unrotated = MampSkeletonProcessor(num_frames=24, do_random_rotation=False)(
        sequences, training=True, layout="MTVC", seed=3
    )["skeleton_values"]  # the same crops: they are drawn before the angles
    generator = torch.Generator().manual_seed(3)
    torch.rand(2, len(lengths), generator=generator, dtype=torch.float64)  # the crop draws
    angles = (torch.rand(len(lengths), 3, generator=generator, dtype=torch.float64) * 2 - 1) * processor.rotation_range
    matrices = rotation_matrices(angles).float()
    expected = torch.einsum("bmtvc,bdc->bmtvd", unrotated, matrices)
    torch.testing.assert_close(rotated, expected, rtol=1e-5, atol=1e-5)


def test_random_rotation():
    # R = Rz @ Ry @ Rx with the sign convention of the official augmentation.
    a = 0.3
    cos, sin = np.cos(a), np.sin(a)
    about = {
        0: [[1, 0, 0], [0, cos, sin], [0, -sin, cos]],
        1: [[cos, 0, -sin], [0, 1, 0], [sin, 0, cos]],
        2: [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]],
    }
    for axis, matrix in about.items():
        angles = torch.zeros(1, 3, dtype=torch.float64)
        angles[0, axis] = a
        torch.testing.assert_close(rotation_matrices(angles)[0], torch.tensor(matrix, dtype=torch.float64))
    angles = torch.tensor([[0.1, -0.2, 0.25]], dtype=torch.float64)
    expected = (
        rotation_matrices(angles * torch.tensor([[0, 0, 1.0]]))
        @ rotation_matrices(angles * torch.tensor([[0, 1.0, 0]]))
        @ rotation_matrices(angles * torch.tensor([[1.0, 0, 0]]))
    )
    torch.testing.assert_close(rotation_matrices(angles), expected)

    # In training the whole clip turns rigidly: distances are kept, absent persons stay zero.
    processor = MampSkeletonProcessor(num_frames=16)
    sequences = random_sequences(8, [100] * 8, persons=1)
    plain = MampSkeletonProcessor(num_frames=16, do_random_rotation=False)
    rotated = processor(sequences, training=True, layout="MTVC", seed=0)["skeleton_values"]
    unrotated = plain(sequences, training=True, layout="MTVC", seed=0)["skeleton_values"]
    torch.testing.assert_close(rotated.norm(dim=-1), unrotated.norm(dim=-1), rtol=1e-5, atol=1e-5)
    assert rotated[:, 1].abs().sum() == 0 and (rotated - unrotated).abs().max() > 0.01


def test_all_zero_sequences_give_zeros():
    values = MampSkeletonProcessor(num_frames=16)(np.zeros((2, 300, 150), np.float32), training=True)
    assert values["skeleton_values"].abs().sum() == 0


def test_given_valid_frames_crop_as_counted_ones():
    sequences = random_sequences(5, [300, 77, 1, 0, 150])
    sequences[1, :, 30] = 0  # a zero frame inside: not valid, so counted 76, as in the official feeders
    counts = [count_valid_frames(sequence, "MTVC") for sequence in sequences]
    assert counts == [300, 76, 1, 0, 150]
    for layout in ("CTVM", "ntu_flat"):
        assert [count_valid_frames(sequence, layout) for sequence in as_layout(sequences, layout)] == counts
    processor = MampSkeletonProcessor(num_frames=40)
    for training in (False, True):
        counted = processor(sequences, training=training, layout="MTVC", seed=3)["skeleton_values"]
        given = processor(sequences, training=training, layout="MTVC", seed=3, valid_frames=counts)["skeleton_values"]
        assert torch.equal(given, counted)


@pytest.mark.parametrize(
    ("valid_frames", "message"),
    [([10], "one integer per sequence"), ([10.0, 20.0], "one integer per sequence"), ([10, 301], "within 0")],
)
def test_bad_valid_frames_are_refused(valid_frames, message):
    with pytest.raises(ValueError, match=message):
        MampSkeletonProcessor()(np.ones((2, 300, 150), np.float32), valid_frames=valid_frames)
    with pytest.raises(ValueError, match="Unknown layout"):
        count_valid_frames(np.ones((300, 150), np.float32), "TV")


def test_save_and_load(tmp_path):
    processor = MampSkeletonProcessor(num_frames=64, eval_crop_ratio=0.9, train_crop_ratio_range=(0.6, 1.0))
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["num_frames"] == 64 and saved["feature_extractor_type"] == "MampSkeletonProcessor"
    for loaded in (MampSkeletonProcessor.from_pretrained(tmp_path), AutoFeatureExtractor.from_pretrained(tmp_path)):
        assert isinstance(loaded, MampSkeletonProcessor)
        assert loaded.to_dict() == processor.to_dict()
    sequences = random_sequences(2, [120, 77])
    torch.testing.assert_close(
        loaded(sequences, layout="MTVC")["skeleton_values"], processor(sequences, layout="MTVC")["skeleton_values"]
    )


@pytest.mark.parametrize(
    ("make_input", "kwargs", "message"),
    [
        (lambda: np.zeros((2, 300, 25, 3), np.float32), {}, "ambiguous"),  # 2 persons, or a batch of 2?
        (lambda: np.zeros((300, 24, 3), np.float32), {}, "fits no supported layout"),
        (lambda: np.zeros((300, 225), np.float32), {}, "fits no supported layout"),  # 3 persons > max_persons
        (lambda: np.zeros((300, 150), np.float32), {"layout": "NTU"}, "Unknown layout"),
        (lambda: np.zeros((300, 150), np.float32), {"return_tensors": "tf"}, "return_tensors"),
        (lambda: [], {}, "empty list"),
        (
            lambda: [np.ones((30, 150), np.float32), np.zeros((0, 150), np.float32)],
            {},
            r"Sequences \[1\] have no frames",
        ),
        (lambda: np.zeros((0, 300, 150), np.float32), {}, "batch of 0 sequences"),  # an empty batch
        (lambda: np.full((300, 150), "a"), {}, "dtype <U1"),  # not numbers
        (lambda: [np.ones((30, 150)), "walking"], {}, "Sequence 1 must hold real coordinates .*got a str 'walking'"),
        (lambda: np.ones((300, 150), np.complex64), {}, "complex64"),
        (lambda: np.full((300, 150), np.nan, np.float32), {}, "NaN or infinite"),
        (lambda: np.full((300, 150), np.inf, np.float32), {}, "NaN or infinite"),
        (lambda: np.ones((300, 150), np.float32), {"seed": 1.5}, "seed.*1.5"),
    ],
)
def test_bad_inputs_say_what_to_pass(make_input, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MampSkeletonProcessor()(make_input(), **kwargs)


BAD_OPTIONS = [
    ("num_frames", 0, "positive integer"),
    ("num_frames", 120.5, "positive integer"),
    ("num_joints", True, "positive integer"),
    ("max_persons", "2", "positive integer"),
    ("eval_crop_ratio", 0, r"\(0, 1\]"),
    ("eval_crop_ratio", float("nan"), "finite"),
    ("train_crop_ratio_range", (0.9, 0.5), "low <= high"),
    ("train_crop_ratio_range", (0.5,), "pair"),
    ("train_crop_ratio_range", "0.5,1", "pair"),
    ("min_train_frames", -1, "positive integer"),
    ("do_random_rotation", "yes", "True or False"),
    ("rotation_range", float("nan"), "finite"),
    ("rotation_range", -0.1, r"\[0, pi\]"),
    ("joint_layout", "H36M", r"'ntu' or a skeleton source, one of \['h36m', 'mediapipe'.*got 'H36M'"),
    ("joint_layout", None, "got None"),
    ("joint_units", "inch", r"one of \['m', 'cm', 'mm'\], got 'inch'"),
    ("joint_axes", "x y", "three signed NTU axis names.*got 'x y'"),
    ("joint_axes", 3, "got 3"),
]


@pytest.mark.parametrize(("option", "value", "message"), BAD_OPTIONS)
def test_bad_options_are_refused_however_they_are_set(tmp_path, option, value, message):
    """At construction, by assignment and as a from_pretrained override: the error names the option and value."""
    pattern = rf"`{option}`.*{message}"
    with pytest.raises(ValueError, match=pattern):
        MampSkeletonProcessor(**{option: value})
    processor = MampSkeletonProcessor()
    with pytest.raises(ValueError, match=pattern):
        setattr(processor, option, value)
    processor.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=pattern):
        MampSkeletonProcessor.from_pretrained(tmp_path, **{option: value})


def test_loading_arguments_that_transformers_passes_along_are_ignored_but_a_typo_is_not(tmp_path):
    """transformers 5.25's `pipeline()` passes `_from_pipeline` to the processor's `from_dict`; private loading
    arguments (any underscore name) and the model-loading ones are not options, a misspelt option still is refused."""
    MampSkeletonProcessor(num_frames=16).save_pretrained(tmp_path)
    loading = {"_from_pipeline": "skeleton-action-recognition", "_from_auto": True, "_a_future_flag": 1}
    for loader in (MampSkeletonProcessor, AutoFeatureExtractor):
        loaded = loader.from_pretrained(tmp_path, dtype="auto", device_map=None, **loading)
        assert loaded.to_dict() == MampSkeletonProcessor(num_frames=16).to_dict()
        with pytest.raises(ValueError, match=r"unknown options \['num_frame'\]"):
            loader.from_pretrained(tmp_path, _from_pipeline="x", num_frame=16)


def test_unknown_options_and_rotation_without_3d_joints_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown options \['eval_crop_ration'\] \(did you mean 'eval_crop_ratio'\?\)"
    ):
        MampSkeletonProcessor(eval_crop_ration=0.9)
    MampSkeletonProcessor().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="eval_crop_ration"):
        MampSkeletonProcessor.from_pretrained(tmp_path, eval_crop_ration=0.9)
    with pytest.raises(ValueError, match="do_random_rotation=False"):
        MampSkeletonProcessor(num_channels=2)
    processor = MampSkeletonProcessor(num_channels=2, do_random_rotation=False)
    processor.do_random_rotation = True
    with pytest.raises(ValueError, match="do_random_rotation=False"):
        processor(np.ones((1, 30, 25, 2), np.float32), training=True)


def test_present_persons_lists_the_slots_that_hold_a_skeleton():
    sequences = random_sequences(3, [40, 40, 40])
    sequences[0, 1] = 0  # one-person clip: the second slot is empty
    sequences[2, 0] = 0
    inputs = MampSkeletonProcessor(num_frames=16)(sequences, layout="MTVC")
    assert inputs["present_persons"].tolist() == [0, 2, 3, 5]
    assert inputs["present_persons"].dtype == torch.long
    values = inputs["skeleton_values"].flatten(0, 1)
    absent = [row for row in range(6) if row not in inputs["present_persons"]]
    assert values[absent].abs().sum() == 0 and (values[inputs["present_persons"]].flatten(1).abs().sum(1) > 0).all()
    numpy_inputs = MampSkeletonProcessor(num_frames=16)(sequences, layout="MTVC", return_tensors="np")
    assert numpy_inputs["present_persons"].tolist() == [0, 2, 3, 5]


# ---------------------------------------------------------------------------------------------- joint layouts


def h36m_sequences(batch: int, valid: list[int], frames: int = 90, persons: int = 1, seed: int = 0) -> np.ndarray:
    """(B, M, T, 17, 3) Human3.6M joints with `valid[b]` non-zero frames each, zeros after; camera space, metres."""
    rng = np.random.default_rng(seed)
    sequences = np.zeros((batch, persons, frames, 17, 3), dtype=np.float32)
    for b, length in enumerate(valid):
        sequences[b, :, :length] = rng.normal(size=(persons, length, 17, 3)) * 0.3 + [0.0, 0.0, 3.0]
    return sequences


def ntu_centred(sequences: np.ndarray, **to_ntu_options) -> np.ndarray:
    """The documented recipe, one sequence at a time: `to_ntu`, then the first person's first frame's joint 1 at
    the origin, padding frames and absent persons kept at zero. (B, M, T, J, 3) -> (B, M, T, 25, 3)."""
    centred = []
    for sequence in sequences:
        ntu = to_ntu(sequence, "h36m", **to_ntu_options)
        present = np.abs(sequence).sum(axis=(2, 3)) > 0  # (M, T)
        ntu = np.where(present[..., None, None], ntu - ntu[0, np.argmax(present[0]), 1], 0).astype(np.float32)
        centred.append(ntu)
    return np.stack(centred)


def test_other_joint_layouts_are_converted_to_ntu_and_centred_then_cropped():
    sequences = h36m_sequences(3, [90, 40, 61], persons=2)
    sequences[1, 1] = 0  # a one-person clip
    sequences[2, 1, :20] = 0  # a second person who comes in late
    processor = MampSkeletonProcessor(num_frames=24, joint_layout="h36m")
    inputs = processor(sequences, layout="MTVC")
    expected = MampSkeletonProcessor(num_frames=24)(ntu_centred(sequences), layout="MTVC")
    torch.testing.assert_close(inputs["skeleton_values"], expected["skeleton_values"], rtol=0, atol=0)
    assert inputs["present_persons"].tolist() == expected["present_persons"].tolist() == [0, 1, 2, 4, 5]

    # Every input form of the same clips gives the same values: torch, a list of ragged clips, one by one, TVC.
    ragged = [sequences[0], sequences[1, :, :40], sequences[2, :, :70]]
    torch.testing.assert_close(processor(ragged)["skeleton_values"], expected["skeleton_values"], rtol=0, atol=0)
    torch.testing.assert_close(
        processor(torch.from_numpy(sequences), layout="MTVC")["skeleton_values"], expected["skeleton_values"]
    )
    one_by_one = torch.cat([processor(sequence, layout="MTVC")["skeleton_values"] for sequence in sequences])
    torch.testing.assert_close(one_by_one, expected["skeleton_values"], rtol=0, atol=0)
    single = processor(sequences[:, 0], layout="TVC")["skeleton_values"]
    torch.testing.assert_close(single[:, 0], expected["skeleton_values"][:, 0], rtol=0, atol=0)
    assert single[:, 1].abs().sum() == 0


@pytest.mark.parametrize("max_persons", [1, 2])
@pytest.mark.parametrize("joint_layout", ["ntu", *SKELETON_SOURCES])
def test_padding_and_absent_persons_are_nothing_in_every_joint_layout(joint_layout, max_persons):
    """Zero frames after a clip (padding) and all-zero persons mean "nothing there" in every joint layout and slot
    count: a padded clip gives what the trimmed clip gives, as does a clip with an empty person slot."""
    joints = 25 if joint_layout == "ntu" else SOURCE_JOINT_COUNTS[joint_layout][0]
    rng = np.random.default_rng(1)
    clip = (rng.normal(size=(40, joints, 3)) * 0.3 + [0.0, 1.0, 3.0]).astype(np.float32)
    padded = np.concatenate([clip, np.zeros((60, joints, 3), np.float32)])
    processor = MampSkeletonProcessor(num_frames=24, max_persons=max_persons, joint_layout=joint_layout)
    trimmed = processor(clip)["skeleton_values"]
    assert trimmed.abs().sum() > 0
    torch.testing.assert_close(processor(padded)["skeleton_values"], trimmed, rtol=0, atol=0)
    torch.testing.assert_close(processor([padded, clip])["skeleton_values"], trimmed.expand(2, -1, -1, -1, -1))
    if max_persons == 2:  # an empty slot, first or second, leaves the present person's values as they were
        empty = np.zeros_like(padded)
        second_absent = processor(np.stack([padded, empty]), layout="MTVC")["skeleton_values"]
        first_absent = processor(np.stack([empty, padded]), layout="MTVC")["skeleton_values"]
        torch.testing.assert_close(second_absent, trimmed, rtol=0, atol=0)
        torch.testing.assert_close(first_absent[:, 1], trimmed[:, 0], rtol=0, atol=0)
        assert not first_absent[:, 0].any()


def test_joint_units_and_axes_reach_to_ntu():
    sequences = h36m_sequences(2, [50, 30]) * 1000  # millimetres
    sequences = sequences[..., [0, 2, 1]]  # y and z swapped: "-x z -y" brings them to NTU's axes
    options = {"units": "mm", "axes": "-x z -y"}
    processor = MampSkeletonProcessor(num_frames=16, joint_layout="h36m", joint_units="mm", joint_axes="-x z -y")
    expected = MampSkeletonProcessor(num_frames=16)(ntu_centred(sequences, **options), layout="MTVC")
    values = processor(sequences[:, 0], layout="TVC")["skeleton_values"]
    torch.testing.assert_close(values, expected["skeleton_values"], rtol=0, atol=0)


def test_centring_is_the_standard_preparations_rule():
    """`centre_on_first_frame` (used by the processor and by `mamp-prepare-ntu`): actor 1's spine-middle joint in its
    first non-zero frame goes to the origin, a second actor's absent frames stay zero; a batch as one by one."""
    rng = np.random.default_rng(0)
    one_actor = rng.normal(size=(4, 50, 75)).astype(np.float32)
    two_actors = rng.normal(size=(4, 50, 150)).astype(np.float32)
    two_actors[0, :10, :75] = 0  # actor 1 comes in late: the origin is its first frame
    two_actors[1, 30:, 75:] = 0  # actor 2 leaves: those frames stay zero
    two_actors[2, :5] = 0
    one_actor[1, 20:25] = 0  # a lone actor's empty frames (padding) stay zero too
    for batch in (one_actor, two_actors):
        expected = np.stack([centre_on_first_frame(sequence.copy()) for sequence in batch])
        np.testing.assert_array_equal(centre_on_first_frame(batch.copy()), expected)
        np.testing.assert_array_equal(expected[1:, 0, 3:6], 0)  # spine middle (joint 2) of the first frame
    centred = centre_on_first_frame(two_actors.copy())
    np.testing.assert_array_equal(centred[0, 10, 3:6], 0)
    np.testing.assert_allclose(centred[0, 20, :75], two_actors[0, 20, :75] - np.tile(two_actors[0, 10, 3:6], 25))
    assert not centred[1, 30:, 75:].any()
    assert not centre_on_first_frame(one_actor.copy())[1, 20:25].any()
    assert not centre_on_first_frame(np.zeros((2, 10, 150), np.float32)).any()  # nothing to centre on


def test_joint_layout_is_saved_and_checked_with_the_other_options(tmp_path):
    processor = MampSkeletonProcessor(num_frames=32, joint_layout="azure_kinect", joint_units="m")
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert (saved["joint_layout"], saved["joint_units"], saved["joint_axes"]) == ("azure_kinect", "m", None)
    assert AutoFeatureExtractor.from_pretrained(tmp_path).to_dict() == processor.to_dict()
    assert json.loads(MampSkeletonProcessor().to_json_string())["joint_layout"] == "ntu"

    with pytest.raises(ValueError, match=r"\['joint_units'\] apply to another joint_layout than 'ntu'.*units=None"):
        MampSkeletonProcessor(joint_units="mm")
    with pytest.raises(ValueError, match=r"\['joint_units'\] apply to another joint_layout"):
        processor.joint_layout = "ntu"  # its units would be left without a meaning
    processor.joint_units = None
    processor.joint_layout = "ntu"
    with pytest.raises(ValueError, match="num_joints=17 and num_channels=3; pass num_joints=25"):
        MampSkeletonProcessor(joint_layout="h36m", num_joints=17)
    with pytest.raises(ValueError, match="pass num_joints=25"):
        MampSkeletonProcessor(joint_layout="h36m").num_joints = 17


@pytest.mark.parametrize(
    ("make_input", "kwargs", "message"),
    [
        (lambda: np.zeros((300, 25, 3), np.float32), {}, r"fits no supported layout with joint_layout='h36m' \(17 "),
        (lambda: np.zeros((300, 51), np.float32), {}, r"\(M, T, V, C\) 'MTVC' or \(T, V, C\) 'TVC'"),
        (lambda: np.zeros((300, 17, 3), np.float32), {"layout": "ntu_flat"}, r"Unknown layout.*\['MTVC', 'TVC'\]"),
        (lambda: np.zeros((2, 300, 17, 3), np.float32), {}, "ambiguous"),
        (lambda: np.full((30, 17, 3), np.nan, np.float32), {}, "non-finite values"),
    ],
)
def test_bad_inputs_of_another_joint_layout_say_what_to_pass(make_input, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MampSkeletonProcessor(joint_layout="h36m")(make_input(), **kwargs)


def test_non_finite_coordinates_are_refused_naming_their_person_slots():
    sequences = np.ones((3, 40, 2, 25, 3), np.float32)  # (B, T, M, V, C): three two-person clips
    sequences[1, 7, 1, 3, 0] = np.nan  # clip 1, person 1: slot 1 * 2 + 1
    sequences[2, 20, 0, 0, 2] = np.inf  # clip 2, person 0: slot 4
    with pytest.raises(ValueError, match=r"NaN or infinite coordinates \(in person slots \[3, 4\]"):
        MampSkeletonProcessor(num_frames=16)(sequences.reshape(3, 40, 150))
