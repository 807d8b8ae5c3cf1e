"""Each seam with transformers (`mamp_hub/_compat.py`) exercised by name: a transformers release that moves or
changes one of them fails here, with the seam's name, before it fails a user."""

from __future__ import annotations

import inspect
import logging

import numpy as np
import pytest
import torch
import transformers
from conftest import tiny_config
from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoFeatureExtractor, GenerationConfig, Pipeline, PreTrainedModel, pipeline

from mamp_hub import MampConfig, MampForSkeletonClassification, MampModel, MampSkeletonProcessor
from mamp_hub._compat import (
    LoadingReportHook,
    generation_parameter_names,
    is_data_parallel_replica,
    is_loading_argument,
    mark_as_strict_validator,
    pipeline_iterator,
)


def test_transformers_version_is_reported(record_property):
    """The version the suite ran with, in the test report (and `.ci/run` prints it)."""
    record_property("transformers", transformers.__version__)
    assert transformers.__version__.startswith("5.")


def test_generation_parameter_names_are_what_a_config_may_be_given():
    names = generation_parameter_names()
    assert {"max_length", "num_beams"} <= names
    assert names == frozenset(GenerationConfig._get_default_generation_params())
    MampConfig(max_length=20, num_beams=1)  # an old config.json may carry them


def test_strict_validator_marker_lets_a_strict_subclass_be_declared():
    """huggingface_hub's `@strict` refuses a class whose inherited `validate` it did not write itself, unless that
    method carries its private marker: `MampConfig` wraps `validate`, so a strict subclass needs the marker."""
    marked = mark_as_strict_validator(lambda self: None)
    assert marked.__is_defined_by_strict_decorator__ is True

    @strict
    class LargerMampConfig(MampConfig):
        extra_layers: int = 1

    assert LargerMampConfig(extra_layers=2).extra_layers == 2
    with pytest.raises(StrictDataclassError, match="mask_ratio"):
        LargerMampConfig(mask_ratio=2.0)


def test_loading_arguments_are_those_transformers_passes_to_a_processor(tmp_path):
    """`pipeline()` passes `_from_pipeline` (transformers >= 5.25) and the model-loading arguments along."""
    assert is_loading_argument("_from_pipeline") and is_loading_argument("dtype")
    assert not is_loading_argument("num_frames")
    MampSkeletonProcessor(num_frames=16).save_pretrained(tmp_path)
    seen = {}
    original = MampSkeletonProcessor.from_dict.__func__

    def spy(cls, feature_extractor_dict, **kwargs):
        seen.update(kwargs)
        return original(cls, feature_extractor_dict, **kwargs)

    MampForSkeletonClassification(tiny_config()).save_pretrained(tmp_path)
    try:
        MampSkeletonProcessor.from_dict = classmethod(spy)
        pipeline("skeleton-action-recognition", model=str(tmp_path))
    finally:
        MampSkeletonProcessor.from_dict = classmethod(original)
    unknown = sorted(name for name in seen if not is_loading_argument(name) and name != "return_unused_kwargs")
    assert not unknown, f"transformers passes new loading arguments to processors: {unknown}"
    assert AutoFeatureExtractor.from_pretrained(tmp_path, _from_pipeline="x").num_frames == 16


def test_loading_report_hook_is_called_by_from_pretrained(tmp_path, caplog):
    """`PreTrainedModel._adjust_missing_and_unexpected_keys` still exists and `from_pretrained` still calls it with
    the key sets `adjust_loading_report` edits."""
    assert hasattr(PreTrainedModel, "_adjust_missing_and_unexpected_keys")
    calls = []

    class Recording(LoadingReportHook):
        def adjust_loading_report(self, loading_info) -> None:
            calls.append({name: set(getattr(loading_info, name)) for name in ("missing_keys", "unexpected_keys")})

    class RecordingModel(Recording, MampForSkeletonClassification):
        pass

    MampModel(tiny_config()).save_pretrained(tmp_path)
    RecordingModel.from_pretrained(tmp_path)
    assert (
        len(calls) == 1
        and calls[0]["missing_keys"]
        and all(k.startswith("classifier.") for k in calls[0]["missing_keys"])
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        MampForSkeletonClassification.from_pretrained(tmp_path)
    assert "a new classifier was initialised" in caplog.text and "MISSING" not in caplog.text


def test_data_parallel_replicas_are_recognised():
    """`nn.DataParallel`'s `replicate` (GPUs only) copies each module with `Module._replicate_for_data_parallel`."""
    model = MampModel(tiny_config())
    assert not is_data_parallel_replica(model)
    assert "_replicate_for_data_parallel()" in inspect.getsource(torch.nn.parallel.replicate)
    assert is_data_parallel_replica(model._replicate_for_data_parallel())


def test_pipeline_iterator_matches_what_pipeline_call_expects():
    """`Pipeline.get_iterator`'s signature is the one the skeleton pipelines override, and `__call__` uses it."""
    parameters = list(inspect.signature(Pipeline.get_iterator).parameters)
    assert parameters == [
        "self",
        "inputs",
        "num_workers",
        "batch_size",
        "preprocess_params",
        "forward_params",
        "postprocess_params",
    ]
    assert "self.get_iterator(" in inspect.getsource(Pipeline.__call__)
    config = tiny_config(num_labels=2)
    classifier = pipeline(
        "skeleton-action-recognition",
        model=MampForSkeletonClassification(config).eval(),
        feature_extractor=MampSkeletonProcessor(num_frames=16),
    )
    clips = [np.full((20 + i, 25, 3), i + 1, np.float32) for i in range(3)]
    batches = []

    def collate(items):
        batches.append(len(items))
        return {"clips": [clip for item in items for clip in item["clips"]]}

    results = list(pipeline_iterator(classifier, clips, 0, 2, {}, {}, {"top_k": 1}, collate))
    assert batches == [2, 1] and [len(result) for result in results] == [1, 1, 1]
    assert results == classifier(clips, top_k=1, batch_size=2)
