"""Configuration of the MAMP model family."""

from __future__ import annotations

from transformers import PretrainedConfig

MASKING_STRATEGIES = ("motion_aware", "random")
STREAMS = ("joints", "motion")
MOTION_PADDINGS = ("constant", "replicate")
MOTION_DIRECTIONS = ("forward", "backward")
CLASSIFIER_HEADS = ("linear_probe", "finetune")


class MampConfig(PretrainedConfig):
    r"""
    Configuration of a MAMP model (Masked Motion Predictors, Mao et al., ICCV 2023).

    The defaults are the paper's: a vanilla 8-layer transformer (width 256, 8 heads, MLP 1024) over
    120-frame NTU skeletons (25 joints, xyz) cut into segments of 4 frames, a 5-layer decoder, 90%
    motion-aware masking with tau 0.8, and the motion of the masked joints as the target.

    Args:
        num_channels (`int`, defaults to 3): coordinates per joint.
        num_joints (`int`, defaults to 25): joints per skeleton (NTU RGB+D layout by default).
        num_frames (`int`, defaults to 120): frames of the input sequence the position embeddings are
            made for. Other lengths (multiples of `temporal_patch_size`) are accepted; the temporal
            position embeddings are then interpolated.
        temporal_patch_size (`int`, defaults to 4): frames per segment; each joint of each segment is one token.
        joint_patch_size (`int`, defaults to 1): joints per token (the paper uses 1).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder dimensions.
        hidden_act (`str`, defaults to `"gelu"`): activation of the MLPs (exact GELU as in the authors' code).
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm.
        qkv_bias (`bool`, defaults to `True`): bias in the query/key/value projection.
        hidden_dropout_prob (`float`): dropout after the attention projection and in the MLPs.
        attention_probs_dropout_prob (`float`): dropout on the attention probabilities.
        drop_path_rate (`float`): stochastic depth, increasing linearly over the encoder's layers
            (0.3 for fine-tuning in the paper). The decoder's layers take the first rates of the same ramp, as
            in the authors' code.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal position embeddings and mask token.
        decoder_hidden_size, decoder_num_hidden_layers, decoder_num_attention_heads, decoder_intermediate_size:
            pre-training decoder dimensions (the authors' NTU-60 configs also use 3 decoder layers).
        mask_ratio (`float`, defaults to 0.9): fraction of tokens masked during pre-training.
        masking_strategy (`str`, defaults to `"motion_aware"`): `"motion_aware"` (Gumbel top-k on motion
            intensity, Section 3.4) or `"random"` (uniform, as in MAE).
        motion_aware_tau (`float`, defaults to 0.8): temperature of the motion-aware masking (0.75 for NTU-120).
        pretraining_input (`str`, defaults to `"joints"`): what the encoder sees during pre-training,
            `"joints"` or `"motion"` (Table 7 ablations).
        pretraining_target (`str`, defaults to `"motion"`): what the decoder predicts, `"motion"` (MAMP) or
            `"joints"` (SkeletonMAE-style self-reconstruction).
        motion_stride (`int`, defaults to 1): frame step of the motion (m in Eq. 2).
        motion_direction (`str`, defaults to `"forward"`): `"forward"` is the authors' code, x[t+m] - x[t] with the
            last m frames padded; `"backward"` is the paper's Eq. 2, x[t] - x[t-m] with the first m frames padded.
        motion_padding (`str`, defaults to `"constant"`): padding of the m frames without a difference, `"constant"`
            (zeros) or `"replicate"` (copies of the nearest m computed frames), Eq. 3.
        norm_target (`bool`, defaults to `True`): normalise each target patch by its own mean and std.
        pretraining_skip_absent_persons (`bool`, defaults to `False`): pre-training only; drop the person slots
            that are all zeros (the absent second body of single-person samples, about 80% of NTU-60) before
            masking, so that neither the encoder nor the decoder runs on them. On NTU-60 that is about 1.6x fewer
            sequences per batch, but it changes the objective: the authors' code also trains on the empty slots
            (predicting their zero motion), so losses and gradients differ from theirs. The pre-training outputs
            then have one row per present person slot instead of `batch * max_persons`.
        max_persons (`int`, defaults to 2): body slots per sample, as in the NTU files.
        classifier_head (`str`, defaults to `"linear_probe"`): `"linear_probe"` (BatchNorm without affine + linear on
            the pooled embedding) or `"finetune"` (the authors' MLP head: dropout, mean over time, linear to
            `classifier_hidden_size`, BatchNorm, ReLU, linear).
        classifier_hidden_size (`int`, defaults to 2048): hidden width of the fine-tune head.
        classifier_dropout (`float`, defaults to 0.3): dropout on the token features in the fine-tune head.
        label_smoothing (`float`, defaults to 0.0): label smoothing of the classification loss (0.1 to fine-tune).
    """

    model_type = "mamp"

    def __init__(
        self,
        num_channels: int = 3,
        num_joints: int = 25,
        num_frames: int = 120,
        temporal_patch_size: int = 4,
        joint_patch_size: int = 1,
        hidden_size: int = 256,
        num_hidden_layers: int = 8,
        num_attention_heads: int = 8,
        intermediate_size: int = 1024,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-5,
        qkv_bias: bool = True,
        hidden_dropout_prob: float = 0.0,
        attention_probs_dropout_prob: float = 0.0,
        drop_path_rate: float = 0.0,
        initializer_range: float = 0.02,
        decoder_hidden_size: int = 256,
        decoder_num_hidden_layers: int = 5,
        decoder_num_attention_heads: int = 8,
        decoder_intermediate_size: int = 1024,
        mask_ratio: float = 0.9,
        masking_strategy: str = "motion_aware",
        motion_aware_tau: float = 0.8,
        pretraining_input: str = "joints",
        pretraining_target: str = "motion",
        motion_stride: int = 1,
        motion_direction: str = "forward",
        motion_padding: str = "constant",
        norm_target: bool = True,
        pretraining_skip_absent_persons: bool = False,
        max_persons: int = 2,
        classifier_head: str = "linear_probe",
        classifier_hidden_size: int = 2048,
        classifier_dropout: float = 0.3,
        label_smoothing: float = 0.0,
        **kwargs,
    ):
        _check_choice("masking_strategy", masking_strategy, MASKING_STRATEGIES)
        _check_choice("pretraining_input", pretraining_input, STREAMS)
        _check_choice("pretraining_target", pretraining_target, STREAMS)
        _check_choice("motion_direction", motion_direction, MOTION_DIRECTIONS)
        _check_choice("motion_padding", motion_padding, MOTION_PADDINGS)
        _check_choice("classifier_head", classifier_head, CLASSIFIER_HEADS)
        if num_frames % temporal_patch_size != 0:
            raise ValueError(
                f"num_frames ({num_frames}) must be a multiple of temporal_patch_size ({temporal_patch_size})."
            )
        if num_joints % joint_patch_size != 0:
            raise ValueError(f"num_joints ({num_joints}) must be a multiple of joint_patch_size ({joint_patch_size}).")
        for name, width, heads in (
            ("hidden_size", hidden_size, num_attention_heads),
            ("decoder_hidden_size", decoder_hidden_size, decoder_num_attention_heads),
        ):
            if width % heads != 0:
                raise ValueError(f"{name} ({width}) must be divisible by its number of attention heads ({heads}).")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}.")
        if motion_stride < 1 or motion_stride >= num_frames:
            raise ValueError(f"motion_stride must be in [1, num_frames), got {motion_stride}.")
        if masking_strategy == "motion_aware" and motion_aware_tau <= 0:
            raise ValueError(f"motion_aware_tau must be > 0 for motion-aware masking, got {motion_aware_tau}.")

        self.num_channels = num_channels
        self.num_joints = num_joints
        self.num_frames = num_frames
        self.temporal_patch_size = temporal_patch_size
        self.joint_patch_size = joint_patch_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.qkv_bias = qkv_bias
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.drop_path_rate = drop_path_rate
        self.initializer_range = initializer_range
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_num_hidden_layers = decoder_num_hidden_layers
        self.decoder_num_attention_heads = decoder_num_attention_heads
        self.decoder_intermediate_size = decoder_intermediate_size
        self.mask_ratio = mask_ratio
        self.masking_strategy = masking_strategy
        self.motion_aware_tau = motion_aware_tau
        self.pretraining_input = pretraining_input
        self.pretraining_target = pretraining_target
        self.motion_stride = motion_stride
        self.motion_direction = motion_direction
        self.motion_padding = motion_padding
        self.norm_target = norm_target
        self.pretraining_skip_absent_persons = pretraining_skip_absent_persons
        self.max_persons = max_persons
        self.classifier_head = classifier_head
        self.classifier_hidden_size = classifier_hidden_size
        self.classifier_dropout = classifier_dropout
        self.label_smoothing = label_smoothing
        super().__init__(**kwargs)

    @property
    def num_temporal_patches(self) -> int:
        """Time segments of a `num_frames` input (T_e in the paper)."""
        return self.num_frames // self.temporal_patch_size

    @property
    def num_joint_patches(self) -> int:
        """Joint groups per segment (V in the paper, with one joint per token)."""
        return self.num_joints // self.joint_patch_size

    @property
    def patch_dim(self) -> int:
        """Values in one token: segment frames x joints per token x channels."""
        return self.temporal_patch_size * self.joint_patch_size * self.num_channels


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")
