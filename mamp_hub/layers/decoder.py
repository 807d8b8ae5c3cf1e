"""MAMP's pre-training decoder (Section 3.5): mask tokens in the places of the hidden tokens, its own position
embeddings and transformer blocks, and a linear head that predicts every token's target (its motion, by default).

Shapes: N person sequences, L tokens, L_visible tokens the encoder saw, D encoder width, P values per token.
"""

import torch
from torch import nn

from ..configuration_mamp import MampConfig
from .embeddings import add_position_embeddings
from .transformer import MampLayer, stochastic_depth_rates


class MampDecoder(nn.Module):
    """Inserts mask tokens, adds the decoder's own position embeddings, runs its blocks, and predicts every token's
    target. Its parameters are named as ViT-MAE's decoder's (`decoder_embed`, `decoder_layers`, `decoder_norm`,
    `decoder_pred`); checkpoints written before 0.2 named the blocks `transformer.layers`, which loading maps
    (`LEGACY_KEY_MAPPING` in modeling_mamp.py)."""

    def __init__(self, config: MampConfig):
        super().__init__()
        self.decoder_embed = nn.Linear(config.hidden_size, config.decoder_hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.temporal_position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_temporal_patches, 1, config.decoder_hidden_size)
        )
        self.spatial_position_embeddings = nn.Parameter(
            torch.zeros(1, 1, config.num_joint_patches, config.decoder_hidden_size)
        )
        self.decoder_layers = nn.ModuleList(
            MampLayer(
                config,
                config.decoder_hidden_size,
                config.decoder_num_attention_heads,
                config.decoder_intermediate_size,
                rate,
            )
            for rate in stochastic_depth_rates(config, config.decoder_num_hidden_layers)
        )
        self.decoder_norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        self.decoder_pred = nn.Linear(config.decoder_hidden_size, config.patch_dim)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor, num_segments: int) -> torch.Tensor:
        """`(N, L_visible, D)` latent -> `(N, L, P)` predictions in token order."""
        hidden_states = self.decoder_embed(latent)
        n, num_visible, width = hidden_states.shape
        length = ids_restore.shape[1]
        hidden_states = torch.cat([hidden_states, self.mask_token.expand(n, length - num_visible, width)], dim=1)
        hidden_states = torch.gather(hidden_states, 1, ids_restore.unsqueeze(-1).expand(-1, -1, width))
        hidden_states = add_position_embeddings(
            hidden_states.view(n, num_segments, -1, width),
            self.temporal_position_embeddings,
            self.spatial_position_embeddings,
        ).flatten(1, 2)
        for layer in self.decoder_layers:
            hidden_states = layer(hidden_states)
        return self.decoder_pred(self.decoder_norm(hidden_states))
