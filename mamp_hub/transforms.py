"""The arithmetic of MAMP's training transform (random crop of the valid frames, linear resize along time, random
rotation), in torch, on any device.

Two callers share it, so that the same random draws give the same numbers:
- `MampSkeletonProcessor` (CPU, a batch at a time in the data-loader workers), which gathers each sample's rows where
  they lie (rows of a memory map) and rotates with NumPy;
- `transform_padded_batch`, which runs the whole transform on a zero-padded batch where it lives (a GPU in the
  training step, see `mamp_hub.data.PaddedSkeletonCollator`), without reading a value on the host.

Shapes: B sequences, T frames of the padded input, M persons, V joints, C channels, F = M * V * C values per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .processing_mamp import MampSkeletonProcessor


# ----------------------------------------------------------------------------- random draws


def draw_crop_fractions(
    batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Uniform draws of the training crop, `(2, B)` float64 in [0, 1): row 0 picks each sample's proportion of its
    valid frames, row 1 the crop's start (see `training_crop_windows`). Drawn before the rotation angles."""
    return torch.rand(2, batch_size, generator=generator, dtype=torch.float64, device=device)


def draw_rotation_angles(
    batch_size: int,
    rotation_range: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Angles of the random rotation, `(B, 3)` float64, uniform in [-rotation_range, rotation_range] about x, y, z."""
    uniform = torch.rand(batch_size, 3, generator=generator, dtype=torch.float64, device=device)
    return (uniform * 2 - 1) * rotation_range


# ----------------------------------------------------------------------------- crop, resize, rotation


def training_crop_windows(
    valid_frames: torch.Tensor, draws: torch.Tensor, crop_ratio_range: Sequence[float], min_frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """First frame and frame count `(B,)` int64 of each sample's random crop (the official `valid_crop_resize`).

    A proportion p = low + draws[0] * (high - low) of the `valid_frames` is kept, at least `min_frames` of them (at
    most all), starting at frame `floor(draws[1] * (valid - length + 1))`; float64 throughout, as NumPy computes it.

    Args:
        valid_frames: `(B,)` integer counts of valid frames.
        draws: `(2, B)` float64 from `draw_crop_fractions`, on the same device.
        crop_ratio_range: (low, high) bounds of the proportion.
        min_frames: the fewest frames a crop keeps when the sequence has them.
    """
    valid = valid_frames.to(torch.float64)
    low, high = crop_ratio_range
    ratio = draws[0] * (high - low) + low
    length = torch.minimum(torch.floor(valid * ratio).clamp(min=min_frames), valid)
    start = torch.floor(draws[1] * (valid - length + 1))
    # An all-zero sequence has no valid frame: read its first (zero) frame, which yields zeros.
    return start.long(), length.clamp(min=1).long()


def resize_positions(length: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each of `num_frames` output frames reads a crop of `length` frames, and with what weight.

    Reproduces `F.interpolate(mode="bilinear", align_corners=False)` along time bit for bit: source position
    `s = max(scale * (t + 0.5) - 0.5, 0)` in float32, with `scale = length / num_frames` rounded to float32 (the
    float64 quotient of two integers rounds to the same float32), then neighbours `floor(s)` and `floor(s) + 1`
    (clamped to the crop) with weights `1 - w` and `w = s - floor(s)`.

    Args:
        length: `(B,)` int64 frames of each crop (at least 1).
        num_frames: output frames.

    Returns:
        index0, index1: `(B, num_frames)` int64 neighbours within the crop (add the crop's start to index a sequence);
        weight1: `(B, num_frames)` float32 weight of `index1`.
    """
    scale = (length.to(torch.float64) / num_frames).to(torch.float32).to(torch.float64)
    steps = torch.arange(num_frames, dtype=torch.float64, device=length.device).add_(0.5)
    source = (scale[:, None] * steps).sub_(0.5).to(torch.float32).clamp_(min=0)
    index0 = source.long()  # truncation == floor for non-negative positions
    weight1 = source - index0  # exact: the fractional part
    index1 = (index0 + 1).clamp_(max=length[:, None] - 1)
    return index0, index1, weight1


def blend_neighbours_(
    frame0: torch.Tensor,
    frame1: torch.Tensor,
    weight0: torch.Tensor,
    weight1: torch.Tensor,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """`(1 - w) * x0 + w * x1` rounded as PyTorch's CPU interpolation kernel rounds it: one fused multiply-add on the
    rounded product `w * x1`, which `torch.addcmul` on that product is. Overwrites `frame1` with the product.

    Args:
        frame0, frame1: the two neighbours of every output frame, broadcastable with the weights.
        weight0, weight1: `1 - w` and `w`.
        out: where to write the result (a new tensor if None).
    """
    frame1.mul_(weight1)
    return torch.addcmul(frame1, frame0, weight0, out=out)


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices R = Rz @ Ry @ Rx of the official `random_rot` augmentation.

    Args:
        angles: (B, 3) angles in radians about x, y and z.

    Returns:
        (B, 3, 3) matrices; a point p (column vector) maps to R @ p.
    """
    cos, sin = angles.cos(), angles.sin()
    zeros, ones = torch.zeros_like(cos[:, 0]), torch.ones_like(cos[:, 0])

    def matrix(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    rot_x = matrix([[ones, zeros, zeros], [zeros, cos[:, 0], sin[:, 0]], [zeros, -sin[:, 0], cos[:, 0]]])
    rot_y = matrix([[cos[:, 1], zeros, -sin[:, 1]], [zeros, ones, zeros], [sin[:, 1], zeros, cos[:, 1]]])
    rot_z = matrix([[cos[:, 2], sin[:, 2], zeros], [-sin[:, 2], cos[:, 2], zeros], [zeros, zeros, ones]])
    return rot_z @ rot_y @ rot_x


# ----------------------------------------------------------------------------- the whole transform on a padded batch


def transform_padded_batch(
    processor: MampSkeletonProcessor,
    sequences: torch.Tensor,
    valid_frames: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The processor's training transform (`processor(..., training=True)`) on a zero-padded batch, on its device.

    The draws, crop windows, resize positions and blend are the processor's own functions (above), so a generator in
    the same state gives the same output; the rotation is one batched matrix product here (NumPy's per-sample
    products in the processor), equal to float32 rounding. Nothing is read on the host: on a GPU the transform is a
    few kernels queued behind the previous step.

    Args:
        processor: the processor whose options (`num_frames`, crop range, rotation, persons, joints) apply.
        sequences: `(B, T, F)` float32 time-major NTU rows (`F = max_persons * num_joints * num_channels`), zero-padded
            after each sequence's valid frames; T may be anything from the longest valid count up.
        valid_frames: `(B,)` integer valid frames of each sequence (see `count_valid_frames`), on the same device.
        generator: generator of `sequences`' device for the random draws (default: torch's global one there).

    Returns:
        `(B, max_persons, num_frames, num_joints, num_channels)` float32 `skeleton_values`.
    """
    batch_size, _, features = sequences.shape
    persons, num_frames = processor.max_persons, processor.num_frames
    draws = draw_crop_fractions(batch_size, generator, sequences.device)
    start, length = training_crop_windows(
        valid_frames, draws, processor.train_crop_ratio_range, processor.min_train_frames
    )
    index0, index1, weight1 = resize_positions(length, num_frames)
    rows = start[:, None] + torch.cat([index0, index1], dim=1)  # (B, 2 * num_frames)
    neighbours = torch.gather(sequences, 1, rows[:, :, None].expand(-1, -1, features))
    frame0, frame1 = neighbours.view(batch_size, 2, num_frames, persons, -1).transpose(2, 3).unbind(1)
    weight1 = weight1[:, None, :, None]
    values = blend_neighbours_(frame0, frame1, 1 - weight1, weight1)  # (B, M, num_frames, V * C)
    if processor.do_random_rotation:
        angles = draw_rotation_angles(batch_size, processor.rotation_range, generator, sequences.device)
        rotation = rotation_matrices(angles).to(torch.float32).transpose(1, 2)  # row vectors: p @ R^T
        values = torch.bmm(values.reshape(batch_size, -1, 3), rotation)
    return values.reshape(batch_size, persons, num_frames, processor.num_joints, processor.num_channels)
