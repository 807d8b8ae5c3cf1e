"""MAMP: Masked Motion Predictors (Mao et al., ICCV 2023) in the transformers `PreTrainedModel` API.

Sections follow the paper: 3.2 joint embedding, 3.3 motion extraction, 3.4 motion-aware masking,
3.5 encoder, decoder and motion prediction head. Numerics follow the authors' code, which produced
the published numbers: tokens are time-major (token `t * V + v`), persons are folded into the batch
as row `n * M + m`, and motion is a forward difference with the last frames padded.

Shapes: B batch, M persons, T frames, V joints, C channels, D hidden size, T_e = T / temporal_patch_size
segments, V_p = V / joint_patch_size joint groups, L = T_e * V_p tokens, P = values per token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_mamp import MampConfig

# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


@dataclass
class MampModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(B, M, T_e, V_p, D)`):
            Token features after the final LayerNorm, per person, time segment and joint.
        pooler_output (`torch.FloatTensor` of shape `(B, D)`):
            Clip embedding: mean of `last_hidden_state` over persons, time and joints (the linear-probe features).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with `output_hidden_states=True`):
            Embedding output and each layer's output, each `(B * M, L, D)` (persons folded into the batch).
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned with `output_attentions=True`):
            Each layer's attention probabilities, `(B * M, heads, L, L)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MampForPreTrainingOutput(ModelOutput):
    """
    Rows are person sequences, `n * M + m`; with `config.pretraining_skip_absent_persons` only the present ones.

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Mean squared error between predictions and (normalised) targets, averaged over masked tokens.
        logits (`torch.FloatTensor` of shape `(B * M, L, P)`):
            Predicted target (motion by default) of every token, in token order.
        mask (`torch.FloatTensor` of shape `(B * M, L)`):
            1 for masked tokens, 0 for visible ones.
        ids_restore (`torch.LongTensor` of shape `(B * M, L)`):
            Permutation that puts the shuffled tokens (visible first) back in token order.
        encoder_last_hidden_state (`torch.FloatTensor` of shape `(B * M, L_visible, D)`):
            Encoder output of the visible tokens, after the final LayerNorm.
        hidden_states, attentions: encoder hidden states / attentions over the visible tokens, on request.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MampSkeletonClassifierOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, returned when `labels` are given): cross-entropy loss.
        logits (`torch.FloatTensor` of shape `(B, num_labels)`): class scores.
        pooler_output (`torch.FloatTensor` of shape `(B, D)`): clip embedding of the encoder.
        hidden_states, attentions: encoder hidden states / attentions, on request.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# ---------------------------------------------------------------------------------------------
# Inputs, patches and motion (Sections 3.2 and 3.3)
# ---------------------------------------------------------------------------------------------


def check_skeleton_values(skeleton_values: torch.Tensor, config: MampConfig) -> torch.Tensor:
    """Validate model input and return it as `(B, M, T, V, C)`; a 4-D `(B, T, V, C)` input is one person."""
    if not isinstance(skeleton_values, torch.Tensor):
        raise ValueError(
            f"skeleton_values must be a torch.Tensor of shape (batch, persons, frames, joints, channels), got "
            f"{type(skeleton_values).__name__}. Use MampSkeletonProcessor or torch.as_tensor to convert arrays."
        )
    if skeleton_values.ndim == 4:
        skeleton_values = skeleton_values.unsqueeze(1)
    if skeleton_values.ndim != 5:
        raise ValueError(
            "skeleton_values must have shape (batch, persons, frames, joints, channels) or (batch, frames, joints, "
            f"channels), got {tuple(skeleton_values.shape)}."
        )
    batch, persons, frames, joints, channels = skeleton_values.shape
    if batch == 0 or persons == 0:
        raise ValueError(f"skeleton_values is empty: shape {tuple(skeleton_values.shape)}; pass at least one sequence.")
    if joints != config.num_joints or channels != config.num_channels:
        raise ValueError(
            f"The model expects {config.num_joints} joints with {config.num_channels} channels in the last two "
            f"dimensions, got {joints} joints and {channels} channels (shape {tuple(skeleton_values.shape)})."
        )
    if frames % config.temporal_patch_size != 0:
        raise ValueError(
            f"The number of frames ({frames}) must be a multiple of temporal_patch_size "
            f"({config.temporal_patch_size}); resample the sequence (MampSkeletonProcessor does) to "
            f"{config.num_frames} frames."
        )
    if not torch.isfinite(skeleton_values).all():
        raise ValueError("skeleton_values contains NaN or infinite values; replace missing joints with zeros.")
    return skeleton_values


def patchify(skeletons: torch.Tensor, temporal_patch_size: int, joint_patch_size: int) -> torch.Tensor:
    """Cut `(N, T, V, C)` sequences into tokens `(N, T_e, V_p, P)`, P ordered (frame, joint, channel)."""
    n, frames, joints, channels = skeletons.shape
    patches = skeletons.reshape(
        n, frames // temporal_patch_size, temporal_patch_size, joints // joint_patch_size, joint_patch_size, channels
    )
    return patches.permute(0, 1, 3, 2, 4, 5).flatten(3)


def extract_motion(skeletons: torch.Tensor, stride: int = 1, direction: str = "forward", padding: str = "constant"):
    """Temporal difference of `(N, T, V, C)` sequences along frames, same shape (Eq. 2 and 3).

    `"forward"`: `x[t + stride] - x[t]`, the last `stride` frames padded (the authors' code);
    `"backward"`: `x[t] - x[t - stride]`, the first `stride` frames padded (the paper's Eq. 2).
    Padding is zeros (`"constant"`) or a copy of the nearest `stride` computed frames (`"replicate"`).
    """
    difference = skeletons[:, stride:] - skeletons[:, :-stride]
    if padding == "constant":
        pad = torch.zeros_like(difference[:, :stride])
    elif direction == "forward":
        pad = difference[:, -stride:]
    else:
        pad = difference[:, :stride]
    parts = (difference, pad) if direction == "forward" else (pad, difference)
    return torch.cat(parts, dim=1)


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
        self.temporal_position_embeddings = nn.Parameter(torch.zeros(1, config.num_temporal_patches, 1, config.hidden_size))
        self.spatial_position_embeddings = nn.Parameter(torch.zeros(1, 1, config.num_joint_patches, config.hidden_size))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """`(N, T_e, V_p, P)` patches -> `(N, L, D)` tokens."""
        tokens = add_position_embeddings(
            self.projection(patches), self.temporal_position_embeddings, self.spatial_position_embeddings
        )
        return tokens.flatten(1, 2)


# ---------------------------------------------------------------------------------------------
# Transformer blocks
# ---------------------------------------------------------------------------------------------


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention over `(N, heads, L, head_dim)` inputs; returns `(N, L, heads, head_dim)` and weights."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class MampSelfAttention(nn.Module):
    """Multi-head self-attention with a fused query/key/value projection (the authors' weight layout)."""

    def __init__(self, config: MampConfig, hidden_size: int, num_heads: int):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.proj_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        query, key, value = (
            self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        # Fused kernels do not return probabilities, so a request for them takes the eager path.
        implementation = "eager" if output_attentions else self.config._attn_implementation
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            None,
            dropout=self.config.attention_probs_dropout_prob if self.training else 0.0,
            scaling=self.scaling,
        )
        attn_output = self.proj_dropout(self.proj(attn_output.reshape(batch, length, -1)))
        return attn_output, attn_weights if output_attentions else None


class MampMLP(nn.Module):
    def __init__(self, config: MampConfig, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.activation(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))


class MampDropPath(nn.Module):
    """Stochastic depth: drops the residual branch of whole samples while training."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep_prob = 1.0 - self.drop_prob
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        keep = torch.empty(shape, dtype=hidden_states.dtype, device=hidden_states.device).bernoulli_(keep_prob)
        return hidden_states * keep / keep_prob

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


class MampLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block (Eq. 8)."""

    def __init__(self, config: MampConfig, hidden_size: int, num_heads: int, intermediate_size: int, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.attention = MampSelfAttention(config, hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp = MampMLP(config, hidden_size, intermediate_size)
        self.drop_path = MampDropPath(drop_path)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_output, attn_weights = self.attention(self.norm1(hidden_states), output_attentions)
        hidden_states = hidden_states + self.drop_path(attn_output)
        hidden_states = hidden_states + self.drop_path(self.mlp(self.norm2(hidden_states)))
        return hidden_states, attn_weights


class MampEncoder(nn.Module):
    """A stack of `MampLayer`s; serves as the encoder and, with the decoder's sizes, as the decoder."""

    def __init__(
        self, config: MampConfig, hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int
    ):
        super().__init__()
        # The authors' decoder takes the first rates of the encoder's stochastic-depth ramp.
        drop_path_rates = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers).tolist()
        self.layers = nn.ModuleList(
            MampLayer(config, hidden_size, num_heads, intermediate_size, drop_path_rates[i]) for i in range(num_layers)
        )

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, attn_weights = layer(hidden_states, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (attn_weights,)
        return hidden_states, all_hidden_states, all_attentions


# ---------------------------------------------------------------------------------------------
# Base class and encoder model
# ---------------------------------------------------------------------------------------------


class MampPreTrainedModel(PreTrainedModel):
    config_class = MampConfig
    config: MampConfig
    base_model_prefix = "mamp"
    main_input_name = "skeleton_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MampLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_attention_backend = True
    # The pre-training decoder is dropped when an encoder or classifier is loaded from a pre-trained folder.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\."]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The authors' initialisation: xavier-uniform linears, truncated-normal position embeddings and mask
        token, and torch's default (kaiming-uniform) for the joint embedding, which is a Conv2d in their code.
        Children are initialised before their parents, so the embedding's rule overrides the linear one."""
        std = self.config.initializer_range
        if isinstance(module, MampEmbeddings):
            init.kaiming_uniform_(module.projection.weight, a=5**0.5)
            bound = module.projection.in_features**-0.5
            init.uniform_(module.projection.bias, -bound, bound)
            init.trunc_normal_(module.temporal_position_embeddings, std=std)
            init.trunc_normal_(module.spatial_position_embeddings, std=std)
        elif isinstance(module, MampDecoder):
            init.trunc_normal_(module.mask_token, std=std)
            init.trunc_normal_(module.temporal_position_embeddings, std=std)
            init.trunc_normal_(module.spatial_position_embeddings, std=std)
        elif isinstance(module, MampLinearProbeHead):
            init.trunc_normal_(module.weight, std=0.01)  # the authors' linear-probe script
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            if module.weight is not None:
                init.ones_(module.weight)
                init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)


class MampModel(MampPreTrainedModel):
    """The MAMP encoder: joint embedding, position embeddings, pre-norm transformer blocks and a final LayerNorm.

    Persons are encoded independently (folded into the batch) and averaged only in the pooled output, as in the
    authors' code. In eval mode an all-zero person slot (the absent second body of NTU files) gives the same
    features whatever the sample, so they are computed once per batch instead of once per slot.
    """

    def __init__(self, config: MampConfig):
        super().__init__(config)
        self.embeddings = MampEmbeddings(config)
        self.encoder = MampEncoder(
            config, config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size
        )
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def encode(
        self, tokens: torch.Tensor, output_attentions: bool = False, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """Transformer blocks and final norm over `(N, L, D)` tokens (all of them, or only the visible ones)."""
        hidden_states, all_hidden_states, all_attentions = self.encoder(tokens, output_attentions, output_hidden_states)
        return self.layernorm(hidden_states), all_hidden_states, all_attentions

    def forward(
        self,
        skeleton_values: torch.Tensor,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MampModelOutput | tuple:
        r"""
        Args:
            skeleton_values (`torch.FloatTensor` of shape `(B, M, T, V, C)` or `(B, T, V, C)`):
                Skeleton sequences, e.g. from `MampSkeletonProcessor`. Absent persons are all zeros.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else config.return_dict

        skeletons = check_skeleton_values(skeleton_values, config).to(self.embeddings.projection.weight.dtype)
        batch, persons, frames = skeletons.shape[:3]
        skeletons = skeletons.flatten(0, 1)
        absent = ~skeletons.flatten(1).any(dim=1)

        if self.training or output_attentions or output_hidden_states or not absent.any():
            tokens = self.embeddings(patchify(skeletons, config.temporal_patch_size, config.joint_patch_size))
            hidden_states, all_hidden_states, all_attentions = self.encode(
                tokens, output_attentions, output_hidden_states
            )
        else:
            hidden_states = self._encode_present_persons(skeletons, absent)
            all_hidden_states = all_attentions = None

        last_hidden_state = hidden_states.view(
            batch, persons, frames // config.temporal_patch_size, config.num_joint_patches, -1
        )
        pooler_output = last_hidden_state.mean(dim=(1, 2, 3))
        if not return_dict:
            return tuple(
                v for v in (last_hidden_state, pooler_output, all_hidden_states, all_attentions) if v is not None
            )
        return MampModelOutput(
            last_hidden_state=last_hidden_state,
            pooler_output=pooler_output,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )

    def _encode_present_persons(self, skeletons: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
        """Encode the present person slots and one empty slot, whose features fill every absent slot."""
        present = ~absent
        rows = torch.cat([skeletons[present], skeletons.new_zeros(1, *skeletons.shape[1:])])
        tokens = self.embeddings(patchify(rows, self.config.temporal_patch_size, self.config.joint_patch_size))
        features = self.encode(tokens)[0]
        # One gather: a present slot reads its own row, an absent one the empty slot's (the last row). (Writing
        # into an expanded view of that row instead is miscompiled by torch.compile's inductor in torch 2.13.)
        source = torch.where(present, present.cumsum(0) - 1, rows.shape[0] - 1)
        return features[source]


# ---------------------------------------------------------------------------------------------
# Pre-training: motion-aware masking (3.4), decoder and motion prediction (3.5)
# ---------------------------------------------------------------------------------------------


class MampDecoder(nn.Module):
    """Inserts mask tokens, adds the decoder's own position embeddings, and predicts every token's target."""

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
        self.transformer = MampEncoder(
            config,
            config.decoder_hidden_size,
            config.decoder_num_hidden_layers,
            config.decoder_num_attention_heads,
            config.decoder_intermediate_size,
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
        hidden_states = self.transformer(hidden_states)[0]
        return self.decoder_pred(self.decoder_norm(hidden_states))


class MampForMaskedMotionPrediction(MampPreTrainedModel):
    """MAMP pre-training: encode the visible tokens, decode all of them, predict the motion of the masked ones.

    With `pretraining_target="joints"` (and `masking_strategy="random"`) it is the SkeletonMAE-style
    self-reconstruction baseline of the paper's Table 7.
    """

    def __init__(self, config: MampConfig):
        super().__init__(config)
        self.mamp = MampModel(config)
        self.decoder = MampDecoder(config)
        self.post_init()

    def masking_scores(self, joint_patches: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-token scores `(N, L)`; the lowest `(1 - mask_ratio)` fraction is kept visible.

        Motion-aware (Eq. 4-6): the intensity of a token is the mean absolute change of its values from the
        previous segment (the first segment copies the second); `log softmax(I / (max I * tau)) + Gumbel(noise)`
        ranks tokens, so fast-moving joints are masked more often. Random: the noise itself.
        """
        if self.config.masking_strategy == "random":
            return noise
        intensity = (joint_patches[:, 1:] - joint_patches[:, :-1]).abs().mean(dim=-1)
        intensity = torch.cat([intensity[:, :1], intensity], dim=1).flatten(1)
        logits = intensity / (intensity.amax(dim=-1, keepdim=True) * self.config.motion_aware_tau + 1e-10)
        # log(softmax) rather than log_softmax: the authors' rounding, so that rankings match theirs bit for bit.
        return torch.log(F.softmax(logits, dim=-1)) - torch.log(-torch.log(noise + 1e-10) + 1e-10)

    def forward(
        self,
        skeleton_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MampForPreTrainingOutput | tuple:
        r"""
        Args:
            skeleton_values (`torch.FloatTensor` of shape `(B, M, T, V, C)` or `(B, T, V, C)`): skeleton sequences.
            noise (`torch.FloatTensor` of shape `(B * M, L)`, *optional*): uniform numbers in [0, 1), one row per
                person sequence, that decide the masking; drawn with `torch.rand` when not given.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else config.return_dict

        skeletons = check_skeleton_values(skeleton_values, config).to(self.dtype).flatten(0, 1)
        num_segments = skeletons.shape[1] // config.temporal_patch_size
        expected_noise_shape = (skeletons.shape[0], num_segments * config.num_joint_patches)
        if noise is not None and noise.shape != expected_noise_shape:
            raise ValueError(
                f"noise must have shape (batch * persons, tokens) = {expected_noise_shape}, got {tuple(noise.shape)}."
            )
        if config.pretraining_skip_absent_persons:
            present = skeletons.flatten(1).any(dim=1)
            if present.any():  # a batch without any person keeps its slots rather than becoming empty
                skeletons = skeletons[present]
                noise = None if noise is None else noise[present]
        joint_patches = patchify(skeletons, config.temporal_patch_size, config.joint_patch_size)
        motion_patches = None
        if "motion" in (config.pretraining_input, config.pretraining_target):
            motion = extract_motion(skeletons, config.motion_stride, config.motion_direction, config.motion_padding)
            motion_patches = patchify(motion, config.temporal_patch_size, config.joint_patch_size)
        encoder_input = joint_patches if config.pretraining_input == "joints" else motion_patches
        tokens = self.mamp.embeddings(encoder_input)
        n, length, width = tokens.shape

        if noise is None:
            noise = torch.rand(n, length, device=tokens.device)
        ids_shuffle = torch.argsort(self.masking_scores(joint_patches, noise.to(tokens.device)), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        num_visible = int(length * (1 - config.mask_ratio))
        visible = torch.gather(tokens, 1, ids_shuffle[:, :num_visible, None].expand(-1, -1, width))
        mask = (ids_restore >= num_visible).to(tokens.dtype)

        latent, all_hidden_states, all_attentions = self.mamp.encode(visible, output_attentions, output_hidden_states)
        prediction = self.decoder(latent, ids_restore, num_segments)

        target = (joint_patches if config.pretraining_target == "joints" else motion_patches).flatten(1, 2)
        if config.norm_target:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        loss_per_token = (prediction - target).pow(2).mean(dim=-1)
        loss = (loss_per_token * mask).sum() / mask.sum()

        if not return_dict:
            return tuple(
                v
                for v in (loss, prediction, mask, ids_restore, latent, all_hidden_states, all_attentions)
                if v is not None
            )
        return MampForPreTrainingOutput(
            loss=loss,
            logits=prediction,
            mask=mask,
            ids_restore=ids_restore,
            encoder_last_hidden_state=latent,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


# ---------------------------------------------------------------------------------------------
# Action classification
# ---------------------------------------------------------------------------------------------


class MampLinearProbeHead(nn.Linear):
    """A linear classifier on the pooled clip embedding, after a BatchNorm without affine parameters (the authors'
    linear-probe head; the BatchNorm standardises frozen features so that one learning rate suits every encoder)."""

    def __init__(self, config: MampConfig):
        super().__init__(config.hidden_size, config.num_labels)
        self.batch_norm = nn.BatchNorm1d(config.hidden_size, affine=False, eps=1e-6)

    def forward(self, last_hidden_state: torch.Tensor, pooler_output: torch.Tensor) -> torch.Tensor:
        return super().forward(self.batch_norm(pooler_output))


class MampFinetuneHead(nn.Module):
    """The authors' fine-tuning head: dropout on the tokens, mean over time, each person's joints concatenated,
    mean over persons, then linear, BatchNorm, ReLU, linear."""

    def __init__(self, config: MampConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.fc1 = nn.Linear(config.num_joint_patches * config.hidden_size, config.classifier_hidden_size)
        self.batch_norm = nn.BatchNorm1d(config.classifier_hidden_size)
        self.activation = nn.ReLU()
        self.fc2 = nn.Linear(config.classifier_hidden_size, config.num_labels)

    def forward(self, last_hidden_state: torch.Tensor, pooler_output: torch.Tensor) -> torch.Tensor:
        features = self.dropout(last_hidden_state).mean(dim=2).flatten(2).mean(dim=1)
        return self.fc2(self.activation(self.batch_norm(self.fc1(features))))


class MampForSkeletonClassification(MampPreTrainedModel):
    """MAMP encoder with an action classification head: `config.classifier_head` picks the linear probe or the
    fine-tuning MLP. Given `labels`, returns the cross-entropy loss (with `config.label_smoothing`)."""

    def __init__(self, config: MampConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mamp = MampModel(config)
        head = MampLinearProbeHead if config.classifier_head == "linear_probe" else MampFinetuneHead
        self.classifier = head(config)
        self.post_init()

    def freeze_encoder(self) -> None:
        """Freeze every encoder parameter (linear probing): only `classifier` is trained."""
        self.mamp.requires_grad_(False)

    def forward(
        self,
        skeleton_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MampSkeletonClassifierOutput | tuple:
        r"""
        Args:
            skeleton_values (`torch.FloatTensor` of shape `(B, M, T, V, C)` or `(B, T, V, C)`): skeleton sequences.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class indices in `[0, num_labels)`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.mamp(
            skeleton_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(outputs.last_hidden_state, outputs.pooler_output)
        loss = None
        if labels is not None:
            if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"labels must be class indices of shape ({logits.shape[0]},), got {tuple(labels.shape)}."
                )
            loss = F.cross_entropy(logits, labels.to(logits.device), label_smoothing=self.config.label_smoothing)
        if not return_dict:
            return tuple(
                v
                for v in (loss, logits, outputs.pooler_output, outputs.hidden_states, outputs.attentions)
                if v is not None
            )
        return MampSkeletonClassifierOutput(
            loss=loss,
            logits=logits,
            pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = [
    "MampModelOutput",
    "MampForPreTrainingOutput",
    "MampSkeletonClassifierOutput",
    "MampPreTrainedModel",
    "MampModel",
    "MampForMaskedMotionPrediction",
    "MampForSkeletonClassification",
    "extract_motion",
    "patchify",
]
