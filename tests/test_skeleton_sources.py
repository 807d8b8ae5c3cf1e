"""`mamp_hub.skeletons.to_ntu`: other skeleton sources in the NTU RGB+D layout.

The joint orders and conventions are restated here from the sources' documentation (by index, not through the
module's name tables), so that a mistake in the module does not carry into its test.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_example

from mamp_hub.data.synthetic import generate_synthetic_actions
from mamp_hub.skeletons import (
    NTU_JOINT_NAMES,
    SKELETON_SOURCES,
    SOURCE_JOINT_NAMES,
    get_id2label,
    ntu_joint_recipes,
    to_ntu,
)

ROOT = Path(__file__).resolve().parents[1]
NUM_JOINTS = {"h36m": 17, "mediapipe": 33, "azure_kinect": 32, "smpl": 24, "smplh": 52, "smplx": 55}

# NTU joint -> source joint index, for the NTU joints that a source has as one of its own joints.
_SMPL_BODY = {0: 0, 1: 6, 2: 12, 3: 15, 4: 16, 5: 18, 6: 20, 8: 17, 9: 19, 10: 21,
              12: 1, 13: 4, 14: 7, 15: 10, 16: 2, 17: 5, 18: 8, 19: 11}  # fmt: skip
DIRECT = {
    "h36m": {0: 0, 1: 7, 4: 11, 5: 12, 6: 13, 8: 14, 9: 15, 10: 16, 12: 4, 13: 5, 14: 6, 16: 1, 17: 2, 18: 3, 20: 8},
    "mediapipe": {4: 11, 5: 13, 6: 15, 8: 12, 9: 14, 10: 16, 12: 23, 13: 25, 14: 27, 15: 31, 16: 24, 17: 26, 18: 28,
                  19: 32, 22: 21, 24: 22},
    "azure_kinect": {0: 0, 2: 3, 3: 26, 4: 5, 5: 6, 6: 7, 7: 8, 8: 12, 9: 13, 10: 14, 11: 15, 12: 18, 13: 19, 14: 20,
                     15: 21, 16: 22, 17: 23, 18: 24, 19: 25, 21: 9, 22: 10, 23: 16, 24: 17},
    "smpl": {**_SMPL_BODY, 7: 22, 11: 23},
    # MANO hands: index1..3, middle1..3, pinky1..3, ring1..3, thumb1..3 from joint 22 (SMPL-H) or 25 (SMPL-X) on.
    "smplh": {**_SMPL_BODY, 21: 22 + 5, 22: 22 + 14, 23: 37 + 5, 24: 37 + 14},
    "smplx": {**_SMPL_BODY, 21: 25 + 5, 22: 25 + 14, 23: 40 + 5, 24: 40 + 14},
}  # fmt: skip


def native(ntu: np.ndarray, source: str) -> np.ndarray:
    """NTU-convention coordinates (metres; x left, y up, z away from the sensor) in a source's own convention."""
    if source == "azure_kinect":  # millimetres, x right, y down, z forward
        return ntu * np.array([-1000.0, -1000.0, 1000.0])
    if source in ("h36m", "mediapipe"):  # metres, x right, y down, z forward
        return ntu * np.array([-1.0, -1.0, 1.0])
    return ntu * np.array([-1.0, 1.0, -1.0])  # SMPL's frame: y up, a person facing the sensor faces +z


def source_from_ntu(ntu: np.ndarray, source: str) -> np.ndarray:
    """(..., J, 3) source skeletons whose directly mapped joints are the NTU joints, the others zero."""
    joints = np.zeros((*ntu.shape[:-2], NUM_JOINTS[source], 3))
    for ntu_joint, source_joint in DIRECT[source].items():
        joints[..., source_joint, :] = native(ntu[..., ntu_joint, :], source)
    return joints


@pytest.fixture(scope="module")
def ntu_skeletons() -> np.ndarray:
    """(frames, 25, 3) float64 synthetic NTU skeletons: the valid frames of a few generated clips."""
    data = generate_synthetic_actions(6, seed=3)
    sequences = data.sequences.reshape(len(data.sequences), -1, 2, 25, 3)
    return np.concatenate([seq[:length, 0] for seq, length in zip(sequences, data.lengths, strict=True)]).astype(
        np.float64
    )


def test_sources_list_their_joints():
    assert tuple(NUM_JOINTS) == SKELETON_SOURCES
    assert {source: len(names) for source, names in SOURCE_JOINT_NAMES.items()} == NUM_JOINTS
    assert SOURCE_JOINT_NAMES["smplx"][:22] == SOURCE_JOINT_NAMES["smplh"][:22] == SOURCE_JOINT_NAMES["smpl"][:22]
    for source in SKELETON_SOURCES:
        recipes = ntu_joint_recipes(source)
        assert tuple(recipes) == NTU_JOINT_NAMES
        for recipe in recipes.values():  # affine combinations: a translation of the input translates the output
            assert set(recipe) <= set(SOURCE_JOINT_NAMES[source]) and sum(recipe.values()) == pytest.approx(1)


@pytest.mark.parametrize("source", SKELETON_SOURCES)
def test_round_trip_keeps_the_shared_joints_and_limb_proportions(ntu_skeletons, source):
    converted = to_ntu(source_from_ntu(ntu_skeletons, source), source)
    shared = sorted(DIRECT[source])
    np.testing.assert_allclose(converted[:, shared], ntu_skeletons[:, shared], atol=1e-9)

    limbs = {"upper arm": (4, 5), "forearm": (5, 6), "thigh": (12, 13), "shin": (13, 14)}
    limbs.update({f"right {name}": (a + 4, b + 4) for name, (a, b) in limbs.items()})

    def length_ratios(skeletons: np.ndarray) -> np.ndarray:
        lengths = np.stack([np.linalg.norm(skeletons[:, a] - skeletons[:, b], axis=-1) for a, b in limbs.values()])
        return lengths / lengths[0]  # relative to the left upper arm

    np.testing.assert_allclose(length_ratios(converted), length_ratios(ntu_skeletons), rtol=1e-9)


# NTU joint -> the expected coordinate when each source joint's coordinates are its index, from the tables of
# docs/skeleton_sources.md. `lerp(a, b, t)` = a + t (b - a): between two joints, or past b for t > 1.
def lerp(a: float, b: float, t: float) -> float:
    return a + t * (b - a)


def mean(*indices: float) -> float:
    return sum(indices) / len(indices)


_H36M_HEAD = mean(9, 10)
_MEDIAPIPE_SPINE = {0: mean(23, 24), 20: mean(11, 12), 3: mean(7, 8)}
_SMPL_SPINE = {0: 0, 1: 6, 20: mean(13, 14), 2: 12, 3: 15}
_SMPL_LIMBS = {4: 16, 5: 18, 6: 20, 8: 17, 9: 19, 10: 21, 12: 1, 13: 4, 14: 7, 15: 10, 16: 2, 17: 5, 18: 8, 19: 11}
KNOWN_ANSWERS = {
    "h36m": {
        0: 0, 1: 7, 20: 8, 3: _H36M_HEAD, 2: lerp(8, _H36M_HEAD, 0.4),
        4: 11, 5: 12, 6: 13, 7: lerp(12, 13, 1.3), 21: lerp(13, lerp(12, 13, 1.3), 2), 22: lerp(12, 13, 1.3),
        8: 14, 9: 15, 10: 16, 11: lerp(15, 16, 1.3), 23: lerp(16, lerp(15, 16, 1.3), 2), 24: lerp(15, 16, 1.3),
        12: 4, 13: 5, 14: 6, 15: 6, 16: 1, 17: 2, 18: 3, 19: 3,  # feet at the ankles for a collinear input
    },
    "mediapipe": {
        **_MEDIAPIPE_SPINE, 1: mean(_MEDIAPIPE_SPINE[0], _MEDIAPIPE_SPINE[20]),
        2: lerp(_MEDIAPIPE_SPINE[20], _MEDIAPIPE_SPINE[3], 0.4),
        4: 11, 5: 13, 6: 15, 7: mean(15, 17, 19), 21: lerp(15, mean(15, 17, 19), 2), 22: 21,
        8: 12, 9: 14, 10: 16, 11: mean(16, 18, 20), 23: lerp(16, mean(16, 18, 20), 2), 24: 22,
        12: 23, 13: 25, 14: 27, 15: 31, 16: 24, 17: 26, 18: 28, 19: 32,
    },
    "azure_kinect": {
        0: 0, 1: mean(1, 2), 20: mean(4, 11), 2: 3, 3: 26,
        4: 5, 5: 6, 6: 7, 7: 8, 21: 9, 22: 10, 8: 12, 9: 13, 10: 14, 11: 15, 23: 16, 24: 17,
        12: 18, 13: 19, 14: 20, 15: 21, 16: 22, 17: 23, 18: 24, 19: 25,
    },
    "smpl": {**_SMPL_SPINE, **_SMPL_LIMBS, 7: 22, 21: lerp(20, 22, 2), 22: 22, 11: 23, 23: lerp(21, 23, 2), 24: 23},
    "smplh": {**_SMPL_SPINE, **_SMPL_LIMBS, 7: mean(20, 22, 28), 21: 27, 22: 36, 11: mean(21, 37, 43), 23: 42, 24: 51},
    "smplx": {**_SMPL_SPINE, **_SMPL_LIMBS, 7: mean(20, 25, 31), 21: 30, 22: 39, 11: mean(21, 40, 46), 23: 45, 24: 54},
}  # fmt: skip


@pytest.mark.parametrize("source", SKELETON_SOURCES)
def test_known_answers_of_the_joint_tables(source):
    # Joint i at (i, 2i, -i): collinear points, so the only rule that is not linear (the Human3.6M feet) rests.
    index = np.arange(NUM_JOINTS[source], dtype=np.float64)
    joints = np.stack([index, 2 * index, -index], axis=-1)
    converted = to_ntu(joints, source, units="m", axes="x y z")
    expected = np.array([KNOWN_ANSWERS[source][k] for k in range(25)])
    np.testing.assert_allclose(converted, expected[:, None] * np.array([1, 2, -1]), atol=1e-9)


def test_h36m_feet_point_where_the_body_faces():
    # A person standing 3 m in front of the camera and facing it, in camera coordinates (x right, y down).
    joints = np.zeros((17, 3))
    joints[:, 2] = 3.0
    for index, (x, y) in {0: (0, 0), 1: (-0.1, 0), 4: (0.1, 0), 2: (-0.1, 0.45), 5: (0.1, 0.45),
                          3: (-0.1, 0.85), 6: (0.1, 0.85), 7: (0, -0.25), 8: (0, -0.5)}.items():  # fmt: skip
        joints[index, :2] = x, y
    ntu = to_ntu(joints, "h36m")
    for foot, ankle in ((15, 14), (19, 18)):  # 0.3 shins of 0.4 m toward the camera: -z in NTU's axes
        np.testing.assert_allclose(ntu[foot] - ntu[ankle], [0, 0, -0.3 * 0.4], atol=1e-12)

    # Turned about the vertical by 90 degrees (around the pelvis), the feet turn with the body.
    quarter_turn = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # about the camera's y axis
    turned = to_ntu((joints - joints[0]) @ quarter_turn.T, "h36m")
    camera_to_ntu = np.diag([-1.0, -1.0, 1.0])
    expected = camera_to_ntu @ quarter_turn @ camera_to_ntu @ [0, 0, -0.12]
    np.testing.assert_allclose(turned[15] - turned[14], expected, atol=1e-12)
    assert abs(expected[0]) == pytest.approx(0.12)  # now sideways


def test_units_and_axes(ntu_skeletons):
    frames = ntu_skeletons[:5]
    azure = source_from_ntu(frames, "azure_kinect")  # millimetres, camera axes
    np.testing.assert_allclose(to_ntu(azure, "azure_kinect"), to_ntu(azure / 1000, "azure_kinect", units="m"))
    np.testing.assert_allclose(to_ntu(azure / 10, "azure_kinect", units="cm"), to_ntu(azure, "azure_kinect"))
    shared = sorted(DIRECT["azure_kinect"])
    np.testing.assert_allclose(to_ntu(azure, "azure_kinect")[:, shared], frames[:, shared], atol=1e-9)

    # AMASS-style z-up SMPL joints: the person faces -y with the left at +x; the documented axes bring y up.
    smpl = source_from_ntu(frames, "smpl")  # y up, facing +z
    z_up = np.stack([smpl[..., 0], -smpl[..., 2], smpl[..., 1]], axis=-1)
    np.testing.assert_allclose(to_ntu(z_up, "smpl", axes="-x z y"), to_ntu(smpl, "smpl"), atol=1e-12)
    np.testing.assert_allclose(to_ntu(smpl, "smpl", axes="+x y z"), to_ntu(smpl * [-1, 1, -1], "smpl"))


def test_array_kinds_dtypes_and_leading_axes(ntu_skeletons):
    joints = source_from_ntu(ntu_skeletons[:12], "mediapipe").reshape(2, 3, 2, 33, 3)  # samples, persons, frames
    expected = to_ntu(joints, "mediapipe")
    assert expected.shape == (2, 3, 2, 25, 3) and expected.dtype == np.float64
    np.testing.assert_allclose(to_ntu(joints[1, 2, 0], "mediapipe"), expected[1, 2, 0])

    single = to_ntu(joints.astype(np.float32), "mediapipe")
    assert single.dtype == np.float32 and np.allclose(single, expected, atol=1e-6)
    assert to_ntu(np.ones((33, 3), dtype=np.int64), "mediapipe").dtype == np.float32

    tensor = to_ntu(torch.from_numpy(joints).float(), "mediapipe")
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tensor.device.type == "cpu"
    np.testing.assert_allclose(tensor.numpy(), expected, atol=1e-5)
    assert to_ntu(torch.from_numpy(joints), "mediapipe").dtype == torch.float64


@pytest.mark.parametrize("source", SKELETON_SOURCES)
def test_zero_padding_frames_stay_zero_and_translation_carries_over(ntu_skeletons, source):
    joints = source_from_ntu(ntu_skeletons[:4], source)
    joints[0] = 0  # a padding frame, as the NTU files pad clips with zero frames
    converted = to_ntu(joints, source)
    assert not converted[0].any() and converted[1:].any()

    offset = np.array([0.3, -1.2, 2.5]) * (1000 if source == "azure_kinect" else 1)  # in the source's units
    offset_in_ntu = to_ntu(np.tile(offset, (NUM_JOINTS[source], 1)), source)[0]
    np.testing.assert_allclose(to_ntu(joints[1:] + offset, source), converted[1:] + offset_in_ntu, atol=1e-9)


@pytest.mark.parametrize(("source", "extra"), [("smpl", 45), ("smplh", 73), ("smplx", 127), ("smplx", 144)])
def test_smplx_package_outputs_with_extra_points_are_accepted(ntu_skeletons, source, extra):
    joints = source_from_ntu(ntu_skeletons[:3], source)
    padded = np.concatenate([joints, np.full((3, extra - len(joints[0]), 3), 7.0)], axis=1)
    np.testing.assert_array_equal(to_ntu(padded, source), to_ntu(joints, source))


def test_errors_say_what_was_wrong_and_what_to_pass():
    with pytest.raises(ValueError, match=r"Unknown skeleton source 'openpose'; pass one of h36m, mediapipe, .*smplx"):
        to_ntu(np.zeros((17, 3)), "openpose")
    expected = r"'h36m' skeleton has 17 joints, got joints of shape \(4, 25, 3\); pass .* \(\.\.\., 17, 3\)"
    with pytest.raises(ValueError, match=expected):
        to_ntu(np.zeros((4, 25, 3)), "h36m")
    with pytest.raises(ValueError, match=r"'smplx' skeleton has 55 or 127 or 144 joints, got .*\(55, 2\)"):
        to_ntu(np.zeros((55, 2)), "smplx")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        to_ntu(np.zeros(3), "smpl")
    joints = np.zeros((2, 33, 3))
    joints[1, 4, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite values \(the first at index \(1, 4, 2\)\); fill"):
        to_ntu(joints, "mediapipe")
    with pytest.raises(ValueError, match=r"Unknown units 'inch'; pass 'm', 'cm' or 'mm'"):
        to_ntu(np.zeros((32, 3)), "azure_kinect", units="inch")
    for axes in ("x x z", "up", "-x -y"):
        with pytest.raises(ValueError, match=rf"axes={re.escape(repr(axes))} is not three signed NTU axis names"):
            to_ntu(np.zeros((24, 3)), "smpl", axes=axes)


def render_recipe(recipe: dict[str, float], names: tuple[str, ...]) -> str:
    """'0.6 thorax + 0.2 neck_nose + 0.2 head': the largest weights first, then in the source's order."""
    text = ""
    for name, weight in sorted(recipe.items(), key=lambda term: (-term[1], names.index(term[0]))):
        sign = "-" if weight < 0 else "+"
        text += f" {sign} " + (name if abs(weight) == 1 else f"{abs(weight):.3g} {name}")
    return text.removeprefix(" + ")


def test_docs_tables_state_the_recipes():
    docs = (ROOT / "docs" / "skeleton_sources.md").read_text()
    for source in SKELETON_SOURCES:
        section = re.search(rf"^## `{source}`.*?(?=^## |\Z)", docs, re.MULTILINE | re.DOTALL)
        assert section is not None, f"docs/skeleton_sources.md has no section for {source!r}"
        names = SOURCE_JOINT_NAMES[source]
        listed = 22 if source in ("smplh", "smplx") else 0  # their 22 body joints are listed under `smpl`
        for index, source_name in enumerate(names[listed:], start=listed):  # the joint order
            assert f"{index} `{source_name}`" in section.group(0), (source, source_name)
        for k, (ntu_name, recipe) in enumerate(ntu_joint_recipes(source).items()):
            row = f"| {k} | {ntu_name} | {render_recipe(recipe, names)} |"
            assert row in section.group(0), f"{source}: the docs lack the row {row!r}"


def test_example_classifies_a_synthetic_h36m_sequence(capsys):
    top = load_example("from_pose_estimator").main([])
    output = capsys.readouterr().out
    assert "MEANINGLESS" in output and "SYNTHETIC" in output
    assert len(top) == 5 and {name for name, _ in top} <= set(get_id2label("ntu60").values())
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)


def test_example_reads_a_mediapipe_npy(ntu_skeletons, tmp_path, capsys):
    path = tmp_path / "landmarks.npy"
    np.save(path, source_from_ntu(ntu_skeletons[:40], "mediapipe").astype(np.float32))
    top = load_example("from_pose_estimator").main(["--input", str(path), "--source", "mediapipe", "--top-k", "3"])
    assert len(top) == 3
    assert "converted mediapipe joints (40, 33, 3) to NTU joints (40, 25, 3)" in capsys.readouterr().out
