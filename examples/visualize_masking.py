"""Draw MAMP's motion-aware mask on a skeleton sequence, like Figure 2 of the paper, and save it as a PNG.

Top row: the skeleton at several time segments, masked joints in red, visible ones in blue. Bottom row, as
(segments x joints) maps: the masking probability that motion-aware masking derives from the motion intensity
(Eq. 4-5; fast joints are more likely to be hidden), and the mask actually drawn (Eq. 6).

    python examples/visualize_masking.py --output-dir outputs/masking
    python examples/visualize_masking.py --input my_sequence.npy --checkpoint <org>/<repo> --output-dir out

The mask depends on the input, the masking settings and the random draw, not on the weights, so the default
(a randomly initialised model with the paper's settings on a synthetic sequence) draws the same kind of mask a
trained model would.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from mamp_hub import MampConfig, MampForMaskedMotionPrediction, MampSkeletonProcessor
from mamp_hub.data.synthetic import SYNTHETIC_ACTION_NAMES, generate_synthetic_actions
from mamp_hub.layers.embeddings import patchify
from mamp_hub.modeling_mamp import masking_probabilities
from mamp_hub.skeletons import NTU_BONES, NTU_JOINT_NAMES

MASKED_COLOR, VISIBLE_COLOR, BONE_COLOR = "#d62728", "#1f4e9c", "#9a9a9a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/visualize_masking"))
    parser.add_argument(
        "--input",
        type=Path,
        help="a .npy sequence (frames, 25, 3) or (persons, frames, 25, 3); default: a synthetic one",
    )
    parser.add_argument(
        "--action",
        type=int,
        default=0,
        choices=range(len(SYNTHETIC_ACTION_NAMES)),
        help="synthetic action to draw (0: wave right hand; see mamp_hub.data.synthetic)",
    )
    parser.add_argument("--checkpoint", help="Hub id or folder of a pre-trained MAMP model (default: random init)")
    parser.add_argument("--num-panels", type=int, default=6, help="time segments drawn in the top row")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masking draw")
    return parser.parse_args(argv)


def load_model(checkpoint: str | None) -> tuple[MampForMaskedMotionPrediction, MampSkeletonProcessor]:
    if checkpoint is None:
        config = MampConfig()  # the paper's settings: 90% motion-aware masking, tau 0.8
        return MampForMaskedMotionPrediction(config).eval(), MampSkeletonProcessor(num_frames=config.num_frames)
    model = MampForMaskedMotionPrediction.from_pretrained(checkpoint).eval()
    return model, MampSkeletonProcessor.from_pretrained(checkpoint)


def masking_probability(model: MampForMaskedMotionPrediction, skeletons: torch.Tensor) -> torch.Tensor:
    """Probability pi (Eq. 5) that the masking gives each token, `(N, L)` for `(N, T, V, C)` skeletons; random
    masking (e.g. a SkeletonMAE-style model) is uniform."""
    config = model.config
    joint_patches = patchify(skeletons, config.temporal_patch_size, config.joint_patch_size)
    if config.masking_strategy == "random":
        num_sequences, num_segments, num_joint_patches = joint_patches.shape[:3]
        num_tokens = num_segments * num_joint_patches
        return torch.full((num_sequences, num_tokens), 1 / num_tokens)
    return masking_probabilities(joint_patches, config.motion_aware_tau)


def draw(
    skeletons: np.ndarray,
    mask: np.ndarray,
    probability: np.ndarray,
    temporal_patch_size: int,
    num_panels: int,
    title: str,
    probability_title: str,
    path: Path,
) -> None:
    """Save the figure.

    Args:
        skeletons: (M, T, V, 3) present persons.
        mask: (M, T_e, V) 1 = masked.
        probability: (M, T_e, V) masking probability.
    """
    num_segments, num_joints = mask.shape[1:]
    segments = np.unique(np.linspace(0, num_segments - 1, num_panels).round().astype(int))
    num_panels = len(segments)

    # NTU camera space: x to the right, y up; draw the front view, the same limits in every panel, and size
    # the row of skeletons to their aspect ratio (one person is tall, two side by side are wide).
    x, y = skeletons[..., 0], skeletons[..., 1]
    margin = 0.1
    limits = ((x.min() - margin, x.max() + margin), (y.min() - margin, y.max() + margin))
    panel_width = 2.2
    panel_height = float(np.clip(panel_width * np.ptp(limits[1]) / np.ptp(limits[0]), 1.5, 4.5)) + 0.6
    # matplotlib's object API, without pyplot: no display, no global state; the PNG is rendered by Agg.
    figure = Figure(figsize=(max(panel_width * num_panels, 10), panel_height + 4.2), layout="constrained")
    # Two sub-figures, so that the heat-maps' axis labels do not shift the columns of skeletons.
    top, bottom = figure.subfigures(2, 1, height_ratios=[panel_height, 4.2])
    for column, segment in enumerate(segments):
        first_frame = segment * temporal_patch_size
        joints_now = skeletons[:, first_frame + temporal_patch_size // 2]  # (M, V, 3), the segment's middle frame
        axes = top.add_subplot(1, num_panels, column + 1)
        for joints, masked in zip(joints_now, mask[:, segment].astype(bool), strict=True):
            for child, parent in NTU_BONES:
                axes.plot(*joints[[child, parent], :2].T, color=BONE_COLOR, linewidth=1.5, zorder=1)
            axes.scatter(*joints[~masked, :2].T, s=22, color=VISIBLE_COLOR, zorder=2)
            axes.scatter(*joints[masked, :2].T, s=22, color=MASKED_COLOR, marker="s", zorder=2)
        axes.set_title(
            f"segment {segment} (frames {first_frame}-{first_frame + temporal_patch_size - 1})\n"
            f"{int(mask[:, segment].sum())} of {mask.shape[0] * num_joints} joints masked",
            fontsize=9,
        )
        axes.set(xlim=limits[0], ylim=limits[1], aspect="equal", xticks=[], yticks=[])
    legend = [
        Line2D([], [], color=VISIBLE_COLOR, marker="o", linestyle="", label="visible joint"),
        Line2D([], [], color=MASKED_COLOR, marker="s", linestyle="", label="masked joint"),
    ]
    figure.legend(handles=legend, loc="outside upper right", fontsize=8, ncols=2)

    maps = [
        (probability[0], "viridis", None, probability_title),
        (
            mask[0],
            ListedColormap([VISIBLE_COLOR, MASKED_COLOR]),
            (0, 1),
            f"mask drawn (Eq. 6): red = masked, {mask[0].mean():.0%} of tokens",
        ),
    ]
    for position, (values, colormap, value_range, map_title) in enumerate(maps, start=1):
        axes = bottom.add_subplot(1, 2, position)
        vmin, vmax = value_range or (None, None)
        image = axes.imshow(values, aspect="auto", cmap=colormap, vmin=vmin, vmax=vmax, interpolation="nearest")
        axes.set_title(f"person 1: {map_title}", fontsize=9)
        axes.set_xlabel("joint")
        axes.set_ylabel("time segment")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xticks(range(num_joints), NTU_JOINT_NAMES[:num_joints], rotation=90, fontsize=6)
        for segment in segments:  # mark the segments drawn above
            axes.axhline(segment, color="white", linewidth=0.6, linestyle=":")
        if value_range is None:
            bottom.colorbar(image, ax=axes, fraction=0.04, pad=0.01)
    figure.suptitle(title, fontsize=11, x=0.02, ha="left")
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    model, processor = load_model(args.checkpoint)
    config = model.config
    if config.joint_patch_size != 1 or config.num_joints != len(NTU_JOINT_NAMES):
        raise ValueError("This picture draws the 25-joint NTU skeleton with one joint per token.")

    if args.input is not None:
        sequence = np.load(args.input, allow_pickle=False)
    else:
        synthetic = generate_synthetic_actions(len(SYNTHETIC_ACTION_NAMES), seed=args.seed)  # one clip per class
        sequence = synthetic.sequences[synthetic.labels == args.action][0]  # (300, 150), NTU .npz row layout
    skeleton_values = processor([sequence], return_tensors="pt")["skeleton_values"]  # (1, M, T, V, C)
    # Only the slots holding a person (an absent one is all zeros): one mask row per person drawn.
    skeleton_values = skeleton_values[:, skeleton_values[0].flatten(1).any(dim=1)]
    num_persons, num_frames = skeleton_values.shape[1:3]
    grid_shape = (num_persons, num_frames // config.temporal_patch_size, config.num_joint_patches)

    generator = torch.Generator().manual_seed(args.seed)
    noise = torch.rand(num_persons, grid_shape[1] * grid_shape[2], generator=generator)  # one row per person
    with torch.no_grad():
        mask = model(skeleton_values, noise=noise).mask  # (M, L), time-major tokens t * V + v
        probability = masking_probability(model, skeleton_values[0])
    mask, probability = mask.view(grid_shape).numpy(), probability.view(grid_shape).numpy()

    path = args.output_dir / "masking.png"
    if config.masking_strategy == "motion_aware":
        title = "MAMP motion-aware masking: joints that move more are masked more often"
        probability_title = "masking probability $\\pi$ (Eq. 5), from motion intensity"
    else:
        title = "Random masking: every token equally likely to be masked"
        probability_title = "masking probability (uniform)"
    skeletons = skeleton_values[0].numpy()
    draw(skeletons, mask, probability, config.temporal_patch_size, args.num_panels, title, probability_title, path)
    masked = mask.astype(bool)
    print(
        f"saved {path}: {masked.mean():.0%} of the tokens masked; mean masking probability of masked tokens "
        f"{probability[masked].mean():.2e} vs visible {probability[~masked].mean():.2e}"
    )
    return path


if __name__ == "__main__":
    main()
