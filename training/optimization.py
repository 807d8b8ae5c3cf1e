"""Optimizers and learning-rate schedules of the paper's three protocols, in the form `transformers.Trainer` takes.

- Parameter groups: no weight decay for 1-D parameters (biases, norm weights), as the authors' code does; layer-wise
  learning-rate decay (BEiT / ELECTRA) for fine-tuning, with layer ids 0 for the embeddings, i + 1 for encoder
  layer i, and num_hidden_layers + 1 for the final norm and the head, whose learning rate is the peak one.
- Schedule: linear warm-up from 0, then half-cosine to a floor, updated every optimizer step. That is the
  `cosine_with_min_lr` schedule of transformers; `schedule_arguments` turns the paper's epochs into its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

# Authors' code: timm's `add_weight_decay` (pre-training) and BEiT's `param_groups_lrd` (fine-tuning) exempt only
# 1-D parameters, so the learnable position embeddings and the mask token are decayed. Names listed here are
# exempted too when `weight_decay_position_embeddings` is false.
POSITION_EMBEDDING_SUFFIXES = ("temporal_position_embeddings", "spatial_position_embeddings", "mask_token")


def layer_id(name: str, num_hidden_layers: int) -> int:
    """Depth of a parameter for layer-wise lr decay, from its name in a MAMP model (prefix `mamp.` optional).

    0: `embeddings.*` (joint embedding and position embeddings); i + 1: `encoder.layers.{i}.*`;
    num_hidden_layers + 1: everything else (final `layernorm`, `classifier`, the pre-training decoder).
    """
    name = name.removeprefix("mamp.")
    if name.startswith("embeddings."):
        return 0
    if name.startswith("encoder.layers."):
        return int(name.split(".")[2]) + 1
    return num_hidden_layers + 1


def parameter_groups(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float,
    layer_decay: float = 1.0,
    weight_decay_position_embeddings: bool = True,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups of the trainable parameters of `model`.

    A group per (layer id, decayed or not), with `lr = learning_rate * layer_decay ** (num_layers + 1 - layer id)`,
    so that a `LambdaLR` schedule scales every group by the same factor, floor included, as in the authors' code.
    Groups are ordered from the head down, so the first group (the one Trainer logs) has the peak learning rate.
    """
    if not 0 < layer_decay <= 1:
        raise ValueError(f"layer_decay must be in (0, 1] (1 disables it), got {layer_decay}.")
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decayed = parameter.ndim > 1 and (
            weight_decay_position_embeddings or not name.endswith(POSITION_EMBEDDING_SUFFIXES)
        )
        depth = layer_id(name, num_layers)
        group = groups.setdefault(
            (depth, decayed),
            {
                "params": [],
                "lr": learning_rate * layer_decay ** (num_layers + 1 - depth),
                "weight_decay": weight_decay if decayed else 0.0,
            },
        )
        group["params"].append(parameter)
    if not groups:
        raise ValueError("The model has no trainable parameters; nothing to optimise.")
    return [groups[key] for key in sorted(groups, key=lambda key: (-key[0], not key[1]))]


def optimizer_class_and_kwargs(
    model: nn.Module, optimizer_config: Mapping[str, Any], learning_rate: float, device_type: str = "cpu"
) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """`Trainer(optimizer_cls_and_kwargs=...)` for the `optimizer` section of a recipe, training on `device_type`.

    `name: adamw` takes `betas`, `eps`; `name: sgd` takes `momentum`; both take `weight_decay`, `layer_decay`,
    `weight_decay_position_embeddings` and `fused`: true runs each step as one fused kernel per parameter group and
    dtype (PyTorch's `fused=True`; the same update up to rounding), "auto" (default) does so on any device but the
    CPU, false keeps PyTorch's default (`foreach` on GPUs).
    """
    options = dict(optimizer_config)
    name = options.pop("name", "adamw")
    fused = options.pop("fused", "auto")
    if fused not in (True, False, "auto"):
        raise ValueError(f"optimizer.fused must be true, false or auto, got {fused!r}.")
    groups = parameter_groups(
        model,
        learning_rate,
        weight_decay=float(options.pop("weight_decay", 0.0)),
        layer_decay=float(options.pop("layer_decay", 1.0)),
        weight_decay_position_embeddings=bool(options.pop("weight_decay_position_embeddings", True)),
    )
    if name == "adamw":
        optimizer_cls = torch.optim.AdamW
        kwargs = {"betas": tuple(options.pop("betas", (0.9, 0.999))), "eps": float(options.pop("eps", 1e-8))}
    elif name == "sgd":
        optimizer_cls = torch.optim.SGD
        kwargs = {"momentum": float(options.pop("momentum", 0.0))}
    else:
        raise ValueError(f"optimizer.name must be 'adamw' or 'sgd', got {name!r}.")
    if options:
        raise ValueError(f"Unknown keys {sorted(options)} in the optimizer section for {name!r}.")
    if fused is True or (fused == "auto" and device_type != "cpu"):
        kwargs["fused"] = True
    # Group weight decays override this default; it only keeps AdamW from decaying groups that set none.
    return optimizer_cls, {"params": groups, "lr": learning_rate, "weight_decay": 0.0, **kwargs}


def schedule_arguments(schedule: Mapping[str, Any]) -> dict[str, Any]:
    """`TrainingArguments` fields for linear warm-up then cosine to `min_learning_rate`, stepped per iteration.

    Warm-up is given in epochs, as in the paper; Trainer reads a `warmup_steps` below 1 as a fraction of the
    training steps, so `warmup_epochs / epochs` warms up for exactly that many epochs whatever the batch size and
    number of processes. The floor is a fraction of the peak, so layer-decayed groups floor at their own scale.
    """
    epochs = float(schedule["epochs"])
    learning_rate = float(schedule["learning_rate"])
    min_learning_rate = float(schedule.get("min_learning_rate", 0.0))
    if learning_rate <= 0 or not 0 <= min_learning_rate <= learning_rate:
        raise ValueError(
            f"Need 0 <= schedule.min_learning_rate <= schedule.learning_rate and a positive learning rate, got "
            f"{min_learning_rate} and {learning_rate}."
        )
    return {
        "num_train_epochs": epochs,
        "learning_rate": learning_rate,
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr_rate": min_learning_rate / learning_rate},
        "warmup_steps": float(schedule.get("warmup_epochs", 0)) / epochs,
    }
