"""Convert the authors' MAMP checkpoints (`.pth`) into `save_pretrained` folders (config.json, model.safetensors
and the matching preprocessor_config.json).

Handles the three files their scripts write: pre-training (`model_mamp` / `model_mae` transformers), linear probe
(`head.fc.0` BatchNorm + `head.fc.1` linear) and fine-tune (`head.fc1`, `head.bn`, `head.fc2`). The checkpoint is
read with `torch.load(weights_only=True)`, allowing `argparse.Namespace` (where the scripts keep their arguments)
and nothing else, so a file cannot run code while it is read.

    mamp-convert checkpoint-399.pth converted/ [--num-heads 8] [--id2label ntu60] [--force]

Options that contradict what the checkpoint stores (its weights' shapes, or the `args` the authors' script saved
with them) are refused unless `--force` is given, since the converted model would then differ from the authors'.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checks import checked, flag
from ..configuration_mamp import MampConfig
from ..layers.embeddings import add_position_embeddings, patchify
from ..modeling_mamp import (
    MampForMaskedMotionPrediction,
    MampForSkeletonClassification,
    MampPreTrainedModel,
)
from ..processing_mamp import MampSkeletonProcessor
from ..skeletons import ACTION_NAMES, get_id2label
from ..trainer import non_finite_tensors
from .cli import console_script

# Official name -> our name, for the parts shared by all checkpoints (`{i}` is a layer index).
_LAYER_RULES = [
    (r"norm1\.", "norm1."),
    (r"attn\.qkv\.", "attention.qkv."),
    (r"attn\.proj\.", "attention.proj."),
    (r"norm2\.", "norm2."),
    (r"mlp\.fc1\.", "mlp.fc1."),
    (r"mlp\.fc2\.", "mlp.fc2."),
]
_RULES = [
    (r"^joints_embed\.proj\.(weight|bias)$", r"mamp.embeddings.projection.\1"),
    (r"^temp_embed$", "mamp.embeddings.temporal_position_embeddings"),
    (r"^pos_embed$", "mamp.embeddings.spatial_position_embeddings"),
    *[(rf"^blocks\.(\d+)\.{a}(\w+)$", rf"mamp.encoder.layers.\1.{b}\2") for a, b in _LAYER_RULES],
    (r"^norm\.(weight|bias)$", r"mamp.layernorm.\1"),
    (r"^decoder_embed\.(weight|bias)$", r"decoder.decoder_embed.\1"),
    (r"^mask_token$", "decoder.mask_token"),
    (r"^decoder_temp_embed$", "decoder.temporal_position_embeddings"),
    (r"^decoder_pos_embed$", "decoder.spatial_position_embeddings"),
    *[(rf"^decoder_blocks\.(\d+)\.{a}(\w+)$", rf"decoder.decoder_layers.\1.{b}\2") for a, b in _LAYER_RULES],
    (r"^decoder_norm\.(weight|bias)$", r"decoder.decoder_norm.\1"),
    (r"^decoder_pred\.(weight|bias)$", r"decoder.decoder_pred.\1"),
    (r"^head\.fc\.0\.(\w+)$", r"classifier.batch_norm.\1"),
    (r"^head\.fc\.1\.(weight|bias)$", r"classifier.\1"),
    (r"^head\.fc1\.(weight|bias)$", r"classifier.fc1.\1"),
    (r"^head\.bn\.(\w+)$", r"classifier.batch_norm.\1"),
    (r"^head\.fc2\.(weight|bias)$", r"classifier.fc2.\1"),
]


class CheckpointError(ValueError):
    """The file is not an official MAMP checkpoint this converter can read safely, or the options contradict it."""


def load_official_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], argparse.Namespace | dict | None]:
    """Read an official `.pth` without unpickling arbitrary objects; return its state dict and `args`.

    Raises:
        CheckpointError: the path is not a file, the file is not a PyTorch checkpoint, holds objects that
            `weights_only` loading refuses, or holds no MAMP state dict.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; pass the .pth file written by the authors' scripts.")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; pass the .pth file written by the authors' scripts.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty; pass the .pth file written by the authors' scripts.")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            # torch warns about the pickle protocol of files that are not its own, before refusing them below.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"GLOBAL (\S+)", str(error))
        if refused is None:
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint that torch.load(weights_only=True) can read; pass the .pth "
                "file written by the authors' scripts."
            ) from None
        raise CheckpointError(
            f"{path} refers to {refused.group(1)}, which weights-only loading refuses, so it is not loaded (nothing "
            "in it was executed); official MAMP checkpoints hold only tensors, containers and argparse.Namespace."
        ) from None
    except Exception as error:  # torch.load reports a file it cannot parse with whatever its parser hit first
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ({type(error).__name__} while reading it); pass the .pth file "
            "written by the authors' scripts."
        ) from None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        state_dict, args = checkpoint["model"], checkpoint.get("args")
    elif isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state_dict, args = checkpoint, None
    else:
        raise CheckpointError(
            f"{path} holds a {type(checkpoint).__name__} that is neither a state dict nor a dict with a 'model' "
            "state dict; pass a checkpoint written by the authors' scripts."
        )
    state_dict = {str(k).removeprefix("module."): v for k, v in state_dict.items()}
    if "joints_embed.proj.weight" not in state_dict:
        raise CheckpointError(f"{path} has no 'joints_embed.proj.weight': it is not a MAMP checkpoint.")
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{path}: the state dict entry {not_tensors[0]!r} is not a tensor; is it a MAMP checkpoint?"
        )
    if args is not None and not isinstance(args, (argparse.Namespace, dict)):
        raise CheckpointError(
            f"{path}: 'args' is a {type(args).__name__}, where the authors' scripts store an argparse.Namespace."
        )
    non_finite = non_finite_tensors(state_dict)
    if non_finite:
        raise CheckpointError(
            f"{path}: weights hold NaN or infinite values ({', '.join(non_finite)}); the file is damaged or the run "
            "that wrote it diverged; use another copy of it."
        )
    return state_dict, args


def checkpoint_kind(state_dict: dict[str, torch.Tensor]) -> str:
    """`"pretrain"`, `"linear_probe"` or `"finetune"`, from the head's weights."""
    if "decoder_pred.weight" in state_dict:
        return "pretrain"
    if "head.fc.1.weight" in state_dict:
        return "linear_probe"
    if "head.fc2.weight" in state_dict:
        return "finetune"
    raise CheckpointError(
        "The checkpoint has neither a decoder ('decoder_pred.weight') nor a linear-probe ('head.fc.1.weight') or "
        "fine-tune head ('head.fc2.weight'); pass a complete checkpoint of the authors' scripts."
    )


def _values_from_weights(state_dict: dict[str, torch.Tensor], kind: str) -> dict[str, object]:
    """The configuration the weights' shapes fix; no option can change these and still load the weights."""
    required = ["pos_embed", "temp_embed", "blocks.0.mlp.fc1.weight"]
    required += {"pretrain": ["decoder_embed.weight"], "finetune": ["head.fc1.weight"]}.get(kind, [])
    missing = [name for name in required if name not in state_dict]
    if missing:
        raise CheckpointError(f"The checkpoint has no {missing[0]!r}: it is truncated or not a MAMP checkpoint.")
    weight = state_dict["joints_embed.proj.weight"]  # (D, C, temporal patch, joint patch)
    hidden_size, num_channels, temporal_patch_size, joint_patch_size = weight.shape
    values: dict[str, object] = dict(
        num_channels=num_channels,
        num_joints=state_dict["pos_embed"].shape[2] * joint_patch_size,
        num_frames=state_dict["temp_embed"].shape[1] * temporal_patch_size,
        temporal_patch_size=temporal_patch_size,
        joint_patch_size=joint_patch_size,
        hidden_size=hidden_size,
        num_hidden_layers=1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.")),
        intermediate_size=state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
    )
    if kind == "pretrain":
        decoder_hidden_size = state_dict["decoder_embed.weight"].shape[0]
        decoder_layers = {int(k.split(".")[1]) for k in state_dict if k.startswith("decoder_blocks.")}
        values.update(
            decoder_hidden_size=decoder_hidden_size,
            decoder_num_hidden_layers=len(decoder_layers),
            decoder_intermediate_size=state_dict["decoder_blocks.0.mlp.fc1.weight"].shape[0]
            if decoder_layers
            else 4 * decoder_hidden_size,
        )
    elif kind == "linear_probe":
        values.update(classifier_head="linear_probe", num_labels=state_dict["head.fc.1.weight"].shape[0])
    else:
        values.update(
            classifier_head="finetune",
            num_labels=state_dict["head.fc2.weight"].shape[0],
            classifier_hidden_size=state_dict["head.fc1.weight"].shape[0],
        )
    return values


def _values_from_args(args: argparse.Namespace | dict | None, kind: str) -> dict[str, object]:
    """The configuration the checkpoint's `args` store, under `MampConfig`'s names; only what they actually hold."""
    args = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    model_args = args.get("model_args") if isinstance(args.get("model_args"), dict) else {}
    values: dict[str, object] = {}
    for config_name, model_arg, convert in (
        ("num_attention_heads", "num_heads", int),
        ("drop_path_rate", "drop_path_rate", float),
        ("hidden_dropout_prob", "drop_rate", float),
        ("attention_probs_dropout_prob", "attn_drop_rate", float),
    ):
        if model_args.get(model_arg) is not None:
            values[config_name] = convert(model_args[model_arg])
    if kind == "pretrain":
        for config_name, arg, convert in (
            ("mask_ratio", "mask_ratio", float),
            ("motion_aware_tau", "motion_aware_tau", float),
            ("motion_stride", "motion_stride", int),
        ):
            if args.get(arg) is not None:
                values[config_name] = convert(args[arg])
        if model_args.get("norm_skes_loss") is not None:
            values["norm_target"] = bool(model_args["norm_skes_loss"])
        if args.get("model") is not None:
            # The authors' SkeletonMAE baseline lives in `model_mae`; it reconstructs joints under random masking.
            values["pretraining_target"] = "joints" if "model_mae" in str(args["model"]) else "motion"
    elif kind == "finetune" and args.get("smoothing") is not None:
        values["label_smoothing"] = float(args["smoothing"])
    return values


def infer_config(
    state_dict: dict[str, torch.Tensor],
    args: argparse.Namespace | dict | None = None,
    *,
    force: bool = False,
    **overrides,
) -> MampConfig:
    """Build the `MampConfig` of an official checkpoint from its weights' shapes, its `args`, and `overrides`.

    The number of attention heads is the one thing the weights cannot tell: it comes from `args.model_args` or
    from `num_attention_heads=` in `overrides`.

    Args:
        state_dict: the official weights, as `load_official_checkpoint` returns them.
        args: the arguments the authors' script stored with them (`checkpoint["args"]`), if any.
        force: apply `overrides` that contradict `args` (the model then differs from the authors'), and a
            `num_frames` other than the weights' (`convert_checkpoint` then resamples the temporal position
            embeddings).
        overrides: `MampConfig` fields; `None` values are ignored. `id2label` (keys 0..N-1) names the head's classes.

    Raises:
        CheckpointError: an override contradicts the weights, or the checkpoint's args without `force`; `id2label`
            does not fit the head; or the number of attention heads is neither stored nor given.
    """
    kind = checkpoint_kind(state_dict)
    fixed = _values_from_weights(state_dict, kind)
    stored = _values_from_args(args, kind)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    id2label = overrides.pop("id2label", None)
    for name, value in overrides.items():
        if name in fixed and value != fixed[name] and not (force and name == "num_frames"):
            # Only the temporal position table can be fitted to another shape (by resampling it); no other weight can.
            remedy = "leave it out"
            if name == "num_frames":
                remedy = "pass force=True (--force) to resample its temporal position embeddings"
            raise CheckpointError(
                f"{_option(name, value)} contradicts the checkpoint's weights, which fix {fixed[name]!r}; {remedy}."
            )
        if name in stored and value != stored[name] and not force:
            raise CheckpointError(
                f"{_option(name, value)} contradicts the checkpoint's args, which store {stored[name]!r}; leave it "
                f"out, or pass force=True (--force) to use {value!r} anyway, which makes the model differ from the "
                "authors'."
            )
    values = {**fixed, **stored, **overrides}
    if "num_attention_heads" not in values:
        raise CheckpointError(
            "The number of attention heads is not stored in this checkpoint's args; pass it (--num-heads, or "
            f"num_attention_heads=...) as a divisor of the width {fixed['hidden_size']} (the paper's models use 8)."
        )
    if kind != "pretrain":
        # A classifier checkpoint has no decoder; describe one shaped like the encoder so that the configuration is
        # valid for any width and depth (loading the folder for pre-training starts that decoder afresh).
        values = (
            dict(
                decoder_hidden_size=values["hidden_size"],
                decoder_num_hidden_layers=min(MampConfig().decoder_num_hidden_layers, values["num_hidden_layers"]),
                decoder_intermediate_size=values["intermediate_size"],
            )
            | values
        )
    # The authors' decoder blocks take the encoder's head count.
    values.setdefault("decoder_num_attention_heads", values["num_attention_heads"])
    if kind == "pretrain":
        values.setdefault("norm_target", False)  # the authors' default for norm_skes_loss
        tau = float(values.get("motion_aware_tau", 0.0))
        if "masking_strategy" not in overrides:
            # Their MAE baseline and a MAMP run with tau 0 mask uniformly at random.
            motion_aware = tau > 0 and values.get("pretraining_target") != "joints"
            values["masking_strategy"] = "motion_aware" if motion_aware else "random"
        if tau <= 0:
            values["motion_aware_tau"] = MampConfig().motion_aware_tau  # unused by random masking
    if id2label is not None:
        if kind == "pretrain":
            raise CheckpointError(
                "id2label names the classes of a classification head, and a pre-training checkpoint has none; leave "
                "it out."
            )
        values["id2label"] = _check_id2label(id2label, "id2label")
        if len(values["id2label"]) != values["num_labels"]:
            raise CheckpointError(
                f"The checkpoint's head has {values['num_labels']} classes but {len(id2label)} action names were "
                f"given; pass the names of the data set it was trained on ({_DATASET_SIZES})."
            )
    return MampConfig(**values)


# The command-line options of `main` that set a `MampConfig` field, to name both in error messages.
_OPTIONS = {
    "num_attention_heads": "--num-heads",
    "num_frames": "--num-frames",
    "motion_aware_tau": "--motion-aware-tau",
}


def _option(name: str, value: object) -> str:
    """`num_attention_heads=4 (--num-heads 4)`: the override as a Python caller and a command-line user wrote it."""
    return f"{name}={value!r}" + (f" ({_OPTIONS[name]} {value})" if name in _OPTIONS else "")


_DATASET_SIZES = ", ".join(f"{name}: {len(names)}" for name, names in ACTION_NAMES.items())


def _check_id2label(id2label: object, source: str) -> dict[int, str]:
    """`id2label` as `{int: name}` once its keys are exactly the indices 0..N-1 (ints, or their decimal strings as
    JSON writes them) and its names non-empty strings; `source` says where it came from in the error messages."""
    if not isinstance(id2label, dict):
        raise CheckpointError(
            f"{source} is a {type(id2label).__name__}; pass a mapping of class indices to action names, "
            '{"0": "drink water", "1": "eat meal", ...}.'
        )
    indices = {}
    for key in id2label:
        # JSON object keys are strings: "7" is 7, but "07", " 7" or "seven" is a mistake, not an index.
        if isinstance(key, str) and re.fullmatch(r"0|[1-9][0-9]*", key):
            indices[key] = int(key)
        elif isinstance(key, int) and not isinstance(key, bool):
            indices[key] = key
        else:
            raise CheckpointError(
                f'{source} has the key {key!r}; its keys must be the class indices 0..N-1 (in JSON: "0", "1", ...).'
            )
    expected, found = set(range(len(id2label))), set(indices.values())
    if found != expected:
        missing, extra = sorted(expected - found), sorted(found - expected)
        problems = [f"{_listing(missing)} missing"] if missing else []
        problems += [f"{_listing(extra)} out of range"] if extra else []
        raise CheckpointError(
            f"{source} has {len(id2label)} names, so its keys must be 0..{len(id2label) - 1}, but "
            f"{' and '.join(problems)}; number the classes from 0, in the order of the head's outputs."
        )
    for key, name in id2label.items():
        if not isinstance(name, str) or not name.strip():
            raise CheckpointError(f"{source}: the name of class {indices[key]} is {name!r}; pass a non-empty string.")
    return {indices[key]: name for key, name in id2label.items()}


def _listing(indices: list[int]) -> str:
    """`[0]` -> "0 is", `[60, 61]` -> "60, 61 are", with at most five shown."""
    shown = ", ".join(map(str, indices[:5])) + (", ..." if len(indices) > 5 else "")
    return f"{shown} {'is' if len(indices) == 1 else 'are'}"


def load_id2label(name_or_path: str) -> dict[int, str]:
    """Action names by class index from a data set name (`"ntu60"`, `"ntu120"`, `"pku_mmd"`) or a JSON file.

    The JSON file holds one object `{"0": "drink water", "1": "eat meal", ...}` with keys exactly "0".."N-1".
    Raises `CheckpointError` for anything else: no such file, a folder, an empty or non-JSON file, other keys,
    empty names.
    """
    if name_or_path in ACTION_NAMES:
        return get_id2label(name_or_path)
    path = Path(name_or_path)
    usage = f'pass {", ".join(ACTION_NAMES)} or a JSON file {{"0": "first action name", ...}}'
    if not path.exists():
        raise CheckpointError(f"--id2label {name_or_path!r} is neither a known data set nor a file; {usage}.")
    if not path.is_file():
        raise CheckpointError(f"--id2label {name_or_path!r} is not a file; {usage}.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"--id2label {name_or_path!r} is not a UTF-8 text file; {usage}.") from None
    if not text.strip():
        raise CheckpointError(f"--id2label {name_or_path!r} is empty; {usage}.")
    try:
        id2label = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"--id2label {name_or_path!r} is not JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
            f"{usage}."
        ) from None
    if not isinstance(id2label, dict):
        raise CheckpointError(
            f"--id2label {name_or_path!r} holds a JSON {type(id2label).__name__}, not an object; {usage}."
        )
    return _check_id2label(id2label, f"--id2label {name_or_path!r}")


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[tuple[str, str]]]:
    """Rename (and for the joint embedding, reshape) official weights; returns the new dict and the mapping."""
    converted, mapping = {}, []
    for name, tensor in state_dict.items():
        for pattern, replacement in _RULES:
            if re.match(pattern, name):
                new_name = re.sub(pattern, replacement, name)
                break
        else:
            raise CheckpointError(f"No rule maps the official weight {name!r}; is this a MAMP checkpoint?")
        if name == "joints_embed.proj.weight":
            # Conv2d (D, C, t, p) with kernel == stride is a linear map of patches ordered (t, p, C).
            tensor = tensor.permute(0, 2, 3, 1).flatten(1)
        converted[new_name] = tensor.contiguous()
        mapping.append((name, new_name))
    return converted, mapping


def _verify_embedding(state_dict: dict[str, torch.Tensor], model: MampPreTrainedModel) -> float:
    """Largest difference between the official Conv2d embedding and ours on a random input."""
    config = model.config
    weight, bias = state_dict["joints_embed.proj.weight"], state_dict["joints_embed.proj.bias"]
    skeletons = torch.randn(2, config.num_frames, config.num_joints, config.num_channels)
    official = F.conv2d(skeletons.permute(0, 3, 1, 2), weight, bias, stride=weight.shape[2:]).permute(0, 2, 3, 1)
    ours = model.mamp.embeddings.projection(patchify(skeletons, config.temporal_patch_size, config.joint_patch_size))
    return (official - ours).abs().max().item()


def _resample_temporal_embeddings(state_dict: dict[str, torch.Tensor], num_frames: int) -> dict[str, torch.Tensor]:
    """The official weights with their temporal position tables `(1, T_e, 1, D)` resampled to `num_frames`.

    `add_position_embeddings` is the interpolation the model itself applies to a clip of another length, so the
    converted model on `num_frames` frames computes what the original computes on them.
    """
    num_segments = num_frames // state_dict["joints_embed.proj.weight"].shape[2]
    resampled = dict(state_dict)
    for name in ("temp_embed", "decoder_temp_embed"):
        if name in state_dict:
            table = state_dict[name]
            resampled[name] = add_position_embeddings(
                table.new_zeros(1, num_segments, 1, table.shape[-1]), table, table.new_zeros(1, 1, 1, table.shape[-1])
            )
    return resampled


def convert_checkpoint(
    checkpoint_path: str | Path,
    output_dir: str | Path | None = None,
    verbose: bool = True,
    force: bool = False,
    **config_overrides,
) -> MampPreTrainedModel:
    """Convert an official checkpoint into a `MampForMaskedMotionPrediction` (pre-training checkpoints) or
    `MampForSkeletonClassification` (linear-probe / fine-tune checkpoints), verify it, and optionally save it.

    Args:
        checkpoint_path: the `.pth` file the authors' scripts wrote.
        output_dir: where to `save_pretrained` the model and its `MampSkeletonProcessor`; nothing is written if
            `None` or if any check fails.
        verbose: print the weight mapping and the verification.
        force: accept `config_overrides` that contradict the checkpoint's args (see `infer_config`).
        config_overrides: `MampConfig` fields, e.g. `num_attention_heads=8` for a checkpoint without args, `id2label`.

    Raises:
        CheckpointError: the file is not a MAMP checkpoint, an override contradicts it, or the verification fails.
    """
    verbose, force = checked("verbose", flag, verbose), checked("force", flag, force)
    state_dict, args = load_official_checkpoint(checkpoint_path)
    config = infer_config(state_dict, args, force=force, **config_overrides)
    kind = checkpoint_kind(state_dict)
    if config.num_frames != state_dict["temp_embed"].shape[1] * config.temporal_patch_size:
        state_dict = _resample_temporal_embeddings(state_dict, config.num_frames)
    converted, mapping = convert_state_dict(state_dict)
    model_class = MampForMaskedMotionPrediction if kind == "pretrain" else MampForSkeletonClassification
    model = model_class(config).eval()
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as error:
        # Weights that disagree with each other (a truncated file, an edited one) fail here, not in infer_config.
        first_problem = str(error).splitlines()[1 if "\n" in str(error) else 0].strip()
        raise CheckpointError(
            f"{checkpoint_path}: the weights do not fit the configuration they imply ({first_problem}); is the file "
            "complete and unmodified?"
        ) from None

    embedding_error = _verify_embedding(state_dict, model)
    with torch.no_grad():
        skeletons = torch.randn(2, config.max_persons, config.num_frames, config.num_joints, config.num_channels)
        output = model(skeletons)
    result = output.loss if kind == "pretrain" else output.logits
    if embedding_error > 1e-4 or not torch.isfinite(result).all():
        raise CheckpointError(
            f"{checkpoint_path}: the converted model failed its check (joint embedding differs from the official "
            f"Conv2d by {embedding_error:.2e}; {'finite' if torch.isfinite(result).all() else 'NaN or infinite'} "
            "output on random input); is the file complete and unmodified? If it is, please report it."
        )
    if verbose:
        print(f"{checkpoint_path}: {kind} checkpoint -> {model_class.__name__}, {len(mapping)} tensors mapped")
        groups: dict[tuple[str, str], int] = {}
        for old, new in mapping:
            key = (re.sub(r"\.\d+\.", ".{i}.", old), re.sub(r"\.\d+\.", ".{i}.", new))
            groups[key] = groups.get(key, 0) + 1
        for (old, new), count in groups.items():
            print(f"  {old} -> {new}" + (f"  (x{count})" if count > 1 else ""))
        print(
            f"verified: joint embedding matches the official Conv2d to {embedding_error:.1e}; "
            f"forward pass on random input finite ({'loss' if kind == 'pretrain' else 'logits'} shape "
            f"{tuple(result.shape)})"
        )
    if output_dir is not None:
        model.save_pretrained(output_dir)
        MampSkeletonProcessor(
            num_frames=config.num_frames,
            num_joints=config.num_joints,
            num_channels=config.num_channels,
            max_persons=config.max_persons,
        ).save_pretrained(output_dir)
        if verbose:
            print(f"saved to {output_dir} (config.json, model.safetensors, preprocessor_config.json)")
    return model


@console_script("mamp-convert")
def main(argv: list[str] | None = None) -> None:
    """`mamp-convert CHECKPOINT OUTPUT_DIR [options]`; any failure is one line `mamp-convert: error: ...`, exit 2."""
    parser = argparse.ArgumentParser(
        prog="mamp-convert", description="Convert an official MAMP .pth checkpoint into a save_pretrained folder."
    )
    parser.add_argument(
        "checkpoint",
        help="official checkpoint (.pth) from the authors' pre-training, linear-probe or fine-tune scripts",
    )
    parser.add_argument("output_dir", help="folder to write the model and its processor into")
    parser.add_argument("--num-heads", type=int, help="attention heads, if the checkpoint's args lack them (paper: 8)")
    parser.add_argument(
        "--num-frames",
        type=int,
        help="frames the model takes (default: from the weights; another "
        "value needs --force and resamples the temporal position embeddings)",
    )
    parser.add_argument(
        "--motion-aware-tau",
        type=float,
        help="masking temperature, if the checkpoint's args lack it (paper: 0.8; 0.75 for NTU-120)",
    )
    parser.add_argument(
        "--id2label",
        help="action names: 'ntu60', 'ntu120', 'pku_mmd', or a JSON file {\"0\": name, ..., \"N-1\": name}",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="apply options that contradict what the checkpoint "
        "stores; the converted model then differs from the authors'",
    )
    options = parser.parse_args(argv)

    convert_checkpoint(
        options.checkpoint,
        options.output_dir,
        force=options.force,
        num_attention_heads=options.num_heads,
        num_frames=options.num_frames,
        motion_aware_tau=options.motion_aware_tau,
        id2label=None if options.id2label is None else load_id2label(options.id2label),
    )


if __name__ == "__main__":
    main()
