"""The seams with transformers: every private name or undocumented behaviour of transformers that mamp_hub relies on.

Each is used from here only, says why it is needed, and is exercised by name in `tests/test_compat.py`, so that a
transformers release that moves or changes one fails a test that names it instead of a user's call somewhere else.
The transformers versions these seams are known to work with are the range `setup.cfg` admits; `.ci/run` runs the
suite against the newest and the oldest of them.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.generation.configuration_utils import GenerationConfig

# ----------------------------------------------------------------------------- configuration


def generation_parameter_names() -> frozenset[str]:
    """The generation options (`max_length`, `num_beams`, ...) that transformers may pass to any config, also to one
    of a model that does not generate (old `config.json` files carry them). `MampConfig` refuses unknown keyword
    arguments, so it must know these; transformers lists them only in a private method."""
    return frozenset(GenerationConfig._get_default_generation_params())


def mark_as_strict_validator(validate: Any) -> Any:
    """Mark a `validate` method that wraps `@strict`'s own as strict: transformers' `PreTrainedConfig` looks for this
    private marker to decide whether a config class validates itself (`huggingface_hub.dataclasses.strict` sets it on
    the method it writes, which `MampConfig` wraps to raise its own error class)."""
    validate.__is_defined_by_strict_decorator__ = True
    return validate


# ----------------------------------------------------------------------------- processor loading


# Keyword arguments that transformers passes on to a feature extractor's `from_dict` when it loads one, besides the
# options saved in `preprocessor_config.json`: `pipeline()` forwards its model-loading arguments to every component.
# Private ones start with an underscore (`_from_pipeline` since transformers 5.25, `_from_auto`, `_commit_hash`) and
# their set changes between releases, so any underscore name counts as one.
MODEL_LOADING_ARGUMENTS = frozenset(
    {"dtype", "torch_dtype", "device_map", "code_revision", "trust_remote_code", "revision", "token", "cache_dir"}
)


def is_loading_argument(name: str) -> bool:
    """Whether `name` is an argument that transformers passes along when it loads a processor, not an option of it."""
    return name.startswith("_") or name in MODEL_LOADING_ARGUMENTS


# ----------------------------------------------------------------------------- model loading and parallel wrappers


LOADING_REPORT_HOOK = "_adjust_missing_and_unexpected_keys"
"""`PreTrainedModel.from_pretrained` calls this private method with the missing / unexpected / mismatched keys just
before it logs its loading report; `MampPreTrainedModel` overrides it to say in one line that a new head was
initialised (or a checkpoint's head is unused) instead of a table of keys."""


def is_data_parallel_replica(module: torch.nn.Module) -> bool:
    """Whether `module` is a replica made by `nn.DataParallel` (which Trainer uses on several GPUs without torchrun):
    such a replica gets a slice of every input along its first dimension, so an index into the whole batch (the
    processor's `present_persons`) does not belong to it. `torch.nn.parallel.replicate` marks replicas with this
    private attribute."""
    return bool(getattr(module, "_is_replica", False))
