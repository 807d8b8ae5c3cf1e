"""FLOPs the benchmarks count, and the matmul peak they are compared with.

Counted, not measured: the multiply-adds (2 FLOPs each) of the matrix products of the model, from its config.
Normalisations, activations, softmax, masking and the optimizer are left out (a few % of the total).

    layer(n, w, i) = n * (8 w^2 + 4 w i) + 4 n^2 w        (qkv and output projection, MLP; scores and weighted sum)
    encoder(n)     = 2 L P D + E * layer(n, D, I)         (joint embedding of all L tokens, E blocks on n tokens)
    features       = encoder(L)                          per person slot encoded, forward only
    pre-training   = 3 * M * [ encoder(L_v) + 2 L_v D D_d + E_d * layer(L, D_d, I_d) + 2 L D_d P ]   per clip

with L = T_e * V_p tokens (750 for the default config), L_v the visible ones (74 at mask ratio 0.9: `MampConfig.num_visible_tokens`), P values per
token (12), widths D / D_d, MLP sizes I / I_d, depths E / E_d, M person slots per clip; 3 = forward + backward
(two products of the forward's size). The default config: 14.05 GFLOP per person slot for feature extraction, 58.6
GFLOP per clip (both slots, the paper's 5-layer decoder) for a pre-training step; 37.6 with the NTU-60 recipes'
3-layer decoder.

Feature extraction counts the person slots an implementation encodes: every slot (the authors', and ours without
`present_persons`), or the present ones plus the one empty slot whose features fill the absent ones (ours given the
processor's `present_persons`). A pre-training step encodes every slot, absent or not, unless
`pretraining_skip_absent_persons` drops the absent ones.

The peak is measured in the same run: a loop of `(rows x n) @ (n x n)` products (rows = 6,000, about the tokens of
eight sequences; n = the model's width and 2,048), the best rate of the two sizes. On a GPU, `benchmarks/gpu.sh` also
quotes the card's data sheet.
"""

from __future__ import annotations

import time

import torch

from mamp_hub import MampConfig


def layer_flops(tokens: int, width: int, intermediate: int) -> int:
    """Matmul FLOPs of one transformer block's forward on one sequence of `tokens` tokens."""
    return tokens * (8 * width**2 + 4 * width * intermediate) + 4 * tokens**2 * width


def encoder_flops(config: MampConfig, tokens: int) -> int:
    """Forward matmul FLOPs of the joint embedding (all tokens) and the encoder on `tokens` of them, one sequence."""
    all_tokens = config.num_temporal_patches * config.num_joint_patches
    return 2 * all_tokens * config.patch_dim * config.hidden_size + config.num_hidden_layers * layer_flops(
        tokens, config.hidden_size, config.intermediate_size
    )


def feature_flops_per_slot(config: MampConfig) -> int:
    """Forward matmul FLOPs of encoding one person slot (feature extraction)."""
    return encoder_flops(config, config.num_temporal_patches * config.num_joint_patches)


def encoded_slots(present: int, slots: int, present_persons_given: bool) -> int:
    """Person slots a feature call encodes: every one of `slots`, or, given `present_persons` (PyTorch), the `present`
    ones and the one empty slot whose features fill the absent ones (`MampModel._encode_present_persons`)."""
    return present + 1 if present_persons_given else slots


def pretraining_flops_per_sequence(config: MampConfig) -> int:
    """Matmul FLOPs of one training step (forward + backward) on one person sequence."""
    tokens = config.num_temporal_patches * config.num_joint_patches
    visible = config.num_visible_tokens(tokens)
    width, decoder_width = config.hidden_size, config.decoder_hidden_size
    decoder = (
        2 * visible * width * decoder_width
        + config.decoder_num_hidden_layers * layer_flops(tokens, decoder_width, config.decoder_intermediate_size)
        + 2 * tokens * decoder_width * config.patch_dim
    )
    return 3 * (encoder_flops(config, visible) + decoder)


def pretraining_flops_per_clip(config: MampConfig) -> int:
    """Matmul FLOPs of one training step on one clip of `config.max_persons` person slots."""
    return config.max_persons * pretraining_flops_per_sequence(config)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    width: int = 256,
    rows: int = 6000,
    seconds: float = 2.0,
) -> float:
    """GFLOP/s of a loop of `(rows x width) @ (width x width)` products on `device` (after one untimed product)."""
    device = torch.device(device)
    a = torch.randn(rows, width, device=device, dtype=dtype)
    b = torch.randn(width, width, device=device, dtype=dtype)
    out = torch.empty(rows, width, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    _synchronize(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(4):
            torch.mm(a, b, out=out)
        count += 4
        _synchronize(device)
    return 2 * rows * width * width * count / (time.perf_counter() - start) / 1e9


def matmul_peak(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, widths=(256, 2048), seconds: float = 2.0
) -> dict[str, float]:
    """The measured matmul rates (GFLOP/s) at each width and their best, `{"256": ..., "2048": ..., "peak": ...}`."""
    rates = {str(width): round(matmul_gflops(device, dtype, width, seconds=seconds), 1) for width in widths}
    return {**rates, "peak": max(rates.values())}
