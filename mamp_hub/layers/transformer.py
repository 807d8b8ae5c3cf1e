"""The pre-norm transformer block of MAMP's encoder and decoder (Section 3.5, Eq. 8), with transformers' attention
interface (eager or a registered kernel, e.g. SDPA) and stochastic depth.

Shapes: N sequences, L tokens, D width.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs

from ..configuration_mamp import MampConfig


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
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
        self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        query, key, value = (
            self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        # Fused kernels do not return probabilities, so a request for them takes the eager path.
        implementation = "eager" if kwargs.get("output_attentions") else self.config._attn_implementation
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            None,
            dropout=self.config.attention_probs_dropout_prob if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = self.proj_dropout(self.proj(attn_output.reshape(batch, length, -1)))
        return attn_output, attn_weights


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

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        attn_output, _ = self.attention(self.norm1(hidden_states), **kwargs)
        hidden_states = hidden_states + self.drop_path(attn_output)
        return hidden_states + self.drop_path(self.mlp(self.norm2(hidden_states)))


def stochastic_depth_rates(config: MampConfig, num_layers: int) -> list[float]:
    """The drop-path rate of each of `num_layers` blocks: the first `num_layers` rates of the encoder's linear ramp
    from 0 to `config.drop_path_rate` (the authors' decoder takes the encoder's first rates too)."""
    if config.drop_path_rate == 0:
        return [0.0] * num_layers
    if num_layers > config.num_hidden_layers:
        # The authors index the encoder's ramp with the decoder's layers, which is only defined up to its depth.
        raise ValueError(
            f"A {num_layers}-layer decoder takes the first stochastic-depth rates of the {config.num_hidden_layers}-"
            f"layer encoder, but there are only {config.num_hidden_layers}: set decoder_num_hidden_layers <= "
            f"{config.num_hidden_layers}, or drop_path_rate=0 (now {config.drop_path_rate})."
        )
    return torch.linspace(0, config.drop_path_rate, config.num_hidden_layers)[:num_layers].tolist()


class MampEncoder(nn.Module):
    """The encoder's stack of `num_hidden_layers` blocks."""

    def __init__(self, config: MampConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            MampLayer(config, config.hidden_size, config.num_attention_heads, config.intermediate_size, rate)
            for rate in stochastic_depth_rates(config, config.num_hidden_layers)
        )

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states, **kwargs)
        return hidden_states
