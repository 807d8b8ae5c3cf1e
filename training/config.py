"""Recipe configuration files: YAML with `extends`, plus `section.key=value` overrides from the command line.

A recipe is a nested mapping with these sections (see `configs/base/*.yaml` for every key and its meaning):

    protocol     "pretrain" | "linear_probe" | "finetune"
    seed         random seed of the run (model initialisation, data order, augmentation, masking)
    init_from    folder or Hub id of a `save_pretrained` model to start from (linear probe / fine-tuning),
                 null to start from random weights
    data         which data set, where it is, how it is sampled (see `training/data.py`)
    model        `MampConfig` keyword arguments
    optimizer    name, betas / momentum, weight decay, layer-wise lr decay
    schedule     epochs, warm-up epochs, peak and final learning rate, global batch size
    trainer      any other `transformers.TrainingArguments` field (output_dir, bf16, save_strategy, ...)
    knn_monitor  optional kNN accuracy of the encoder's features during pre-training
    card         what the generated model card says about the data set and the paper's numbers

`extends: path` (or a list of paths), relative to the file, names base files merged first, in order; the
file's own keys then override theirs. Mappings merge key by key, everything else is replaced.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

SECTIONS = {
    "protocol",
    "seed",
    "init_from",
    "data",
    "model",
    "optimizer",
    "schedule",
    "trainer",
    "knn_monitor",
    "card",
}
PROTOCOLS = ("pretrain", "linear_probe", "finetune")


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
    unknown = set(config) - SECTIONS
    if unknown:
        raise ValueError(f"Unknown config sections {sorted(unknown)}; the sections are {sorted(SECTIONS)}.")
    if config.get("protocol") not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {config.get('protocol')!r}.")
    for section in ("data", "model", "optimizer", "schedule", "trainer"):
        if not isinstance(config.get(section, {}), dict):
            raise ValueError(f"Config section {section!r} must be a mapping, got {config[section]!r}.")
    schedule = config.get("schedule", {})
    for key in ("epochs", "learning_rate", "global_batch_size"):
        if key not in schedule:
            raise ValueError(f"schedule.{key} is required; set it in the config or with schedule.{key}=...")
    if not 0 <= float(schedule.get("warmup_epochs", 0)) < float(schedule["epochs"]):
        raise ValueError(
            f"schedule.warmup_epochs must be in [0, epochs={schedule['epochs']}), got {schedule.get('warmup_epochs')}."
        )


def _load_file(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ValueError(f"Config files extend each other in a cycle: {' -> '.join(map(str, seen + (path,)))}.")
    if not path.is_file():
        raise ValueError(f"Config file {path} does not exist; the recipes are in training/configs/.")
    with open(path, encoding="utf-8") as f:
        own = yaml.load(f, Loader=RecipeLoader) or {}
    if not isinstance(own, dict):
        raise ValueError(f"{path} must hold a mapping of config sections, got {type(own).__name__}.")
    bases = own.pop("extends", [])
    config: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        config = merge(config, _load_file(path.parent / base, seen + (path,)))
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
