"""Convert the authors' MAMP checkpoints (`.pth`) into `save_pretrained` folders (config.json, model.safetensors
and the matching preprocessor_config.json).

Handles the three files their scripts write: pre-training (`model_mamp` / `model_mae` transformers), linear probe
(`head.fc.0` BatchNorm + `head.fc.1` linear) and fine-tune (`head.fc1`, `head.bn`, `head.fc2`). The checkpoint is
read with `torch.load(weights_only=True)`, allowing `argparse.Namespace` (where the scripts keep their arguments)
and nothing else, so a file cannot run code while it is read.

    mamp-convert checkpoint-399.pth converted/ [--num-heads 8] [--id2label ntu60]
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from .configuration_mamp import MampConfig
from .modeling_mamp import MampForMaskedMotionPrediction, MampForSkeletonClassification, MampPreTrainedModel, patchify
from .processing_mamp import MampSkeletonProcessor

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
    *[(rf"^decoder_blocks\.(\d+)\.{a}(\w+)$", rf"decoder.transformer.layers.\1.{b}\2") for a, b in _LAYER_RULES],
    (r"^decoder_norm\.(weight|bias)$", r"decoder.decoder_norm.\1"),
    (r"^decoder_pred\.(weight|bias)$", r"decoder.decoder_pred.\1"),
    (r"^head\.fc\.0\.(\w+)$", r"classifier.batch_norm.\1"),
    (r"^head\.fc\.1\.(weight|bias)$", r"classifier.\1"),
    (r"^head\.fc1\.(weight|bias)$", r"classifier.fc1.\1"),
    (r"^head\.bn\.(\w+)$", r"classifier.batch_norm.\1"),
    (r"^head\.fc2\.(weight|bias)$", r"classifier.fc2.\1"),
]


class CheckpointError(ValueError):
    """The file is not an official MAMP checkpoint this converter can read safely."""


def load_official_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], argparse.Namespace | None]:
    """Read an official `.pth` without unpickling arbitrary objects; return its state dict and `args`."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} holds objects other than tensors, containers and argparse.Namespace, so it is not loaded "
            f"(nothing in it was executed). Official MAMP checkpoints hold only those. Details: {error}"
        ) from None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        state_dict, args = checkpoint["model"], checkpoint.get("args")
    elif isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state_dict, args = checkpoint, None
    else:
        raise CheckpointError(f"{path} is neither a state dict nor a dict with a 'model' state dict.")
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if "joints_embed.proj.weight" not in state_dict:
        raise CheckpointError(f"{path} has no 'joints_embed.proj.weight': it is not a MAMP checkpoint.")
    return state_dict, args


def checkpoint_kind(state_dict: dict[str, torch.Tensor]) -> str:
    """`"pretrain"`, `"linear_probe"` or `"finetune"`, from the head's weights."""
    if "decoder_pred.weight" in state_dict:
        return "pretrain"
    if "head.fc.1.weight" in state_dict:
        return "linear_probe"
    if "head.fc2.weight" in state_dict:
        return "finetune"
    raise CheckpointError("The checkpoint has neither a decoder nor a linear-probe or fine-tune head.")


def infer_config(
    state_dict: dict[str, torch.Tensor], args: argparse.Namespace | None = None, **overrides
) -> MampConfig:
    """Build the `MampConfig` from the weights' shapes, the checkpoint's `args`, and `overrides` (which win).

    The number of attention heads is the one thing the weights cannot tell: it comes from `args.model_args` or
    from `num_attention_heads=` in `overrides`.
    """
    model_args = dict(getattr(args, "model_args", None) or {})
    weight = state_dict["joints_embed.proj.weight"]  # (D, C, temporal patch, joint patch)
    hidden_size, num_channels, temporal_patch_size, joint_patch_size = weight.shape
    num_layers = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    kind = checkpoint_kind(state_dict)
    values = dict(
        num_channels=num_channels,
        num_joints=state_dict["pos_embed"].shape[2] * joint_patch_size,
        num_frames=state_dict["temp_embed"].shape[1] * temporal_patch_size,
        temporal_patch_size=temporal_patch_size,
        joint_patch_size=joint_patch_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        intermediate_size=state_dict["blocks.0.mlp.fc1.weight"].shape[0],
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        drop_path_rate=float(model_args.get("drop_path_rate", 0.0)),
        hidden_dropout_prob=float(model_args.get("drop_rate", 0.0)),
        attention_probs_dropout_prob=float(model_args.get("attn_drop_rate", 0.0)),
    )
    if "num_heads" in model_args:
        values["num_attention_heads"] = values["decoder_num_attention_heads"] = int(model_args["num_heads"])
    if kind == "pretrain":
        decoder_layers = {int(k.split(".")[1]) for k in state_dict if k.startswith("decoder_blocks.")}
        tau = float(getattr(args, "motion_aware_tau", 0.0) or 0.0)
        is_mae = "model_mae" in str(getattr(args, "model", ""))
        values.update(
            decoder_hidden_size=state_dict["decoder_embed.weight"].shape[0],
            decoder_num_hidden_layers=len(decoder_layers),
            decoder_intermediate_size=state_dict["decoder_blocks.0.mlp.fc1.weight"].shape[0]
            if decoder_layers
            else 4 * state_dict["decoder_embed.weight"].shape[0],
            mask_ratio=float(getattr(args, "mask_ratio", 0.9)),
            masking_strategy="motion_aware" if tau > 0 and not is_mae else "random",
            motion_aware_tau=tau if tau > 0 else 0.8,
            motion_stride=int(getattr(args, "motion_stride", 1)),
            pretraining_target="joints" if is_mae else "motion",
            norm_target=bool(model_args.get("norm_skes_loss", False)),
        )
    elif kind == "linear_probe":
        values.update(classifier_head="linear_probe", num_labels=state_dict["head.fc.1.weight"].shape[0])
    else:
        values.update(
            classifier_head="finetune",
            num_labels=state_dict["head.fc2.weight"].shape[0],
            classifier_hidden_size=state_dict["head.fc1.weight"].shape[0],
            label_smoothing=float(getattr(args, "smoothing", 0.0) or 0.0),
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    id2label = values.get("id2label")
    if id2label is not None and "num_labels" in values and len(id2label) != values["num_labels"]:
        raise CheckpointError(
            f"The checkpoint's head has {values['num_labels']} classes but {len(id2label)} action names were given; "
            "pass the names of the data set it was trained on (ntu60: 60, ntu120: 120, pku_mmd: 51)."
        )
    if "num_attention_heads" not in values:
        raise CheckpointError(
            "The number of attention heads is not stored in this checkpoint's args; pass it (--num-heads, "
            "or num_attention_heads=...). The paper's models use 8."
        )
    values.setdefault("decoder_num_attention_heads", values["num_attention_heads"])
    return MampConfig(**values)


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
    ours = model.mamp.embeddings.projection(
        patchify(skeletons, config.temporal_patch_size, config.joint_patch_size)
    )
    return (official - ours).abs().max().item()


def convert_checkpoint(
    checkpoint_path: str | Path, output_dir: str | Path | None = None, verbose: bool = True, **config_overrides
) -> MampPreTrainedModel:
    """Convert an official checkpoint into a `MampForMaskedMotionPrediction` (pre-training checkpoints) or
    `MampForSkeletonClassification` (linear-probe / fine-tune checkpoints), verify it, and optionally save it."""
    state_dict, args = load_official_checkpoint(checkpoint_path)
    config = infer_config(state_dict, args, **config_overrides)
    kind = checkpoint_kind(state_dict)
    converted, mapping = convert_state_dict(state_dict)
    model_class = MampForMaskedMotionPrediction if kind == "pretrain" else MampForSkeletonClassification
    model = model_class(config).eval()
    model.load_state_dict(converted, strict=True)

    embedding_error = _verify_embedding(state_dict, model)
    with torch.no_grad():
        skeletons = torch.randn(2, config.max_persons, config.num_frames, config.num_joints, config.num_channels)
        output = model(skeletons)
    result = output.loss if kind == "pretrain" else output.logits
    if embedding_error > 1e-4 or not torch.isfinite(result).all():
        raise CheckpointError(
            f"Verification failed: embedding difference {embedding_error:.2e}, finite output: "
            f"{bool(torch.isfinite(result).all())}."
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mamp-convert", description="Convert an official MAMP .pth checkpoint into a save_pretrained folder."
    )
    parser.add_argument("checkpoint", help="official checkpoint (.pth) from the authors' pre-training, "
                        "linear-probe or fine-tune scripts")
    parser.add_argument("output_dir", help="folder to write the model and its processor into")
    parser.add_argument("--num-heads", type=int, help="attention heads, if the checkpoint's args lack them (paper: 8)")
    parser.add_argument("--num-frames", type=int, help="override the frame count (default: from the weights)")
    parser.add_argument("--motion-aware-tau", type=float, help="override tau (default: from args; 0.75 for NTU-120)")
    parser.add_argument("--id2label", help="action names: 'ntu60', 'ntu120', 'pku_mmd', or a JSON file {id: name}")
    options = parser.parse_args(argv)

    overrides = dict(
        num_attention_heads=options.num_heads,
        num_frames=options.num_frames,
        motion_aware_tau=options.motion_aware_tau,
    )
    if options.id2label:
        overrides["id2label"] = _load_id2label(options.id2label)
    try:
        convert_checkpoint(options.checkpoint, options.output_dir, **overrides)
    except CheckpointError as error:
        parser.exit(2, f"mamp-convert: error: {error}\n")


def _load_id2label(name_or_path: str) -> dict[int, str]:
    if Path(name_or_path).is_file():
        return {int(k): v for k, v in json.loads(Path(name_or_path).read_text()).items()}
    from .skeletons import get_id2label

    return get_id2label(name_or_path)


if __name__ == "__main__":
    main()
