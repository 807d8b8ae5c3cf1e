"""Recipe configuration files: YAML with `extends`, plus `section.key=value` overrides from the command line.

A recipe is a nested mapping with these sections (see `configs/base/*.yaml` for every key and its meaning):

    protocol     "pretrain" | "linear_probe" | "finetune"
    seed         random seed of the run (model initialisation, data order, augmentation, masking)
    seed_per_process  true: process r of a multi-process run seeds with seed + r, as the authors' runs did (the
                 data order stays shared: it is drawn with `seed`)
    snapshot_epochs   after these epochs (counted from 1), also save the model as `output_dir/epoch-N`, a
                 save_pretrained folder kept whatever `trainer.save_total_limit` says (the PKU-MMD pre-trainings:
                 the authors' checkpoint-300)
    init_from    folder or Hub id of a `save_pretrained` model to start from (linear probe / fine-tuning),
                 null to start from random weights
    data         which data set, where it is, how it is sampled (see `training/data.py`)
    model        `MampConfig` keyword arguments
    optimizer    name, betas / momentum, weight decay, layer-wise lr decay
    schedule     epochs, warm-up epochs, peak and final learning rate, global batch size
    trainer      any other `transformers.TrainingArguments` field (output_dir, bf16, save_strategy, ...)
    knn_monitor  optional kNN accuracy of the encoder's features during pre-training
    card         what the generated model card says about the data set, and the paper's top-1 for this recipe
                 (`paper_top1`, `paper_source`), which the card compares with the run's best epoch

`load_config` refuses an unknown key or a value of the wrong type in any section (`SCHEMA`), naming the key; the
`model` and `data.processor` sections are checked by `MampConfig` and `MampSkeletonProcessor` when a run builds them.

`extends: path` (or a list of paths), relative to the file, names base files merged first, in order; the
file's own keys then override theirs. Mappings merge key by key, everything else is replaced.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import functools
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from transformers import TrainingArguments

# The keys of every section and the type of their values (the value rules live where the values are used: the
# optimizer's in optimization.py, the schedule's below and in optimization.py, the data set's in data.py).
# `data.processor` is checked by `MampSkeletonProcessor` and `model` by `MampConfig` when the run builds them, and
# `trainer` against the fields of `TrainingArguments` (see `trainer_fields`).
SCHEMA: dict[str, dict[str, Any]] = {
    "": {
        "protocol": Literal["pretrain", "linear_probe", "finetune"],
        "seed": int,
        "seed_per_process": bool,
        "snapshot_epochs": list[int],
        "init_from": str | None,
        "data": dict,
        "model": dict,
        "optimizer": dict,
        "schedule": dict,
        "trainer": dict,
        "knn_monitor": dict | None,
        "card": dict,
    },
    "data": {
        "dataset": str,
        "path": str,
        "train_fraction": float,
        "subset_seed": int,
        "subset_processes": int,
        "processor": dict,
        "device_transform": bool | Literal["auto"],
    },
    "optimizer": {
        "name": str,
        "betas": list[float],
        "eps": float,
        "momentum": float,
        "weight_decay": float,
        "layer_decay": float,
        "weight_decay_position_embeddings": bool,
        "fused": bool | Literal["auto"],
    },
    "schedule": {
        "epochs": float,
        "warmup_epochs": float,
        "learning_rate": float,
        "min_learning_rate": float,
        "global_batch_size": int,
    },
    "knn_monitor": {"every_n_epochs": int | None, "k": int, "temperature": float},
    "card": {
        "dataset_name": str,
        "dataset_ids": list[str],
        "license": str | None,
        "terms": str | None,
        "paper_top1": float | None,
        "paper_source": str | None,
    },
}
REQUIRED = ("protocol", "schedule.epochs", "schedule.learning_rate", "schedule.global_batch_size")

# TrainingArguments fields the recipe sets from its other sections: a value in `trainer` would be overwritten.
SET_BY_THE_RECIPE = {
    "num_train_epochs": "schedule.epochs",
    "learning_rate": "schedule.learning_rate",
    "lr_scheduler_type": "schedule (warm-up, then cosine to schedule.min_learning_rate)",
    "lr_scheduler_kwargs": "schedule.min_learning_rate",
    "warmup_steps": "schedule.warmup_epochs",
    "per_device_train_batch_size": "schedule.global_batch_size",
    "seed": "seed",
    "optim": "optimizer.name",
    "optim_args": "the optimizer section",
    "weight_decay": "optimizer.weight_decay",
    "adam_beta1": "optimizer.betas",
    "adam_beta2": "optimizer.betas",
    "adam_epsilon": "optimizer.eps",
}


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars: only `true`/`false` are booleans (`eval_strategy: no` stays the
    text "no"), and `3e-4` is a float (YAML 1.1 wants `3.0e-4`)."""


_BOOL, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float"
RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RecipeLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
RecipeLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a recipe file (following its `extends` chain) and apply `section.key=value` overrides."""
    config = _load_file(Path(path), seen=())
    for override in overrides:
        apply_override(config, override)
    validate_config(config)
    return config


def apply_override(config: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in place; the value is parsed as YAML (`true`, `null`, `[0.9, 0.95]`, `3e-4`, `text`)."""
    key, sep, raw_value = override.partition("=")
    if not sep or not key:
        raise ValueError(f"Overrides are written section.key=value (e.g. schedule.epochs=10), got {override!r}.")
    *parents, leaf = key.strip().split(".")
    node = config
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"Cannot set {key!r}: {part!r} holds a value, not a section.")
        node = child
    node[leaf] = parse_value(raw_value)


def parse_value(text: str) -> Any:
    """A value written on the command line, read as YAML (see `RecipeLoader`)."""
    return yaml.load(text, Loader=RecipeLoader)


def validate_config(config: Mapping[str, Any]) -> None:
    """Refuse unknown keys and values of the wrong type in every section (naming the key), and missing settings."""
    _check_section("", config, SCHEMA[""])
    for section in ("data", "optimizer", "schedule", "knn_monitor", "card"):
        _check_section(section, config.get(section) or {}, SCHEMA[section])
    _check_section("trainer", config.get("trainer", {}), trainer_fields())
    for key in REQUIRED:
        section, _, name = key.rpartition(".")
        if name not in (config.get(section, {}) if section else config):
            raise ValueError(f"{key} is required; set it in the config or with {key}=...")
    for name, section in SET_BY_THE_RECIPE.items():
        if name in config.get("trainer", {}):
            raise ValueError(f"trainer.{name} is set by the recipe from {section}; set that instead.")
    protocol, schedule = config["protocol"], config["schedule"]
    if protocol == "pretrain" and config.get("init_from") is not None:
        raise ValueError(
            f"init_from={config['init_from']!r} is not used by pre-training, which starts from random weights; remove "
            "it (trainer.resume_from_checkpoint=true continues an interrupted pre-training)."
        )
    if protocol != "pretrain" and config.get("knn_monitor"):
        raise ValueError(f"knn_monitor watches pre-training only; remove it from this {protocol} recipe.")
    for epoch in config.get("snapshot_epochs", []):
        if not 1 <= epoch <= schedule["epochs"]:
            raise ValueError(f"snapshot_epochs must lie in [1, epochs={schedule['epochs']}], got {epoch}.")
    if not 0 <= schedule.get("warmup_epochs", 0) < schedule["epochs"]:
        raise ValueError(
            f"schedule.warmup_epochs must be in [0, epochs={schedule['epochs']}), got {schedule.get('warmup_epochs')}."
        )


@functools.cache
def trainer_fields() -> dict[str, Any]:
    """The `trainer` section's schema: the `TrainingArguments` fields and their types; `resume_from_checkpoint` also
    takes `true` (the newest checkpoint of `output_dir`, see `training/checkpoints.py`)."""
    hints = typing.get_type_hints(TrainingArguments)
    fields = {field.name: hints[field.name] for field in dataclasses.fields(TrainingArguments) if field.init}
    fields["resume_from_checkpoint"] = bool | str | None
    return fields


def _check_section(section: str, values: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    where = f"{section}." if section else ""
    for key, value in values.items():
        if key not in schema:
            close = difflib.get_close_matches(str(key), schema, n=1)
            if close:
                hint = f"did you mean {where}{close[0]}?"
            elif section == "trainer":
                hint = "trainer takes the fields of transformers.TrainingArguments."
            else:
                hint = f"{section or 'a recipe'} takes {', '.join(schema)}."
            raise ValueError(f"Unknown key {where}{key}; {hint}")
        if not _is_a(value, schema[key]):
            raise ValueError(f"{where}{key} must be {_describe(schema[key])}, got {value!r}.")


def _is_a(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a type annotation (an integer fits `float`; `true` fits only `bool`)."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_a(value, argument) for argument in arguments)
    if origin is Literal:
        return value in arguments
    if annotation is type(None) or annotation is None:
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation in (int, float):
        return isinstance(value, (int, float) if annotation is float else int) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return value in {member.value for member in annotation}
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_is_a(item, arguments[0]) for item in value)
    if annotation in (str, dict, list) or origin is dict:
        return isinstance(value, origin or annotation)
    return True  # a type YAML cannot write (callables, objects): TrainingArguments checks it


def _describe(annotation: Any) -> str:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(argument) for argument in arguments)
    if origin is Literal:
        return f"one of {list(arguments)}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return f"one of {[member.value for member in annotation]}"
    if origin in (list, tuple):
        return f"a list of {_describe(arguments[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {type(None): "null", None: "null", bool: "true or false", int: "an integer", float: "a number",
             str: "a string", dict: "a mapping", list: "a list"}  # fmt: skip
    return names.get(origin or annotation, getattr(annotation, "__name__", str(annotation)))


def _load_file(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ValueError(f"Config files extend each other in a cycle: {' -> '.join(map(str, (*seen, path)))}.")
    if not path.is_file():
        raise ValueError(f"Config file {path} does not exist; the recipes are in training/configs/.")
    with open(path, encoding="utf-8") as f:
        own = yaml.load(f, Loader=RecipeLoader) or {}
    if not isinstance(own, dict):
        raise ValueError(f"{path} must hold a mapping of config sections, got {type(own).__name__}.")
    bases = own.pop("extends", [])
    config: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        config = merge(config, _load_file(path.parent / base, (*seen, path)))
    return merge(config, own)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, any other value of `update` replaces the one of `base`."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
