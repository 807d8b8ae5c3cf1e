"""The seams with transformers: every private name or undocumented behaviour of transformers that mamp_hub relies on.

Each is used from here only, says why it is needed, and is exercised by name in `tests/test_compat.py`, so that a
transformers release that moves or changes one fails a test that names it instead of a user's call somewhere else.
The transformers versions these seams are known to work with are the range `setup.cfg` admits; `.ci/run` runs the
suite against the newest and the oldest of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import Pipeline
from transformers.generation.configuration_utils import GenerationConfig
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

# ----------------------------------------------------------------------------- configuration


def generation_parameter_names() -> frozenset[str]:
    """The generation options (`max_length`, `num_beams`, ...) that transformers may pass to any config, also to one
    of a model that does not generate (old `config.json` files carry them). `MampConfig` refuses unknown keyword
    arguments, so it must know these; transformers lists them only in a private method."""
    return frozenset(GenerationConfig._get_default_generation_params())


def mark_as_strict_validator(validate: Any) -> Any:
    """Mark a `validate` method that wraps `@strict`'s own as strict: huggingface_hub's `@strict` (which transformers'
    configs use) refuses to decorate a class whose inherited `validate` lacks this private marker, so without it no
    strict subclass of `MampConfig` could be declared (`MampConfig` wraps `validate` to raise its own error class)."""
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


class LoadingReportHook:
    """Mixin for a `PreTrainedModel` subclass: `from_pretrained` calls the private method below with the missing,
    unexpected and mismatched keys (`loading_info.missing_keys`, `.unexpected_keys`, `.mismatched_keys`) just before
    it logs its loading report; the subclass's `adjust_loading_report(loading_info)` may shorten that report."""

    def _adjust_missing_and_unexpected_keys(self, loading_info: Any) -> None:
        super()._adjust_missing_and_unexpected_keys(loading_info)
        self.adjust_loading_report(loading_info)

    def adjust_loading_report(self, loading_info: Any) -> None:
        """Override to edit `loading_info`'s key sets before transformers reports them."""


def is_data_parallel_replica(module: torch.nn.Module) -> bool:
    """Whether `module` is a replica made by `nn.DataParallel` (which Trainer uses on several GPUs without torchrun):
    such a replica gets a slice of every input along its first dimension, so an index into the whole batch (the
    processor's `present_persons`) does not belong to it. `torch.nn.parallel.replicate` marks replicas with this
    private attribute."""
    return bool(getattr(module, "_is_replica", False))


# ----------------------------------------------------------------------------- pipelines


def pipeline_iterator(
    pipeline: Pipeline,
    inputs: Any,
    num_workers: int,
    batch_size: int,
    preprocess_params: dict[str, Any],
    forward_params: dict[str, Any],
    postprocess_params: dict[str, Any],
    collate_fn: Callable[[list[Any]], Any],
) -> Iterator[Any]:
    """What `Pipeline.get_iterator` (undocumented; `Pipeline.__call__` calls it for a list or a data set of inputs)
    builds, with another collate function: the skeleton pipelines batch lists of clips of any length for their
    processor instead of padding per-clip tensors. Built from transformers' `PipelineDataset` / `PipelineIterator`
    (`transformers.pipelines.pt_utils`) as `get_iterator` builds it."""
    if isinstance(inputs, Sized):
        dataset = PipelineDataset(inputs, pipeline.preprocess, preprocess_params)
    else:
        num_workers = min(num_workers, 1)  # workers cannot share out an iterable's items
        dataset = PipelineIterator(inputs, pipeline.preprocess, preprocess_params)
    dataloader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=collate_fn)
    model_iterator = PipelineIterator(dataloader, pipeline.forward, forward_params, loader_batch_size=batch_size)
    return PipelineIterator(model_iterator, pipeline.postprocess, postprocess_params)
