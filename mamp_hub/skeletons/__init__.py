"""Skeleton layouts: the NTU RGB+D joints, bones and action names, and adapters from other skeleton sources.

`ntu` holds the NTU RGB+D / PKU-MMD (Kinect v2) joint layout and the benchmarks' action names; `sources` maps the
joints of other sensors and pose estimators (Human3.6M, MediaPipe Pose, Azure Kinect, SMPL / SMPL-H / SMPL-X) to that
layout with `to_ntu`; `layouts` reads the array layouts of sequences (valid frames, present persons, centring) for
the processor, the model and the data sets. The public names of `ntu` and `sources` are importable from here.
"""

from .ntu import (
    ACTION_NAMES,
    NTU60_ACTION_NAMES,
    NTU120_ACTION_NAMES,
    NTU_BONES,
    NTU_JOINT_NAMES,
    NTU_MIRROR_PAIRS,
    NTU_PARENTS,
    NUM_NTU_JOINTS,
    PKU_MMD_ACTION_NAMES,
    get_id2label,
)
from .sources import (
    AZURE_KINECT_JOINT_NAMES,
    FOOT_FORWARD,
    H36M_JOINT_NAMES,
    HAND_PAST_WRIST,
    MEDIAPIPE_JOINT_NAMES,
    NECK_FRACTION,
    SKELETON_SOURCES,
    SKELETON_UNITS,
    SMPL_JOINT_NAMES,
    SMPLH_JOINT_NAMES,
    SMPLX_JOINT_NAMES,
    SOURCE_JOINT_COUNTS,
    SOURCE_JOINT_NAMES,
    TIP_PAST_HAND,
    axes_matrix,
    ntu_joint_recipes,
    to_ntu,
)

__all__ = [
    "ACTION_NAMES",
    "AZURE_KINECT_JOINT_NAMES",
    "FOOT_FORWARD",
    "H36M_JOINT_NAMES",
    "HAND_PAST_WRIST",
    "MEDIAPIPE_JOINT_NAMES",
    "NECK_FRACTION",
    "NTU60_ACTION_NAMES",
    "NTU120_ACTION_NAMES",
    "NTU_BONES",
    "NTU_JOINT_NAMES",
    "NTU_MIRROR_PAIRS",
    "NTU_PARENTS",
    "NUM_NTU_JOINTS",
    "PKU_MMD_ACTION_NAMES",
    "SKELETON_SOURCES",
    "SKELETON_UNITS",
    "SMPLH_JOINT_NAMES",
    "SMPLX_JOINT_NAMES",
    "SMPL_JOINT_NAMES",
    "SOURCE_JOINT_COUNTS",
    "SOURCE_JOINT_NAMES",
    "TIP_PAST_HAND",
    "axes_matrix",
    "get_id2label",
    "ntu_joint_recipes",
    "to_ntu",
]
