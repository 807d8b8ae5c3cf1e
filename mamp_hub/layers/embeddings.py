"""Segment-wise joint embedding (Section 3.2 of the paper): skeleton sequences cut into (time segment, joint)
tokens, projected, with separate temporal and spatial position embeddings.

Shapes: N person sequences, T frames, V joints, C channels, T_e = T / temporal_patch_size segments,
V_p = V / joint_patch_size joint groups, P = values per token, D width.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..configuration_mamp import MampConfig


def patchify(skeletons: torch.Tensor, temporal_patch_size: int, joint_patch_size: int) -> torch.Tensor:
    """Cut `(N, T, V, C)` sequences into tokens `(N, T_e, V_p, P)`, P ordered (frame, joint, channel)."""
    n, frames, joints, channels = skeletons.shape
    patches = skeletons.reshape(
        n, frames // temporal_patch_size, temporal_patch_size, joints // joint_patch_size, joint_patch_size, channels
    )
    return patches.permute(0, 1, 3, 2, 4, 5).flatten(3)


def add_position_embeddings(tokens: torch.Tensor, temporal: nn.Parameter, spatial: nn.Parameter) -> torch.Tensor:
    """Add separate temporal `(1, T_e0, 1, D)` and spatial `(1, 1, V_p, D)` embeddings to `(N, T_e, V_p, D)`
    tokens (Eq. 7); the temporal table is linearly interpolated when the sequence has another length."""
    num_segments = tokens.shape[1]
    if num_segments != temporal.shape[1]:
        temporal = F.interpolate(
            temporal.squeeze(2).transpose(1, 2), size=num_segments, mode="linear", align_corners=False
        )
        temporal = temporal.transpose(1, 2).unsqueeze(2)
    return tokens + spatial + temporal


class MampEmbeddings(nn.Module):
    """Segment-wise joint embedding (Section 3.2) plus position embeddings.

    The authors embed with a Conv2d whose kernel equals its stride; a linear map of the patch values is the same
    function and lets one `patchify` serve the embedding, the masking and the target.
    """

    def __init__(self, config: MampConfig):
        super().__init__()
        self.config = config
        self.projection = nn.Linear(config.patch_dim, config.hidden_size)
        self.temporal_position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_temporal_patches, 1, config.hidden_size)
        )
        self.spatial_position_embeddings = nn.Parameter(torch.zeros(1, 1, config.num_joint_patches, config.hidden_size))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """`(N, T_e, V_p, P)` patches -> `(N, L, D)` tokens."""
        tokens = add_position_embeddings(
            self.projection(patches), self.temporal_position_embeddings, self.spatial_position_embeddings
        )
        return tokens.flatten(1, 2)
