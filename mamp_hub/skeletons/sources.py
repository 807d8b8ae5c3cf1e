"""Adapters from other 3D skeleton sources to the NTU RGB+D (Kinect v2) 25-joint layout.

`to_ntu(joints, source)` maps `(..., J, 3)` joints of a source layout to `(..., 25, 3)` NTU joints in NTU's
convention: Kinect v2 camera space, in metres, x growing to the sensor's left, y up, z away from the sensor
(right-handed; a person facing the sensor has their left side at -x). Each NTU joint is a fixed linear
combination of the source's joints (`ntu_joint_recipes` lists them), built from the nearest anatomy where the
source has no counterpart; the Human3.6M feet are the one exception (see `FOOT_FORWARD`). docs/skeleton_sources.md
has the joint orders, the conventions and the per-joint tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import real_array
from .ntu import NTU_JOINT_NAMES, NUM_NTU_JOINTS

# Places of the NTU joints that a source lacks, as fractions of body segments, after the Kinect v2 skeleton's
# approximate proportions: its neck joint sits low on the neck, about 0.4 of the way from the spine-shoulder joint
# to the head centre; its hand joint lies mid-palm, about 0.3 forearm lengths past the wrist (the hand is about 0.7
# forearm lengths long).
NECK_FRACTION = 0.4
HAND_PAST_WRIST = 0.3
# Where a source has no hand tip, the tip is placed the wrist-to-hand distance again past the hand joint.
TIP_PAST_HAND = 1.0
# Human3.6M stops at the ankle: its foot joints are placed 0.3 shin lengths (about 12 cm) in front of the ankles,
# in the direction the pelvis and trunk face, since the feet point roughly where the body faces.
FOOT_FORWARD = 0.3

_UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001}
SKELETON_UNITS: tuple[str, ...] = tuple(_UNIT_SCALES)
_SIDES = ("left", "right")

H36M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",  # 'Hip' in VideoPose3D
    "right_hip",
    "right_knee",
    "right_ankle",  # 'RightFoot' in Human3.6M: the ankle
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck_nose",  # 'Neck/Nose': at the lower face
    "head",  # the top of the head
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
MEDIAPIPE_JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",  # the knuckle at the base of the little finger
    "right_pinky",
    "left_index",  # the knuckle at the base of the index finger
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",  # the toes
    "right_foot_index",
)
# fmt: off
AZURE_KINECT_JOINT_NAMES: tuple[str, ...] = tuple(
    name.lower()
    for name in (
        "PELVIS", "SPINE_NAVEL", "SPINE_CHEST", "NECK",
        "CLAVICLE_LEFT", "SHOULDER_LEFT", "ELBOW_LEFT", "WRIST_LEFT", "HAND_LEFT", "HANDTIP_LEFT", "THUMB_LEFT",
        "CLAVICLE_RIGHT", "SHOULDER_RIGHT", "ELBOW_RIGHT", "WRIST_RIGHT", "HAND_RIGHT", "HANDTIP_RIGHT", "THUMB_RIGHT",
        "HIP_LEFT", "KNEE_LEFT", "ANKLE_LEFT", "FOOT_LEFT", "HIP_RIGHT", "KNEE_RIGHT", "ANKLE_RIGHT", "FOOT_RIGHT",
        "HEAD", "NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT",
    )
)
# fmt: on
# The 22 body joints that SMPL, SMPL-H and SMPL-X share, in their order.
_SMPL_BODY_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)  # fmt: skip
# MANO's 15 joints of one hand; 1, 2, 3 are the knuckles from the palm outwards.
_MANO_JOINTS: tuple[str, ...] = tuple(
    f"{finger}{number}" for finger in ("index", "middle", "pinky", "ring", "thumb") for number in (1, 2, 3)
)
_HAND_JOINTS = {side: tuple(f"{side}_{joint}" for joint in _MANO_JOINTS) for side in _SIDES}
SMPL_JOINT_NAMES: tuple[str, ...] = (*_SMPL_BODY_JOINT_NAMES, "left_hand", "right_hand")
SMPLH_JOINT_NAMES: tuple[str, ...] = _SMPL_BODY_JOINT_NAMES + _HAND_JOINTS["left"] + _HAND_JOINTS["right"]
SMPLX_JOINT_NAMES: tuple[str, ...] = (
    _SMPL_BODY_JOINT_NAMES
    + ("jaw", "left_eye_smplhf", "right_eye_smplhf")
    + _HAND_JOINTS["left"]
    + _HAND_JOINTS["right"]
)

_Terms = dict[str, float]  # source joint name -> weight


def _at(name: str) -> _Terms:
    return {name: 1.0}


def _combine(*weighted: tuple[float, _Terms]) -> _Terms:
    """The weighted sum of linear combinations of joints."""
    total: _Terms = {}
    for weight, terms in weighted:
        for name, value in terms.items():
            total[name] = total.get(name, 0.0) + weight * value
    # Rounding keeps tables readable (0.2, not 0.20000000000000004); the weights are exact to far below a micrometre.
    return {name: round(value, 12) for name, value in total.items() if round(value, 12) != 0}


def _mean(*terms: _Terms) -> _Terms:
    return _combine(*((1 / len(terms), t) for t in terms))


def _lerp(start: _Terms, end: _Terms, fraction: float) -> _Terms:
    """start + fraction * (end - start): between the two for fractions in [0, 1], past `end` above 1."""
    return _combine((1 - fraction, start), (fraction, end))


def _h36m_recipes() -> dict[str, _Terms]:
    recipes = {
        "spine_base": _at("pelvis"),
        "spine_mid": _at("spine"),
        "spine_shoulder": _at("thorax"),
        "head": _mean(_at("neck_nose"), _at("head")),  # between the face and the top of the head
    }
    recipes["neck"] = _lerp(recipes["spine_shoulder"], recipes["head"], NECK_FRACTION)
    for side in _SIDES:
        for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            recipes[f"{side}_{part}"] = _at(f"{side}_{part}")
        wrist = _at(f"{side}_wrist")
        recipes[f"{side}_hand"] = _lerp(_at(f"{side}_elbow"), wrist, 1 + HAND_PAST_WRIST)
        recipes[f"{side}_hand_tip"] = _lerp(wrist, recipes[f"{side}_hand"], 1 + TIP_PAST_HAND)
        recipes[f"{side}_thumb"] = recipes[f"{side}_hand"]  # no clue to the hand's orientation
        recipes[f"{side}_foot"] = _at(f"{side}_ankle")  # then moved forward by `_place_feet`
    return recipes


def _mediapipe_recipes() -> dict[str, _Terms]:
    recipes = {
        "spine_base": _mean(_at("left_hip"), _at("right_hip")),
        "spine_shoulder": _mean(_at("left_shoulder"), _at("right_shoulder")),
        "head": _mean(_at("left_ear"), _at("right_ear")),  # the ears flank the head's centre
    }
    recipes["spine_mid"] = _mean(recipes["spine_base"], recipes["spine_shoulder"])
    recipes["neck"] = _lerp(recipes["spine_shoulder"], recipes["head"], NECK_FRACTION)
    for side in _SIDES:
        for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "thumb"):
            recipes[f"{side}_{part}"] = _at(f"{side}_{part}")
        wrist = _at(f"{side}_wrist")
        recipes[f"{side}_hand"] = _mean(wrist, _at(f"{side}_index"), _at(f"{side}_pinky"))  # mid-palm
        recipes[f"{side}_hand_tip"] = _lerp(wrist, recipes[f"{side}_hand"], 1 + TIP_PAST_HAND)
        recipes[f"{side}_foot"] = _at(f"{side}_foot_index")
    return recipes


def _azure_kinect_recipes() -> dict[str, _Terms]:
    recipes = {
        "spine_base": _at("pelvis"),
        # Kinect v2's mid-spine lies between Azure Kinect's navel and chest joints, its spine-shoulder joint at
        # the top of the sternum, where the two clavicles start.
        "spine_mid": _mean(_at("spine_navel"), _at("spine_chest")),
        "spine_shoulder": _mean(_at("clavicle_left"), _at("clavicle_right")),
        "neck": _at("neck"),
        "head": _at("head"),
    }
    parts = {"hand_tip": "handtip"}
    for side in _SIDES:
        for part in ("shoulder", "elbow", "wrist", "hand", "hand_tip", "thumb", "hip", "knee", "ankle", "foot"):
            recipes[f"{side}_{part}"] = _at(f"{parts.get(part, part)}_{side}")
    return recipes


def _smpl_recipes(hands: str) -> dict[str, _Terms]:
    """NTU joints from SMPL-family joints; `hands` is "smpl" (one hand joint) or "mano" (SMPL-H/X fingers)."""
    recipes = {
        "spine_base": _at("pelvis"),
        "spine_mid": _at("spine2"),
        "spine_shoulder": _mean(_at("left_collar"), _at("right_collar")),  # the top of the sternum
        "neck": _at("neck"),
        "head": _at("head"),
    }
    for side in _SIDES:
        for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "foot"):
            recipes[f"{side}_{part}"] = _at(f"{side}_{part}")
        wrist = _at(f"{side}_wrist")
        if hands == "smpl":
            recipes[f"{side}_hand"] = _at(f"{side}_hand")
            recipes[f"{side}_hand_tip"] = _lerp(wrist, recipes[f"{side}_hand"], 1 + TIP_PAST_HAND)
            recipes[f"{side}_thumb"] = recipes[f"{side}_hand"]
        else:
            recipes[f"{side}_hand"] = _mean(wrist, _at(f"{side}_index1"), _at(f"{side}_pinky1"))  # mid-palm
            recipes[f"{side}_hand_tip"] = _at(f"{side}_middle3")  # the last joint before the fingertip
            recipes[f"{side}_thumb"] = _at(f"{side}_thumb3")
    return recipes


@dataclass(frozen=True)
class _Source:
    joint_names: tuple[str, ...]
    joint_counts: tuple[int, ...]  # accepted sizes of the joint axis: the layout, then longer outputs it begins
    units: str
    axes: str
    recipes: dict[str, _Terms]
    place_feet: bool = False

    @property
    def weights(self) -> np.ndarray:
        """(25, len(joint_names)) float64: NTU joints = weights @ source joints."""
        index = {name: i for i, name in enumerate(self.joint_names)}
        weights = np.zeros((NUM_NTU_JOINTS, len(self.joint_names)))
        for k, ntu_name in enumerate(NTU_JOINT_NAMES):
            for name, weight in self.recipes[ntu_name].items():
                weights[k, index[name]] = weight
        return weights


_CAMERA_AXES = "-x -y z"  # x right, y down, z forward (the OpenCV camera): a half turn about z from Kinect v2's
_SOURCES: dict[str, _Source] = {
    "h36m": _Source(H36M_JOINT_NAMES, (17,), "m", _CAMERA_AXES, _h36m_recipes(), place_feet=True),
    "mediapipe": _Source(MEDIAPIPE_JOINT_NAMES, (33,), "m", _CAMERA_AXES, _mediapipe_recipes()),
    "azure_kinect": _Source(AZURE_KINECT_JOINT_NAMES, (32,), "mm", _CAMERA_AXES, _azure_kinect_recipes()),
    # The body models' own frame: y up, the person facing +z with their left at +x; a half turn about y makes
    # them face the sensor, as NTU's performers mostly do. The longer joint counts are the `smplx` package's
    # outputs, which append extra points (face, feet, fingertips) to the model's joints.
    "smpl": _Source(SMPL_JOINT_NAMES, (24, 45), "m", "-x y -z", _smpl_recipes("smpl")),
    "smplh": _Source(SMPLH_JOINT_NAMES, (52, 73), "m", "-x y -z", _smpl_recipes("mano")),
    "smplx": _Source(SMPLX_JOINT_NAMES, (55, 127, 144), "m", "-x y -z", _smpl_recipes("mano")),
}

SKELETON_SOURCES: tuple[str, ...] = tuple(_SOURCES)
SOURCE_JOINT_NAMES: dict[str, tuple[str, ...]] = {name: source.joint_names for name, source in _SOURCES.items()}
# Sizes of the joint axis that `to_ntu` accepts per source: the layout's own, then the longer outputs it begins.
SOURCE_JOINT_COUNTS: dict[str, tuple[int, ...]] = {name: source.joint_counts for name, source in _SOURCES.items()}
_WEIGHTS = {name: source.weights for name, source in _SOURCES.items()}


def _source(source: str) -> _Source:
    if not isinstance(source, str) or source not in _SOURCES:
        raise ValueError(f"Unknown skeleton source {source!r}; pass one of {', '.join(SKELETON_SOURCES)}.")
    return _SOURCES[source]


def ntu_joint_recipes(source: str) -> dict[str, dict[str, float]]:
    """How `to_ntu` builds each NTU joint from a source's joints, before the unit and axis conversion.

    Args:
        source: one of `SKELETON_SOURCES`.

    Returns:
        NTU joint name (in NTU order) -> {source joint name: weight}: the joint is the weighted sum of those
        joints. For `"h36m"` the feet are then moved forward (`FOOT_FORWARD`).
    """
    recipes = _source(source).recipes
    return {name: dict(recipes[name]) for name in NTU_JOINT_NAMES}


def axes_matrix(axes: str) -> np.ndarray:
    """(3, 3) signed permutation M such that NTU coordinates = source coordinates @ M."""
    pattern = r"\s*([+-]?)([xyz])\s*([+-]?)([xyz])\s*([+-]?)([xyz])\s*"
    match = re.fullmatch(pattern, axes) if isinstance(axes, str) else None
    if match is None or len({match[2], match[4], match[6]}) < 3:
        raise ValueError(
            f"axes={axes!r} is not three signed NTU axis names, one per input axis; pass e.g. '-x -y z' for "
            "camera coordinates with x right, y down and z forward."
        )
    matrix = np.zeros((3, 3))
    for row, (sign, axis) in enumerate(zip(match.groups()[::2], match.groups()[1::2], strict=True)):
        matrix[row, "xyz".index(axis)] = -1.0 if sign == "-" else 1.0
    return matrix


def _place_feet(ntu: np.ndarray) -> None:
    """Moves the feet of `(..., 25, 3)` NTU joints, still at the ankles, `FOOT_FORWARD` shins to the front."""
    joint = {name: i for i, name in enumerate(NTU_JOINT_NAMES)}
    left = ntu[..., joint["left_hip"], :] - ntu[..., joint["right_hip"], :]
    up = ntu[..., joint["spine_shoulder"], :] - ntu[..., joint["spine_base"], :]
    forward = np.cross(left, up)  # left x up = forward in a right-handed frame
    length = np.linalg.norm(forward, axis=-1, keepdims=True)
    # A degenerate trunk (e.g. an all-zero padding frame) gives no direction: its feet stay at the ankles.
    forward = np.divide(forward, length, out=np.zeros_like(forward), where=length > 0)
    for side in _SIDES:
        ankle, knee = ntu[..., joint[f"{side}_ankle"], :], ntu[..., joint[f"{side}_knee"], :]
        shin = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
        ntu[..., joint[f"{side}_foot"], :] = ankle + FOOT_FORWARD * shin * forward


def to_ntu(
    joints: np.ndarray | torch.Tensor, source: str, *, units: str | None = None, axes: str | None = None
) -> np.ndarray | torch.Tensor:
    """3D joints of another skeleton source in the NTU RGB+D (Kinect v2) 25-joint layout and convention.

    The result is in metres, in Kinect v2 camera axes (x to the sensor's left, y up, z away from the sensor),
    not re-centred: NTU files put the first frame's spine-middle joint (1) at the origin.

    Args:
        joints: (..., J, 3) joints in the source's order (`SOURCE_JOINT_NAMES[source]`), real numbers, any leading axes
            (frames, persons, samples); a numpy array or a torch tensor.
        source: the layout, one of `SKELETON_SOURCES`: `"h36m"` (Human3.6M 17 joints, as VideoPose3D and
            MotionBERT output), `"mediapipe"` (MediaPipe Pose's 33 world landmarks), `"azure_kinect"` (Azure Kinect
            Body Tracking's 32 joints), `"smpl"` (24 joints, or the `smplx` package's 45), `"smplh"` (52 or 73)
            or `"smplx"` (55, 127 or 144). Joints past the layout's own (the package's extra points) are ignored.
        units: `"m"`, `"cm"` or `"mm"`; default the source's usual unit (millimetres for Azure Kinect, metres
            otherwise).
        axes: the NTU axis that each of the input's x, y and z axes points along, with a sign, e.g. `"-x -y z"`
            for camera coordinates with x right, y down, z forward (the default of the camera-space sources:
            `h36m`, `mediapipe`, `azure_kinect`); `"-x y -z"` for the SMPL family's y-up body frame (their
            default); `"-x z y"` for a z-up world such as AMASS.

    Returns:
        (..., 25, 3) NTU joints, of the input's kind (numpy or torch, on the input's device); floating inputs
        keep their dtype, others become float32. Tensors are converted through numpy: no gradient flows.
    """
    spec = _source(source)
    array = real_array(joints, "joints")
    if array.ndim < 2 or array.shape[-1] != 3 or array.shape[-2] not in spec.joint_counts:
        counts = " or ".join(map(str, spec.joint_counts))
        raise ValueError(
            f"A {source!r} skeleton has {counts} joints, got joints of shape {tuple(array.shape)}; pass an array "
            f"of shape (..., {spec.joint_counts[0]}, 3) in the order of SOURCE_JOINT_NAMES[{source!r}]."
        )
    if not np.isfinite(array).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(
            f"joints has {int((~np.isfinite(array)).sum())} non-finite values (the first at index {first}); fill "
            "the missing joints (e.g. interpolate them over time) or drop those frames before converting."
        )
    units = spec.units if units is None else units
    if units not in SKELETON_UNITS:
        raise ValueError(f"Unknown units {units!r}; pass 'm', 'cm' or 'mm'.")
    transform = _UNIT_SCALES[units] * axes_matrix(spec.axes if axes is None else axes)

    ntu = _WEIGHTS[source] @ array[..., : len(spec.joint_names), :] @ transform  # float64
    if spec.place_feet:
        _place_feet(ntu)
    if isinstance(joints, torch.Tensor):
        dtype = joints.dtype if joints.is_floating_point() else torch.float32
        return torch.from_numpy(ntu).to(device=joints.device, dtype=dtype)
    return ntu.astype(array.dtype if np.issubdtype(array.dtype, np.floating) else np.float32, copy=False)
