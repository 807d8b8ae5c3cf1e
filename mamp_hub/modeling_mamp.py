"""MAMP: Masked Motion Predictors (Mao et al., ICCV 2023) in the transformers `PreTrainedModel` API.

Sections follow the paper: 3.2 joint embedding (`layers/embeddings.py`), 3.3 motion extraction and 3.4 motion-aware
masking (here), 3.5 encoder (`layers/transformer.py`), decoder and motion prediction head (`layers/decoder.py`), and
the classification heads (`layers/heads.py`). Numerics follow the authors' code, which produced
the published numbers: tokens are time-major (token `t * V + v`), persons are folded into the batch
as row `n * M + m`, and motion is a forward difference with the last frames padded.

No forward reads tensor values on the host: input checks look at shapes and dtypes, and at values only for CPU
tensors outside `torch.compile` (where reading them costs no device synchronisation). The eval-mode skip of
absent persons gets the present slots from the caller (`present_persons`, which `MampSkeletonProcessor` returns),
so the model never has to count them.

Shapes: B batch, M persons, T frames, V joints, C channels, D hidden size, T_e = T / temporal_patch_size
segments, V_p = V / joint_patch_size joint groups, L = T_e * V_p tokens, P = values per token, N = B * M
person sequences.
"""

from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from ._compat import LoadingReportHook, is_data_parallel_replica
from .configuration_mamp import MampConfig
from .layers.decoder import MampDecoder
from .layers.embeddings import MampEmbeddings, patchify
from .layers.heads import CLASSIFIER_HEADS, MampLinearProbeHead
from .layers.transformer import MampEncoder, MampLayer, MampSelfAttention
from .skeletons.layouts import present_person_slots

logger = logging.get_logger(__name__)

# Label value left out of the classification loss (PyTorch's and transformers' convention).
IGNORE_INDEX = -100
# Tokens encoded at a time in inference (`MampModel._encode_in_blocks`): 4 sequences of the default 750 tokens.
INFERENCE_BLOCK_TOKENS = 3000

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
            Embedding output and each layer's output, each `(N, L, D)` (persons folded into the batch).
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned with `output_attentions=True`):
            Each layer's attention probabilities, `(N, heads, L, L)`.
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
        logits (`torch.FloatTensor` of shape `(N, L, P)`):
            Predicted target (motion by default) of every token, in token order.
        mask (`torch.FloatTensor` of shape `(N, L)`):
            1 for masked tokens, 0 for visible ones.
        ids_restore (`torch.LongTensor` of shape `(N, L)`):
            Permutation that puts the shuffled tokens (visible first) back in token order.
        encoder_last_hidden_state (`torch.FloatTensor` of shape `(N, L_visible, D)`):
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
# Input checks: shapes and dtypes always; values only where reading them is free (CPU, not compiling)
# ---------------------------------------------------------------------------------------------


def _values_readable(tensor: torch.Tensor) -> bool:
    """Whether checking `tensor`'s values costs no device synchronisation and no graph break."""
    return tensor.device.type == "cpu" and not torch.compiler.is_compiling()


def check_skeleton_values(skeleton_values: torch.Tensor, config: MampConfig) -> torch.Tensor:
    """Validate model input and return it as `(B, M, T, V, C)`; a 4-D `(B, T, V, C)` input is one person."""
    if not isinstance(skeleton_values, torch.Tensor):
        raise ValueError(
            f"skeleton_values must be a torch.Tensor of shape (batch, persons, frames, joints, channels), got "
            f"{type(skeleton_values).__name__}. Use MampSkeletonProcessor or torch.as_tensor to convert arrays."
        )
    if skeleton_values.dtype == torch.bool or skeleton_values.is_complex():
        raise ValueError(f"skeleton_values must hold real coordinates, got dtype {skeleton_values.dtype}.")
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
    if frames == 0 or frames % config.temporal_patch_size != 0:
        raise ValueError(
            f"The number of frames ({frames}) must be a positive multiple of temporal_patch_size "
            f"({config.temporal_patch_size}); resample the sequence (MampSkeletonProcessor does) to "
            f"{config.num_frames} frames."
        )
    if _values_readable(skeleton_values) and not torch.isfinite(skeleton_values).all():
        raise ValueError("skeleton_values contains NaN or infinite values; replace missing joints with zeros.")
    return skeleton_values


def check_present_persons(present_persons: torch.Tensor, num_slots: int) -> None:
    """`present_persons` must be ascending flat slot indices `(P,)` in `[0, num_slots)`, as the processor gives."""
    if not isinstance(present_persons, torch.Tensor) or present_persons.dtype != torch.long:
        raise ValueError(
            f"present_persons must be a torch.LongTensor of person-slot indices, got {type(present_persons).__name__}"
            f"{f' of dtype {present_persons.dtype}' if isinstance(present_persons, torch.Tensor) else ''}; pass the "
            "processor's present_persons, or leave it out."
        )
    if present_persons.ndim != 1 or len(present_persons) > num_slots:
        raise ValueError(
            f"present_persons must have shape (P,) with P <= batch * persons = {num_slots}, got "
            f"{tuple(present_persons.shape)}."
        )
    if _values_readable(present_persons) and len(present_persons):
        ascending = (present_persons[1:] > present_persons[:-1]).all()
        if not ascending or present_persons[0] < 0 or present_persons[-1] >= num_slots:
            raise ValueError(
                f"present_persons must be ascending indices in [0, {num_slots}), got {present_persons.tolist()}."
            )


def check_noise(noise: torch.Tensor, shape: tuple[int, int]) -> None:
    """Masking noise: uniform numbers in [0, 1) of shape `(N, L)`. Only a caller who wants fixed masks passes it (it
    is drawn otherwise), so its values are checked on any device, except inside `torch.compile`."""
    if not isinstance(noise, torch.Tensor) or not noise.is_floating_point():
        raise ValueError(
            f"noise must be a floating-point torch.Tensor of uniform numbers in [0, 1), got "
            f"{getattr(noise, 'dtype', type(noise).__name__)}."
        )
    if tuple(noise.shape) != shape:
        raise ValueError(f"noise must have shape (batch * persons, tokens) = {shape}, got {tuple(noise.shape)}.")
    if not torch.compiler.is_compiling() and not ((noise >= 0) & (noise < 1)).all():  # also False for NaN
        raise ValueError(
            "noise must hold numbers in [0, 1) (e.g. torch.rand); it has NaN or values outside that range, which "
            "would mask the same tokens in every row."
        )


def check_labels(labels: torch.Tensor, batch_size: int, num_labels: int) -> None:
    """Class indices `(B,)` in `[0, num_labels)`, or `IGNORE_INDEX` (-100) for a clip left out of the loss."""
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"labels must be integer class indices (torch.long), got {getattr(labels, 'dtype', type(labels).__name__)};"
            " for one-hot rows pass labels.argmax(-1)."
        )
    if labels.dtype == torch.bool or tuple(labels.shape) != (batch_size,):
        raise ValueError(
            f"labels must be class indices of shape ({batch_size},), got {labels.dtype} of shape {tuple(labels.shape)}."
        )
    if _values_readable(labels):
        bad = labels[(labels != IGNORE_INDEX) & ((labels < 0) | (labels >= num_labels))]
        if len(bad):
            raise ValueError(
                f"labels {bad.unique().tolist()[:10]} are outside the model's classes [0, {num_labels}); use -100 "
                "for a clip to leave out of the loss."
            )


# ---------------------------------------------------------------------------------------------
# 3.2 Segment-wise joint embedding
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# 3.3 Motion: the prediction target
# ---------------------------------------------------------------------------------------------


def extract_motion(
    skeletons: torch.Tensor, stride: int = 1, direction: str = "forward", padding: str = "constant"
) -> torch.Tensor:
    """Temporal difference of `(N, T, V, C)` sequences along frames, same shape (Eq. 2 and 3).

    `"forward"`: `x[t + stride] - x[t]`, the last `stride` frames padded (the authors' code);
    `"backward"`: `x[t] - x[t - stride]`, the first `stride` frames padded (the paper's Eq. 2).
    Padding is zeros (`"constant"`) or a copy of the nearest `stride` computed frames (`"replicate"`).
    """
    if direction not in ("forward", "backward") or padding not in ("constant", "replicate"):
        raise ValueError(
            f"direction must be 'forward' or 'backward' and padding 'constant' or 'replicate', got {direction!r} "
            f"and {padding!r}."
        )
    if not 0 < stride < skeletons.shape[1]:
        raise ValueError(f"The motion stride ({stride}) must be at least 1 and below the {skeletons.shape[1]} frames.")
    difference = skeletons[:, stride:] - skeletons[:, :-stride]
    if padding == "constant":
        pad = torch.zeros_like(difference[:, :stride])
    else:  # replicate the computed frames next to the padded end
        pad = difference[:, -stride:] if direction == "forward" else difference[:, :stride]
    parts = (difference, pad) if direction == "forward" else (pad, difference)
    return torch.cat(parts, dim=1)


def normalize_patches(patches: torch.Tensor) -> torch.Tensor:
    """Standardise each `(..., P)` patch by its own mean and (unbiased) variance, as MAE's `norm_pix_loss`."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + 1e-6) ** 0.5


def masked_mse_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked tokens of the per-token mean squared error; `(N, L, P)` predictions, `(N, L)` mask."""
    loss_per_token = (prediction - target).pow(2).mean(dim=-1)
    return (loss_per_token * mask).sum() / mask.sum()


# ---------------------------------------------------------------------------------------------
# 3.4 Motion-aware masking
# ---------------------------------------------------------------------------------------------


def motion_intensity(joint_patches: torch.Tensor) -> torch.Tensor:
    """Motion intensity of each token (Eq. 4), `(N, L)` from `(N, T_e, V_p, P)` joint patches: the mean absolute
    change of its values from the previous segment; the first segment copies the second's."""
    intensity = (joint_patches[:, 1:] - joint_patches[:, :-1]).abs().mean(dim=-1)
    return torch.cat([intensity[:, :1], intensity], dim=1).flatten(1)


def masking_probabilities(joint_patches: torch.Tensor, tau: float) -> torch.Tensor:
    """Probability of each token to be masked (Eq. 5), `(N, L)`: `softmax(I / (max I * tau))` over the tokens of
    a sequence, with I the motion intensity; a lower `tau` concentrates the masking on fast-moving joints."""
    intensity = motion_intensity(joint_patches)
    return F.softmax(intensity / (intensity.amax(dim=-1, keepdim=True) * tau + 1e-10), dim=-1)


def gumbel_masking_scores(probabilities: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Gumbel-perturbed log probabilities `(N, L)` from uniform `noise` (Eq. 6): the tokens with the highest scores
    are a draw without replacement from `probabilities`, so they are masked and the lowest kept."""
    # log(softmax) as computed, not log_softmax: the authors' rounding, so that rankings match theirs bit for bit.
    return torch.log(probabilities) - torch.log(-torch.log(noise + 1e-10) + 1e-10)


def random_masking(scores: torch.Tensor, num_visible: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the `num_visible` lowest-scoring tokens of each sequence: ViT-MAE's `random_masking` with the scores
    given (uniform noise gives MAE's), returning indices, so that the encoder gathers the kept tokens it embeds.

    Args:
        scores: `(N, L)` masking scores.
        num_visible: tokens kept per sequence.

    Returns:
        ids_keep `(N, num_visible)`, mask `(N, L)` (1 = masked, in the scores' dtype) and ids_restore `(N, L)`, the
        permutation that puts the shuffled tokens (kept first) back in token order.
    """
    ids_shuffle = torch.argsort(scores, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = (ids_restore >= num_visible).to(scores.dtype)
    return ids_shuffle[:, :num_visible], mask, ids_restore


# ---------------------------------------------------------------------------------------------
# 3.5 Transformer blocks
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Base class and encoder model
# ---------------------------------------------------------------------------------------------


# Parameter names of checkpoints written by earlier versions -> today's, as regular expressions for transformers'
# `from_pretrained(key_mapping=...)`: before 0.2 the decoder's blocks were a second encoder named `transformer`.
LEGACY_KEY_MAPPING = {r"decoder\.transformer\.layers\.": "decoder.decoder_layers."}
# `from_pretrained(expect_new_head=True)` while it runs: read by `adjust_loading_report`, which transformers calls on
# the model that `from_pretrained` builds, before that call returns.
_EXPECT_NEW_HEAD: ContextVar[bool] = ContextVar("expect_new_head", default=False)


class MampPreTrainedModel(LoadingReportHook, PreTrainedModel):
    config_class = MampConfig
    config: MampConfig
    base_model_prefix = "mamp"
    main_input_name = "skeleton_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MampLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # Encoder layers only: the pre-training decoder is built of the same layers, and its states are not features.
    _can_record_outputs = {
        "hidden_states": OutputRecorder(MampLayer, layer_name="encoder"),
        "attentions": OutputRecorder(MampSelfAttention, index=1, layer_name="encoder"),
    }
    # The losses are means over the batch, not sums for Trainer to divide by `num_items_in_batch`: Trainer must scale
    # them for gradient accumulation itself.
    accepts_loss_kwargs = False
    # The pre-training decoder is dropped when an encoder or classifier is loaded from a pre-trained folder.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\."]

    def __init__(self, config: MampConfig, *inputs, **kwargs):
        # The rules between fields once more: attributes (or `from_pretrained` overrides) may have changed since the
        # config was built, and each of them is checked only on its own.
        config.validate()
        super().__init__(config, *inputs, **kwargs)

    @classmethod
    def from_pretrained(cls, *args, key_mapping: dict[str, str] | None = None, expect_new_head: bool = False, **kwargs):
        """`PreTrainedModel.from_pretrained`, which also loads the parameter names of earlier versions
        (`LEGACY_KEY_MAPPING`, before any `key_mapping` given).

        A head that the checkpoint lacks (a classifier loaded from a pre-trained encoder) is newly initialised, with
        a warning to train it; `expect_new_head=True` says that this is the intent (a linear probe or fine-tuning
        from a pre-trained checkpoint), and the new head is then reported at INFO level instead."""
        token = _EXPECT_NEW_HEAD.set(bool(expect_new_head))
        try:
            return super().from_pretrained(*args, key_mapping={**LEGACY_KEY_MAPPING, **(key_mapping or {})}, **kwargs)
        finally:
            _EXPECT_NEW_HEAD.reset(token)

    def adjust_loading_report(self, loading_info) -> None:
        """Run just before transformers logs its loading report (`LoadingReportHook`). A checkpoint of another task
        differs from this model by whole heads only: this model's head is new (a classifier on a pre-trained encoder)
        or the checkpoint's is unused (features from a classifier). That is said in one line instead of a table of
        MISSING / UNEXPECTED keys; any other difference (encoder weights, part of a head, shapes) keeps the report."""
        heads = ("classifier.", "decoder.")
        new, unused = loading_info.missing_keys, loading_info.unexpected_keys
        own_head = {key for key in self.state_dict() if key.startswith(heads)}
        if loading_info.mismatched_keys or (new and new != own_head) or not all(k.startswith(heads) for k in unused):
            return
        if new:
            head = next(iter(new)).split(".")[0]
            if _EXPECT_NEW_HEAD.get():
                logger.info(f"{type(self).__name__}: a new {head} was initialised on the checkpoint's encoder.")
            else:
                logger.warning(
                    f"{type(self).__name__}: the checkpoint has no {head} weights, so a new {head} was initialised; "
                    "train it before use."
                )
        if unused:
            head = ", ".join(sorted({key.split(".")[0] for key in unused}))
            logger.info(f"{type(self).__name__}: the checkpoint's {head} weights are not used by this model.")
        loading_info.missing_keys, loading_info.unexpected_keys = set(), set()

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
    authors' code. In eval mode, given `present_persons`, an all-zero person slot (the absent second body of NTU
    files) gives the same features whatever the sample, so they are computed once per batch instead of once per slot.
    """

    def __init__(self, config: MampConfig):
        super().__init__(config)
        self.embeddings = MampEmbeddings(config)
        self.encoder = MampEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def encode(
        self, patches: torch.Tensor, ids_keep: torch.Tensor | None = None, **kwargs: Unpack[TransformersKwargs]
    ) -> torch.Tensor:
        """The encoder entry point of every model: embed `(N, T_e, V_p, P)` patches, keep the tokens `ids_keep`
        `(N, L_visible)` if given (pre-training), run the blocks and the final norm: `(N, L or L_visible, D)`."""
        tokens = self.embeddings(patches)
        if ids_keep is not None:
            tokens = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        return self.layernorm(self.encoder(tokens, **kwargs))

    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        skeleton_values: torch.Tensor,
        present_persons: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MampModelOutput:
        r"""
        Args:
            skeleton_values (`torch.FloatTensor` of shape `(B, M, T, V, C)` or `(B, T, V, C)`):
                Skeleton sequences, e.g. from `MampSkeletonProcessor`. Absent persons are all zeros.
            present_persons (`torch.LongTensor` of shape `(P,)`, *optional*):
                Ascending flat indices `b * M + m` of the person slots that are not all zeros, as the processor
                returns them. In eval mode only those are encoded, plus one empty slot whose features fill the others
                (the same numbers, fewer sequences); left out, every slot is encoded.
        """
        config = self.config
        skeletons = check_skeleton_values(skeleton_values, config).to(self.embeddings.projection.weight.dtype)
        batch, persons, frames = skeletons.shape[:3]
        skeletons = skeletons.flatten(0, 1)
        recording = kwargs.get("output_hidden_states", config.output_hidden_states) or kwargs.get(
            "output_attentions", config.output_attentions
        )
        present_persons = self._own_present_persons(present_persons, skeletons.shape[0])
        if self.training or recording:  # recorded states must cover every slot, in one pass
            hidden_states = self.encode(
                patchify(skeletons, config.temporal_patch_size, config.joint_patch_size), **kwargs
            )
        elif present_persons is None:
            hidden_states = self._encode_in_blocks(
                patchify(skeletons, config.temporal_patch_size, config.joint_patch_size), **kwargs
            )
        else:
            hidden_states = self._encode_present_persons(skeletons, present_persons, **kwargs)

        last_hidden_state = hidden_states.view(
            batch, persons, frames // config.temporal_patch_size, config.num_joint_patches, -1
        )
        return MampModelOutput(last_hidden_state=last_hidden_state, pooler_output=last_hidden_state.mean(dim=(1, 2, 3)))

    def _own_present_persons(self, present_persons: torch.Tensor | None, num_slots: int) -> torch.Tensor | None:
        """The checked `present_persons`, or None where they cannot belong to this batch: `nn.DataParallel` (which
        Trainer uses on several GPUs without torchrun) splits every input along its first dimension, so a replica
        gets a slice of the indices that does not match its slice of the batch."""
        if present_persons is None or is_data_parallel_replica(self):
            return None
        check_present_persons(present_persons, num_slots)
        return present_persons

    def _encode_in_blocks(self, patches: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        """`encode` for inference, `INFERENCE_BLOCK_TOKENS` tokens at a time: `(N, T_e, V_p, P)` -> `(N, L, D)`.

        Every block runs through all the layers while its activations (about 12 MB for 3,000 tokens at the default
        width) stay in the CPU's cache; the whole batch at once streams them through memory at every layer. On a
        2-core EPYC this took feature extraction from 98 to 124 GFLOP/s (benchmarks/README.md), the same numbers.
        Sequences are independent in the encoder, so the result is that of one pass. Other devices take one pass (a
        GPU wants large kernels, not cache-sized ones), and so do traced and compiled graphs: their batch size is
        symbolic."""
        if torch.compiler.is_compiling() or torch.jit.is_tracing() or patches.device.type != "cpu":
            return self.encode(patches, **kwargs)  # decided before anything reads the (symbolic) batch size
        per_block = max(1, INFERENCE_BLOCK_TOKENS // (patches.shape[1] * patches.shape[2]))
        if len(patches) <= per_block:
            return self.encode(patches, **kwargs)
        return torch.cat([self.encode(block, **kwargs) for block in patches.split(per_block)])

    def _encode_present_persons(
        self, skeletons: torch.Tensor, present_persons: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> torch.Tensor:
        """Encode the present slots `(P,)` of `(N, T, V, C)` skeletons and one empty slot, whose features fill every
        absent slot: `(N, L, D)`. Shapes come from `present_persons`' length, so nothing is read from the device."""
        num_present = len(present_persons)
        rows = torch.cat([skeletons.index_select(0, present_persons), skeletons.new_zeros(1, *skeletons.shape[1:])])
        features = self._encode_in_blocks(
            patchify(rows, self.config.temporal_patch_size, self.config.joint_patch_size), **kwargs
        )
        # One gather: a present slot reads its own row, an absent one the empty slot's (the last row). (Writing
        # into an expanded view of that row instead is miscompiled by torch.compile's inductor in torch 2.13.)
        source = torch.full((len(skeletons),), num_present, dtype=torch.long, device=skeletons.device)
        source = source.index_copy(0, present_persons, torch.arange(num_present, device=skeletons.device))
        return features[source]


# ---------------------------------------------------------------------------------------------
# 3.5 Pre-training: decoder and motion prediction
# ---------------------------------------------------------------------------------------------


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
        """Per-token scores `(N, L)` of `(N, T_e, V_p, P)` joint patches; the lowest `(1 - mask_ratio)` fraction is
        kept visible: Gumbel-perturbed motion-aware probabilities (Eq. 4-6), or the uniform noise itself."""
        if self.config.masking_strategy == "motion_aware":
            probabilities = masking_probabilities(joint_patches, self.config.motion_aware_tau)
            return gumbel_masking_scores(probabilities, noise)
        if self.config.masking_strategy == "random":
            return noise
        raise ValueError(f"Unknown masking_strategy {self.config.masking_strategy!r}.")  # the config refuses it

    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        skeleton_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        present_persons: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MampForPreTrainingOutput:
        r"""
        Args:
            skeleton_values (`torch.FloatTensor` of shape `(B, M, T, V, C)` or `(B, T, V, C)`): skeleton sequences.
            noise (`torch.FloatTensor` of shape `(B * M, L)`, *optional*): uniform numbers in [0, 1), one row per
                person sequence, that decide the masking; drawn with `torch.rand` when not given.
            present_persons (`torch.LongTensor` of shape `(P,)`, *optional*): the processor's present person slots;
                used with `config.pretraining_skip_absent_persons` (found here, at the cost of reading the input,
                when not given).
            labels: ignored (pre-training uses no labels); accepted so that a labelled data set can feed it.
        """
        config = self.config
        skeletons, noise = self._person_sequences(skeleton_values, noise, present_persons)  # (N, T, V, C)
        joint_patches = patchify(skeletons, config.temporal_patch_size, config.joint_patch_size)  # 3.2
        motion_patches = self._motion_patches(skeletons)  # 3.3
        encoder_input = joint_patches if config.pretraining_input == "joints" else motion_patches
        target = joint_patches if config.pretraining_target == "joints" else motion_patches

        num_tokens = joint_patches.shape[1] * joint_patches.shape[2]
        num_visible = self._num_visible(num_tokens, joint_patches.shape[1])
        if noise is None:
            noise = torch.rand(len(skeletons), num_tokens, device=skeletons.device)
        scores = self.masking_scores(joint_patches, noise.to(skeletons.device))  # 3.4
        ids_keep, mask, ids_restore = random_masking(scores, num_visible)

        latent = self.mamp.encode(encoder_input, ids_keep, **kwargs)  # 3.5
        prediction = self.decoder(latent, ids_restore, joint_patches.shape[1])
        target = target.flatten(1, 2)
        if config.norm_target:
            target = normalize_patches(target)
        loss = masked_mse_loss(prediction, target, mask)
        return MampForPreTrainingOutput(
            loss=loss, logits=prediction, mask=mask, ids_restore=ids_restore, encoder_last_hidden_state=latent
        )

    def _num_visible(self, num_tokens: int, num_segments: int) -> int:
        if self.config.masking_strategy == "motion_aware" and num_segments < 2:
            raise ValueError(
                f"Motion-aware masking compares consecutive time segments, so it needs at least 2 of them "
                f"({2 * self.config.temporal_patch_size} frames); this input has {num_segments}."
            )
        num_visible = self.config.num_visible_tokens(num_tokens)
        if not 0 < num_visible < num_tokens:
            raise ValueError(
                f"mask_ratio={self.config.mask_ratio} keeps {num_visible} of the {num_tokens} tokens of this input "
                "visible; pass longer sequences (at least one token must be visible and one masked)."
            )
        return num_visible

    def _person_sequences(
        self, skeleton_values: torch.Tensor, noise: torch.Tensor | None, present_persons: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Checked input as `(N, T, V, C)` person sequences and their noise rows; only the present slots with
        `config.pretraining_skip_absent_persons` (all of them when none is present)."""
        config = self.config
        skeletons = check_skeleton_values(skeleton_values, config).to(self.dtype).flatten(0, 1)
        if noise is not None:
            num_segments = skeletons.shape[1] // config.temporal_patch_size
            check_noise(noise, (len(skeletons), num_segments * config.num_joint_patches))
        if not config.pretraining_skip_absent_persons:
            return skeletons, noise
        present_persons = self.mamp._own_present_persons(present_persons, skeletons.shape[0])
        if present_persons is None:  # reads the input: a device synchronisation, which the processor's index avoids
            present_persons = present_person_slots(skeletons[:, None])
        if len(present_persons) == 0:  # a batch without any person keeps its slots rather than becoming empty
            return skeletons, noise
        present_persons = present_persons.to(skeletons.device)
        return skeletons.index_select(0, present_persons), None if noise is None else noise[present_persons]

    def _motion_patches(self, skeletons: torch.Tensor) -> torch.Tensor | None:
        """Patches of the motion (Eq. 2-3) when the encoder sees it or the decoder predicts it, else None."""
        config = self.config
        if "motion" not in (config.pretraining_input, config.pretraining_target):
            return None
        motion = extract_motion(skeletons, config.motion_stride, config.motion_direction, config.motion_padding)
        return patchify(motion, config.temporal_patch_size, config.joint_patch_size)


# ---------------------------------------------------------------------------------------------
# Action classification
# ---------------------------------------------------------------------------------------------


class MampForSkeletonClassification(MampPreTrainedModel):
    """MAMP encoder with an action classification head: `config.classifier_head` picks the linear probe or the
    fine-tuning MLP. Given `labels`, returns the cross-entropy loss (with `config.label_smoothing`)."""

    def __init__(self, config: MampConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mamp = MampModel(config)
        self.classifier = CLASSIFIER_HEADS[config.classifier_head](config)
        self.post_init()

    def freeze_encoder(self) -> None:
        """Freeze every encoder parameter (linear probing): only `classifier` is trained."""
        self.mamp.requires_grad_(False)

    @can_return_tuple
    def forward(
        self,
        skeleton_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        present_persons: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MampSkeletonClassifierOutput:
        r"""
        Args:
            skeleton_values (`torch.FloatTensor` of shape `(B, M, T, V, C)` or `(B, T, V, C)`): skeleton sequences.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class indices in `[0, num_labels)`; -100 leaves a
                clip out of the loss. Values are checked for CPU tensors (the data sets check theirs when opened).
            present_persons (`torch.LongTensor` of shape `(P,)`, *optional*): see `MampModel.forward`.
        """
        outputs: MampModelOutput = self.mamp(
            skeleton_values, present_persons=present_persons, return_dict=True, **kwargs
        )
        logits = self.classifier(outputs.last_hidden_state, outputs.pooler_output)
        loss = None
        if labels is not None:
            check_labels(labels, len(logits), self.config.num_labels)
            loss = F.cross_entropy(
                logits, labels.to(logits.device), ignore_index=IGNORE_INDEX, label_smoothing=self.config.label_smoothing
            )
        return MampSkeletonClassifierOutput(
            loss=loss,
            logits=logits,
            pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = [
    "MampForMaskedMotionPrediction",
    "MampForPreTrainingOutput",
    "MampForSkeletonClassification",
    "MampModel",
    "MampModelOutput",
    "MampPreTrainedModel",
    "MampSkeletonClassifierOutput",
    "extract_motion",
    "gumbel_masking_scores",
    "masked_mse_loss",
    "masking_probabilities",
    "motion_intensity",
    "normalize_patches",
    "random_masking",
]
