"""What runs a batch of window clips: a PyTorch model (from a pipeline, or with its processor) or an ONNX Runtime session
of a `mamp-export-onnx` file. Each is a callable `clips -> (B, ...) tensor`; the clips go through the model's
processor (central evaluation crop, resize to the model's frames) in one batch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

from ..configuration_mamp import MampConfig
from ..processing_mamp import MampSkeletonProcessor

SCORE_FUNCTIONS: tuple[str, ...] = ("softmax", "sigmoid", "none")
CLASSIFIER = "MampForSkeletonClassification"


def class_scores(logits: torch.Tensor, function_to_apply: str | None, problem_type: str | None) -> torch.Tensor:
    """`(..., num_labels)` logits -> float32 scores: `function_to_apply` (`"softmax"`, `"sigmoid"` or `"none"`), by
    default `"sigmoid"` for a multi-label model, `"none"` for regression, else `"softmax"`."""
    if function_to_apply is None:
        defaults = {"regression": "none", "multi_label_classification": "sigmoid"}
        function_to_apply = defaults.get(problem_type, "softmax")
    logits = logits.float()
    if function_to_apply == "softmax":
        return logits.softmax(-1)
    return logits.sigmoid() if function_to_apply == "sigmoid" else logits


def checked_score_function(function_to_apply: Any) -> str | None:
    if function_to_apply is not None and function_to_apply not in SCORE_FUNCTIONS:
        raise ValueError(f"function_to_apply must be one of {list(SCORE_FUNCTIONS)}, got {function_to_apply!r}.")
    return function_to_apply


class TorchRunner:
    """Clips -> one output of a MAMP model: class scores (`output="scores"`) or `"pooler_output"` /
    `"last_hidden_state"` features, `(B, ...)` float32 on the CPU.

    Args:
        model: a MAMP model in eval mode (`MampForSkeletonClassification` for scores).
        processor: the processor that prepares its inputs.
        output: `"scores"`, `"pooler_output"` or `"last_hidden_state"`.
        function_to_apply: for scores, see `class_scores`.
        device: where the model runs (default: the model's device).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        processor: MampSkeletonProcessor,
        output: str = "scores",
        function_to_apply: str | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.model, self.processor, self.output = model, processor, output
        self.function_to_apply = checked_score_function(function_to_apply)
        self.device = model.device if device is None else device
        self.config = model.config

    def __call__(self, clips: list[np.ndarray]) -> torch.Tensor:
        """`clips`: `(persons, frames, joints, channels)` arrays of any lengths."""
        inputs = self.processor(clips, layout="MTVC").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        if self.output == "scores":
            return class_scores(outputs["logits"], self.function_to_apply, self.config.problem_type).cpu()
        return outputs[self.output].float().cpu()


class OnnxRunner:
    """Clips -> class scores from ONNX Runtime running a classifier exported by `mamp-export-onnx` (`export_onnx`).

    Args:
        session: an `onnxruntime.InferenceSession` of the file, or the file's path (a CPU session is opened).
        processor: the processor that prepares the inputs; default: a `MampSkeletonProcessor` with the frames,
            joints, channels and persons of the config stored in the file and the other options at their defaults
            (the published checkpoints' evaluation crop; pass the checkpoint's saved processor if it differs).
        function_to_apply: see `class_scores`.
    """

    def __init__(
        self,
        session: Any,
        processor: MampSkeletonProcessor | None = None,
        function_to_apply: str | None = None,
    ) -> None:
        from ..tools.onnx_export import CONFIG_METADATA_KEY, INPUT_NAME

        if isinstance(session, (str, os.PathLike)):
            session = open_onnx_session(session)
        outputs = [output.name for output in session.get_outputs()]
        if "logits" not in outputs:
            raise ValueError(
                f"The ONNX model outputs {outputs}, not logits: it is a features export; export a classifier "
                "(mamp-export-onnx on a fine-tuned or linear-probe checkpoint)."
            )
        metadata = session.get_modelmeta().custom_metadata_map
        if CONFIG_METADATA_KEY not in metadata:
            raise ValueError(
                f"The ONNX model has no {CONFIG_METADATA_KEY!r} metadata, so its labels and input size are unknown; "
                "export it with mamp-export-onnx (mamp_hub.tools.onnx_export.export_onnx)."
            )
        self.config = MampConfig.from_dict(json.loads(metadata[CONFIG_METADATA_KEY]))
        self.session, self.input_name = session, INPUT_NAME
        self.processor = processor or MampSkeletonProcessor(
            num_frames=self.config.num_frames,
            num_joints=self.config.num_joints,
            num_channels=self.config.num_channels,
            max_persons=self.config.max_persons,
        )
        self.function_to_apply = checked_score_function(function_to_apply)

    def __call__(self, clips: list[np.ndarray]) -> torch.Tensor:
        values = self.processor(clips, layout="MTVC", return_tensors="np")["skeleton_values"]
        (logits,) = self.session.run(["logits"], {self.input_name: values})
        return class_scores(torch.from_numpy(logits), self.function_to_apply, self.config.problem_type)


def open_onnx_session(path: str | os.PathLike) -> Any:
    """A CPU `onnxruntime.InferenceSession` of an `.onnx` file; `ValueError` for a missing file, `ImportError` without
    onnxruntime."""
    if not Path(path).is_file():
        raise ValueError(f"There is no ONNX file at {str(path)!r}; pass the path of a file from mamp-export-onnx.")
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            'Running an ONNX model needs onnxruntime, which is not installed; pip install "mamp-hub[onnx]".'
        ) from None
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def classifier_runner(
    source: Any,
    processor: MampSkeletonProcessor | None = None,
    function_to_apply: str | None = None,
) -> TorchRunner | OnnxRunner:
    """The runner of class scores for `source`: a `"skeleton-action-recognition"` pipeline (its model, processor and
    device), a `MampForSkeletonClassification` (with `processor`, default: the one saved where the model was loaded
    from), or an ONNX classifier (an `onnxruntime.InferenceSession` or the path of a `.onnx` file, see `OnnxRunner`).

    Raises:
        TypeError: `source` is none of those.
        ValueError: a model without a processor, or an ONNX file that is not a classifier export.
    """
    if isinstance(source, Pipeline):
        if type(source.model).__name__ != CLASSIFIER:
            raise TypeError(
                f"Recognising actions needs a skeleton-action-recognition pipeline, got a {source.task} pipeline of "
                f"{type(source.model).__name__}."
            )
        return TorchRunner(source.model, processor or source.feature_extractor, "scores", function_to_apply)
    if isinstance(source, torch.nn.Module) and type(source).__name__ == CLASSIFIER:
        return TorchRunner(source.eval(), processor or _saved_processor(source), "scores", function_to_apply)
    if (isinstance(source, (str, os.PathLike)) and str(source).endswith(".onnx")) or hasattr(source, "get_modelmeta"):
        return OnnxRunner(source, processor, function_to_apply)
    raise TypeError(
        f"Got {type(source).__name__} where a classifier was expected; pass a skeleton-action-recognition pipeline, a "
        "MampForSkeletonClassification (with processor=), or an ONNX classifier (an onnxruntime.InferenceSession or "
        "the path of a .onnx file from mamp-export-onnx)."
    )


def _saved_processor(model: torch.nn.Module) -> MampSkeletonProcessor:
    source = model.name_or_path
    missing = (
        f"The model has no processor to prepare its windows; pass processor=MampSkeletonProcessor(num_frames="
        f"{model.config.num_frames}) or the checkpoint's (MampSkeletonProcessor.from_pretrained(...))."
    )
    if not source:
        raise ValueError(missing)
    try:
        return MampSkeletonProcessor.from_pretrained(source, local_files_only=Path(source).is_dir())
    except OSError:
        raise ValueError(missing) from None
