"""Configuration of the MAMP model family: a `@strict` dataclass, validated however a value gets in."""

import math
from collections.abc import Callable
from typing import Any, Literal

from huggingface_hub.dataclasses import strict, validated_field
from huggingface_hub.errors import StrictDataclassError
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

from ._compat import generation_parameter_names, mark_as_strict_validator

MaskingStrategy = Literal["motion_aware", "random"]
Stream = Literal["joints", "motion"]
MotionDirection = Literal["forward", "backward"]
MotionPadding = Literal["constant", "replicate"]
ClassifierHead = Literal["linear_probe", "finetune"]

# Keyword arguments that transformers itself passes to a config (from `config.json`, `from_pretrained`, remote code)
# besides the dataclass fields; any other unknown keyword is a typo and is refused.
TRANSFORMERS_KWARGS = frozenset(
    {
        "model_type",
        "num_labels",
        "torch_dtype",
        "name_or_path",
        "_name_or_path",
        "_commit_hash",
        "output_attentions",
        "attn_implementation",
        "_attn_implementation_internal",
        "experts_implementation",
        "_experts_implementation_internal",
        "auto_map",
        "custom_pipelines",
        *generation_parameter_names(),
    }
)


class MampConfigError(StrictDataclassError, ValueError):
    """An invalid `MampConfig` value: a `ValueError` (as for any bad input here) and a transformers 5 strict
    dataclass error."""


# ----------------------------------------------------------------------------- field validators
# Each takes the value (already type-checked by `@strict` against the field's annotation) and raises ValueError.


def _at_least(minimum: int) -> Callable[[int], None]:
    def check(value: int) -> None:
        if value < minimum:
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}")

    return check


def _finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")


def _positive(value: float) -> None:
    if not value > 0:
        raise ValueError(f"must be > 0, got {value!r}")


def _probability(value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"must be in [0, 1), got {value!r}")


def _activation(value: str) -> None:
    if value not in ACT2FN:
        raise ValueError(f"must name an activation of transformers.activations.ACT2FN (e.g. 'gelu'), got {value!r}")


def _group_size(value: int | None) -> None:
    # A group of one sample has no variance to normalise by (and its unbiased running variance divides by zero).
    if value is not None and value < 2:
        raise ValueError(f"must be null (the whole batch) or an integer >= 2, got {value!r}")


def _count(default: int, minimum: int = 1) -> Any:
    return validated_field(_at_least(minimum), default=default)


def _positive_number(default: float) -> Any:
    return validated_field([_finite, _positive], default=default)


def _rate(default: float) -> Any:
    return validated_field([_finite, _probability], default=default)


@strict
class MampConfig(PreTrainedConfig):
    r"""
    Configuration of a MAMP model (Masked Motion Predictors, Mao et al., ICCV 2023).

    The defaults are the paper's: a vanilla 8-layer transformer (width 256, 8 heads, MLP 1024) over
    120-frame NTU skeletons (25 joints, xyz) cut into segments of 4 frames, a 5-layer decoder, 90%
    motion-aware masking with tau 0.8, and the motion of the masked joints as the target.

    Every field is checked (type, range, finiteness, allowed choices) when the config is built, when a field is
    assigned, and when a `config.json` is loaded; the rules between fields (listed under `validate_*`) are checked
    when the config is built and again when a model is built from it. An invalid value raises `MampConfigError`
    (a `ValueError`) naming the field; an unknown keyword argument is refused.

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
            in the authors' code, so the decoder may not be deeper than the encoder.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal position embeddings and mask token.
        decoder_hidden_size, decoder_num_hidden_layers, decoder_num_attention_heads, decoder_intermediate_size:
            pre-training decoder dimensions (the authors' NTU-60 configs also use 3 decoder layers).
        mask_ratio (`float`, defaults to 0.9): fraction of tokens masked during pre-training; at least one token
            must be masked and one kept visible.
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
        classifier_batch_norm_group_size (`int`, *optional*): in training, the heads' BatchNorm normalises each
            run of this many consecutive samples of the batch with its own statistics ("ghost" BatchNorm), and
            updates its running statistics from the first run only. That is what the authors' per-GPU BatchNorm did
            under DistributedDataParallel without SyncBN (each GPU normalised its own 24-clip fine-tuning or
            128-clip probe batch; the buffers of rank 0 were broadcast to the others before every forward, so
            rank 0's batch alone made the saved running statistics), reproduced on fewer GPUs when the batch
            holds the processes' batches one after another. The training batch must be a multiple of it.
            `None` (default): the whole batch, as `nn.BatchNorm1d`. Evaluation is the same either way.
    """

    model_type = "mamp"

    num_channels: int = _count(3)
    num_joints: int = _count(25)
    num_frames: int = _count(120)
    temporal_patch_size: int = _count(4)
    joint_patch_size: int = _count(1)
    hidden_size: int = _count(256)
    num_hidden_layers: int = _count(8)
    num_attention_heads: int = _count(8)
    intermediate_size: int = _count(1024)
    hidden_act: str = validated_field(_activation, default="gelu")
    layer_norm_eps: float | int = _positive_number(1e-5)
    qkv_bias: bool = True
    hidden_dropout_prob: float | int = _rate(0.0)
    attention_probs_dropout_prob: float | int = _rate(0.0)
    drop_path_rate: float | int = _rate(0.0)
    initializer_range: float | int = _positive_number(0.02)
    decoder_hidden_size: int = _count(256)
    decoder_num_hidden_layers: int = _count(5)
    decoder_num_attention_heads: int = _count(8)
    decoder_intermediate_size: int = _count(1024)
    mask_ratio: float | int = _rate(0.9)
    masking_strategy: MaskingStrategy = "motion_aware"
    motion_aware_tau: float | int = _positive_number(0.8)
    pretraining_input: Stream = "joints"
    pretraining_target: Stream = "motion"
    motion_stride: int = _count(1)
    motion_direction: MotionDirection = "forward"
    motion_padding: MotionPadding = "constant"
    norm_target: bool = True
    pretraining_skip_absent_persons: bool = False
    max_persons: int = _count(2)
    classifier_head: ClassifierHead = "linear_probe"
    classifier_hidden_size: int = _count(2048)
    classifier_dropout: float | int = _rate(0.3)
    label_smoothing: float | int = _rate(0.0)
    classifier_batch_norm_group_size: int | None = validated_field(_group_size, default=None)

    def __post_init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - TRANSFORMERS_KWARGS)
        if unknown:
            raise MampConfigError(
                f"MampConfig got unknown options {unknown}; check the spelling against the fields listed in "
                "MampConfig's docstring."
            )
        if kwargs.get("model_type", self.model_type) != self.model_type:
            raise MampConfigError(
                f"This is a config of model_type {kwargs['model_type']!r}, not {self.model_type!r}: load it with "
                "its own config class (AutoConfig)."
            )
        kwargs.pop("model_type", None)
        super().__post_init__(**kwargs)

    # ------------------------------------------------------------------ rules between fields (run by `validate()`)

    def validate_patches(self) -> None:
        if self.num_frames % self.temporal_patch_size:
            raise ValueError(
                f"num_frames ({self.num_frames}) must be a multiple of temporal_patch_size ({self.temporal_patch_size})."
            )
        if self.num_joints % self.joint_patch_size:
            raise ValueError(
                f"num_joints ({self.num_joints}) must be a multiple of joint_patch_size ({self.joint_patch_size})."
            )

    def validate_attention_heads(self) -> None:
        for name, width, heads in (
            ("hidden_size", self.hidden_size, self.num_attention_heads),
            ("decoder_hidden_size", self.decoder_hidden_size, self.decoder_num_attention_heads),
        ):
            if width % heads:
                raise ValueError(f"{name} ({width}) must be divisible by its number of attention heads ({heads}).")

    def validate_masking(self) -> None:
        tokens = self.num_temporal_patches * self.num_joint_patches
        visible = self.num_visible_tokens(tokens)
        if not 0 < visible < tokens:
            raise ValueError(
                f"mask_ratio={self.mask_ratio} keeps {visible} of the {tokens} tokens of a {self.num_frames}-frame "
                "sequence visible; pre-training needs at least one visible and one masked token (the paper: 0.9)."
            )
        if self.masking_strategy == "motion_aware" and self.num_temporal_patches < 2:
            raise ValueError(
                f"Motion-aware masking compares consecutive time segments: num_frames ({self.num_frames}) must be at "
                f"least 2 x temporal_patch_size ({self.temporal_patch_size})."
            )

    def validate_motion_stride(self) -> None:
        if self.motion_stride >= self.num_frames:
            raise ValueError(
                f"motion_stride ({self.motion_stride}) must be smaller than num_frames ({self.num_frames})."
            )

    def validate_labels(self) -> None:
        if self.id2label is None:
            raise ValueError("id2label is None; pass num_labels=N (names LABEL_0..) or id2label={0: name, ...}.")
        if self.num_labels < 1:
            raise ValueError(f"num_labels must be at least 1, got {self.num_labels}.")
        if self.id2label is not None and sorted(self.id2label) != list(range(len(self.id2label))):
            raise ValueError(
                f"id2label keys must be the class indices 0..{len(self.id2label) - 1}, got {sorted(self.id2label)}."
            )

    # ------------------------------------------------------------------ derived sizes

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

    def num_visible_tokens(self, num_tokens: int) -> int:
        """Tokens the pre-training encoder sees out of `num_tokens` (the authors' `int(L * (1 - mask_ratio))`)."""
        return int(num_tokens * (1 - self.mask_ratio))


def _raise_value_errors(cls: type[MampConfig]) -> type[MampConfig]:
    """Re-raise `@strict`'s validation errors as `MampConfigError`, with the field and value in one sentence."""
    strict_setattr, strict_validate = cls.__setattr__, cls.validate

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            strict_setattr(self, name, value)
        except StrictDataclassError as error:
            cause = error.__cause__ or error
            raise MampConfigError(f"Invalid MampConfig.{name}={value!r}: {cause}.") from cause

    def validate(self) -> None:
        try:
            strict_validate(self)
        except StrictDataclassError as error:
            cause = error.__cause__ or error
            raise MampConfigError(f"Invalid MampConfig: {cause}") from cause

    cls.__setattr__, cls.validate = __setattr__, mark_as_strict_validator(validate)
    return cls


MampConfig = _raise_value_errors(MampConfig)

__all__ = ["MampConfig", "MampConfigError"]
