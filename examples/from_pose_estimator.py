"""Classify a skeleton sequence from a 3D pose estimator or another sensor: convert it to the NTU layout, then run MAMP.

    python examples/from_pose_estimator.py
    python examples/from_pose_estimator.py --input lifted.npy --source h36m --checkpoint <org>/<repo>
    python examples/from_pose_estimator.py --input world_landmarks.npy --source mediapipe --checkpoint <folder>

`--input` is a `.npy` of one person's joints per frame, (frames, J, 3), or of up to two persons,
(persons, frames, J, 3), in the joint order of `--source` (see docs/skeleton_sources.md): e.g. (frames, 17, 3)
Human3.6M joints from VideoPose3D or MotionBERT, or (frames, 33, 3) MediaPipe Pose world landmarks. Without it,
a SYNTHETIC Human3.6M sequence is made offline from `mamp_hub.data.synthetic` (not the output of any estimator).
`mamp_hub.skeletons.to_ntu` converts the joints to the NTU RGB+D 25 joints, in metres and Kinect v2 axes; the
sequence is then centred as NTU's files are and classified, and the five most likely actions are printed.

Without `--checkpoint` a tiny randomly initialised classifier runs: it carries the NTU-60 action names, but its
predictions are chance, so the names it prints are meaningless. A model trained on Kinect v2 skeletons also meets a
domain shift on other sources, which the conversion reduces but does not remove (docs/skeleton_sources.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mamp_hub import MampConfig, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data.synthetic import generate_synthetic_actions
from mamp_hub.skeletons import NTU_JOINT_NAMES, SKELETON_SOURCES, get_id2label, to_ntu


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, help=".npy of (frames, J, 3) or (persons, frames, J, 3) joints")
    parser.add_argument("--source", default="h36m", choices=SKELETON_SOURCES, help="joint layout of --input")
    parser.add_argument("--units", choices=["m", "cm", "mm"], help="units of --input (default: the source's usual)")
    parser.add_argument("--axes", help="NTU axis of each input axis, e.g. '-x -y z' (default: the source's usual)")
    parser.add_argument("--checkpoint", help="Hub id or folder of a MAMP classifier (default: tiny random model)")
    parser.add_argument("--top-k", type=int, default=5)
    return parser.parse_args(argv)


def synthetic_h36m_sequence(seed: int = 0) -> np.ndarray:
    """(frames, 17, 3) SYNTHETIC Human3.6M joints in camera coordinates (metres; x right, y down, z forward).

    A synthetic NTU-layout action, with each Human3.6M joint taken from its nearest NTU joints: a stand-in for the
    output of a monocular 3D lifter, to run the example offline.
    """
    data = generate_synthetic_actions(1, seed=seed)
    ntu = data.sequences[0, : data.lengths[0]].reshape(-1, 2, 25, 3)[:, 0]  # (frames, 25, 3), the first person
    joint = {name: ntu[:, i] for i, name in enumerate(NTU_JOINT_NAMES)}
    h36m = np.stack(
        [
            joint["spine_base"], joint["right_hip"], joint["right_knee"], joint["right_ankle"],
            joint["left_hip"], joint["left_knee"], joint["left_ankle"], joint["spine_mid"], joint["spine_shoulder"],
            (joint["neck"] + joint["head"]) / 2,  # Human3.6M's 'Neck/Nose', at the lower face
            joint["head"] + (joint["head"] - joint["neck"]) / 2,  # the top of the head
            joint["left_shoulder"], joint["left_elbow"], joint["left_wrist"],
            joint["right_shoulder"], joint["right_elbow"], joint["right_wrist"],
        ],
        axis=1,
    )  # fmt: skip
    return h36m * np.array([-1, -1, 1], dtype=np.float32)  # Kinect v2 axes -> camera axes: x right, y down


def load_classifier(checkpoint: str | None) -> tuple[MampForSkeletonClassification, MampSkeletonProcessor]:
    if checkpoint is None:
        print(
            "No --checkpoint: a tiny randomly initialised classifier with the NTU-60 action names runs; its "
            "predictions are chance, so the action names below are MEANINGLESS."
        )
        config = MampConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4,
            decoder_intermediate_size=64, num_frames=16, num_labels=60, id2label=get_id2label("ntu60"),
            classifier_head="finetune",
        )  # fmt: skip
        torch.manual_seed(0)
        return MampForSkeletonClassification(config).eval(), MampSkeletonProcessor(num_frames=config.num_frames)
    model = MampForSkeletonClassification.from_pretrained(checkpoint).eval()
    return model, MampSkeletonProcessor.from_pretrained(checkpoint)


def main(argv: list[str] | None = None) -> list[tuple[str, float]]:
    args = parse_args(argv)
    if args.input is None:
        if args.source != "h36m":
            raise SystemExit("Without --input the example makes a synthetic 'h36m' sequence; drop --source.")
        joints = synthetic_h36m_sequence()
        print(f"No --input: a SYNTHETIC Human3.6M sequence of {len(joints)} frames (not from a pose estimator)")
    else:
        joints = np.load(args.input, allow_pickle=False)

    ntu = to_ntu(joints, args.source, units=args.units, axes=args.axes)  # (..., frames, 25, 3)
    # NTU's files put the first frame's spine-middle joint of the first person at the origin.
    ntu = ntu - ntu.reshape(-1, *ntu.shape[-2:])[0, NTU_JOINT_NAMES.index("spine_mid")]
    print(f"converted {args.source} joints {joints.shape} to NTU joints {ntu.shape}")

    model, processor = load_classifier(args.checkpoint)
    with torch.no_grad():
        probabilities = model(**processor(ntu)).logits.softmax(dim=-1)[0]
    values, indices = probabilities.topk(min(args.top_k, len(probabilities)))
    top = [(model.config.id2label[i], round(p, 4)) for i, p in zip(indices.tolist(), values.tolist(), strict=True)]
    print(f"top-{len(top)}: " + ", ".join(f"{name} ({p:.1%})" for name, p in top))
    return top


if __name__ == "__main__":
    main()
