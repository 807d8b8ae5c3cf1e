"""`transformers` pipelines for MAMP: `"skeleton-action-recognition"` and `"skeleton-feature-extraction"`.

`import mamp_hub` registers both tasks, so that `transformers.pipeline` builds them from any MAMP checkpoint that
has a processor (`preprocessor_config.json`):

```python
import mamp_hub  # noqa: F401 (registers the tasks)
from transformers import pipeline

classifier = pipeline("skeleton-action-recognition", model="converted/ntu60-xsub-finetune")
classifier("clip.npy")                              # [{"score": 0.91, "label": "drink water"}, ...], the top 5
classifier(["a.npy", array, tensor], batch_size=8)  # one such list per clip
classifier("lifted.npy", joint_layout="h36m")       # Human3.6M joints, converted to the NTU layout
embedder = pipeline("skeleton-feature-extraction", model="converted/ntu60-xsub-finetune")
embedder("clip.npy")                                # the clip embedding: hidden_size floats
```

A clip is a numpy array, a torch tensor, or the path of a `.npy` or `.npz` file, in any array layout the processor
reads (`MampSkeletonProcessor`: `(frames, 25, 3)`, `(persons, frames, 25, 3)`, NTU rows `(frames, 150)`, ...). A
`.npz` file's clips are its `x_test` array (the standard NTU / PKU-MMD files' test split), else its `x` array, or
the array that `npz_key=` names. An input that holds several clips (a list, a batched array, a file of a batch)
gives one result per clip; the pipeline's `batch_size` sets how many clips go through the processor and the model
together.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Pipeline
from transformers.pipelines.base import build_pipeline_init_args
from transformers.utils import add_end_docstrings

from ._compat import pipeline_iterator
from .checks import checked, flag, positive_int
from .data.npz import load_npy, load_npz, npz_array_names
from .processing_mamp import MampSkeletonProcessor
from .skeletons.layouts import as_float_array

# The arrays a `.npz` file's clips are read from when `npz_key` is not given, in order of preference.
NPZ_KEYS: tuple[str, ...] = ("x_test", "x")
_SCORE_FUNCTIONS = ("softmax", "sigmoid", "none")
# The call arguments that say how to read the input.
_READING_PARAMETERS = ("layout", "npz_key", "joint_layout", "joint_units", "joint_axes")

SkeletonClip = np.ndarray | torch.Tensor | str | os.PathLike


def load_skeleton_file(path: str | os.PathLike, npz_key: str | None = None) -> np.ndarray:
    """The skeleton array of a `.npy` file, or of a `.npz` file's `npz_key` (default: `x_test`, else `x`); a `.npy`
    file that holds a zip archive is read as `.npz`, as `np.load` does. Nothing is unpickled.

    Raises:
        ValueError: naming the file, when the path is not a `.npy` or `.npz` file, is missing, holds no such array or
            one of Python objects, or is not what its name says or cut short.
    """
    path = Path(path)
    if path.suffix not in (".npy", ".npz"):
        raise ValueError(f"{str(path)!r} is not a .npy or .npz file; pass the path of one, or an array of joints.")
    if not path.is_file():
        raise ValueError(f"There is no file at {str(path)!r}; pass the path of an existing .npy or .npz file.")
    try:
        if path.suffix == ".npy" and not zipfile.is_zipfile(path):
            return load_npy(path)
        files = npz_array_names(path)
    except OSError as error:
        raise ValueError(f"{str(path)!r} could not be read ({error}).") from None
    key = npz_key if npz_key is not None else next((key for key in NPZ_KEYS if key in files), None)
    if key not in files:
        wanted = repr(npz_key) if npz_key is not None else "'x_test' or 'x'"
        raise ValueError(
            f"{str(path)!r} has no array {wanted} (it has {files}); pass npz_key= naming the array that holds the "
            "clips."
        )
    return load_npz(path, keys=[key])[key]


def read_skeletons(inputs: Any, npz_key: str | None = None) -> np.ndarray:
    """An array, tensor or `.npy`/`.npz` path -> float32 numpy array of joints, as the processor reads it."""
    if isinstance(inputs, (str, os.PathLike)):
        return as_float_array(load_skeleton_file(inputs, npz_key), f"The array of {str(inputs)!r}")
    if isinstance(inputs, (np.ndarray, torch.Tensor)):
        return as_float_array(inputs)
    raise ValueError(
        f"Got input of type {type(inputs).__name__} where skeletons were expected; pass a numpy array, a torch "
        "tensor, the path of a .npy or .npz file, or a list of those."
    )


class _SkeletonPipeline(Pipeline):
    """What both skeleton pipelines share: reading clips, the processor's options, batching through the processor."""

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_tokenizer = False
    # Loaded when the checkpoint has one (None: a failure leaves it None), so that `__init__` can say what to pass.
    _load_feature_extractor = None
    _model_classes: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.feature_extractor is None:
            self.feature_extractor = self._load_saved_processor()
        # A class-name check, as `Pipeline.check_model_type` does: remote-code classes are other class objects.
        if type(self.model).__name__ not in self._model_classes:
            raise ValueError(
                f"The {self.task} pipeline runs {' or '.join(self._model_classes)}, got {type(self.model).__name__}; "
                "load the checkpoint for this task with pipeline(task, model=...)."
            )

    def _load_saved_processor(self) -> MampSkeletonProcessor:
        """The processor saved with the model, for when `transformers.pipeline` did not load one: it swallows the
        error of a failed load, so the load is repeated here to report what went wrong."""
        source = self.model.name_or_path
        missing = (
            f"The {self.task} pipeline found no skeleton processor with the model; pass "
            f"feature_extractor=MampSkeletonProcessor(num_frames={self.model.config.num_frames}), or save one "
            "with the checkpoint (processor.save_pretrained)."
        )
        if not source:  # a model object built in memory: there is nothing to load from
            raise ValueError(missing)
        try:
            return MampSkeletonProcessor.from_pretrained(source, local_files_only=Path(source).is_dir())
        except OSError:  # no preprocessor_config.json where the model came from
            raise ValueError(missing) from None
        except ValueError as error:
            raise ValueError(f"The skeleton processor saved with {source!r} could not be loaded: {error}") from error

    def __call__(self, inputs: SkeletonClip | list[SkeletonClip], **kwargs: Any) -> Any:
        """Runs the pipeline on one clip, or on each clip of a batch (see the subclasses)."""
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, (str, os.PathLike, np.ndarray, torch.Tensor)):
            # One input may hold several clips (a batched array, an NTU .npz file): read it here to find out.
            reading = {name: kwargs[name] for name in _READING_PARAMETERS if name in kwargs}
            params = {**self._preprocess_params, **self._sanitize_parameters(**reading)[0]}
            processor = params.get("processor", self.feature_extractor)
            inputs = read_skeletons(inputs, params.get("npz_key"))
            if not processor.resolve_layout(inputs.shape, params.get("layout"))[1]:
                return super().__call__(inputs, **kwargs)
            inputs = list(inputs)
        if isinstance(inputs, list) and not inputs:
            raise ValueError("Got no clips (an empty list or batch); pass at least one clip.")
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        layout: str | None = None,
        npz_key: str | None = None,
        joint_layout: str | None = None,
        joint_units: str | None = None,
        joint_axes: str | None = None,
        **postprocess_kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        preprocess_params: dict[str, Any] = {}
        if layout is not None:
            preprocess_params["layout"] = layout
        if npz_key is not None:
            preprocess_params["npz_key"] = npz_key
        if (joint_layout, joint_units, joint_axes) != (None, None, None):
            preprocess_params["processor"] = self._processor_with(joint_layout, joint_units, joint_axes)
        forward_params = {key: preprocess_params[key] for key in ("layout", "processor") if key in preprocess_params}
        return preprocess_params, forward_params, self._postprocess_parameters(**postprocess_kwargs)

    def _postprocess_parameters(self, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _processor_with(
        self, joint_layout: str | None, joint_units: str | None, joint_axes: str | None
    ) -> MampSkeletonProcessor:
        """The pipeline's processor (as the pipeline was made, else as saved) with the given joint-layout options
        changed and nothing else. Units and axes belong to a layout: a different `joint_layout` drops those it had
        (its source's usual ones apply, or those given with it), with a warning that names them."""
        if self.feature_extractor is None:  # options given to `pipeline()`, before `__init__` loads the processor
            self.feature_extractor = self._load_saved_processor()
        made_with = getattr(self, "_preprocess_params", {})  # absent while the pipeline is being made
        options = made_with.get("processor", self.feature_extractor).to_dict()
        given = {"joint_layout": joint_layout, "joint_units": joint_units, "joint_axes": joint_axes}
        given = {name: value for name, value in given.items() if value is not None}
        if given.get("joint_layout", options["joint_layout"]) != options["joint_layout"]:
            dropped = {
                name: options[name]
                for name in ("joint_units", "joint_axes")
                if options[name] is not None and name not in given
            }
            if dropped:
                listed = ", ".join(f"{name}={value!r}" for name, value in dropped.items())
                warnings.warn(
                    f"joint_layout={joint_layout!r} replaces the processor's joint_layout="
                    f"{options['joint_layout']!r}, so its {listed} (set for that layout) are dropped and "
                    f"{joint_layout!r}'s usual ones apply; pass them with joint_layout to keep them.",
                    UserWarning,
                    stacklevel=1,  # here: the depth of the user's call differs (a call reads its options twice)
                )
            options.update(joint_units=None, joint_axes=None)
        return type(self.feature_extractor)(**{**options, **given})

    def preprocess(
        self,
        inputs: SkeletonClip,
        layout: str | None = None,
        npz_key: str | None = None,
        processor: MampSkeletonProcessor | None = None,
    ) -> dict[str, list[np.ndarray]]:
        """Reads ONE clip (an element of the input list, or the input itself): `{"clips": [(frames, ...) array]}`.
        The processor runs in `_forward`, on whole batches."""
        clip = read_skeletons(inputs, npz_key)
        processor = processor or self.feature_extractor
        try:  # one clip, read on its own as the processor reads each clip of a list
            processor.resolve_layout(clip.shape, layout, batched=False)
        except ValueError as error:
            try:
                processor.resolve_layout(clip.shape, layout, batched=True)
            except ValueError:
                raise error from None
            raise ValueError(
                f"An element of the input holds a batch of {len(clip)} clips (shape {clip.shape}); pass that batch on "
                "its own, or its clips as separate elements."
            ) from None
        return {"clips": [clip]}

    def get_iterator(
        self,
        inputs: Any,
        num_workers: int,
        batch_size: int,
        preprocess_params: dict[str, Any],
        forward_params: dict[str, Any],
        postprocess_params: dict[str, Any],
    ) -> Any:
        return pipeline_iterator(
            self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params, _gather_clips
        )

    def _forward(
        self,
        model_inputs: dict[str, list[np.ndarray]],
        layout: str | None = None,
        processor: MampSkeletonProcessor | None = None,
    ) -> Any:
        # The processor is vectorised over clips: it crops and resizes the whole batch at once, here rather than
        # clip by clip in `preprocess`. Its `present_persons` let the model skip the absent persons.
        processor = processor or self.feature_extractor
        inputs = processor(model_inputs["clips"], layout=layout).to(self.device)
        return self.model(**inputs)


def _gather_clips(items: list[dict[str, list[np.ndarray]]]) -> dict[str, list[np.ndarray]]:
    return {"clips": [clip for item in items for clip in item["clips"]]}


@add_end_docstrings(build_pipeline_init_args(has_feature_extractor=True))
class SkeletonActionRecognitionPipeline(_SkeletonPipeline):
    """Action recognition from 3D skeleton sequences with a MAMP classifier (`MampForSkeletonClassification`).

    Task `"skeleton-action-recognition"` (registered by `import mamp_hub`). See `mamp_hub.pipelines` for the inputs.

    Example:

    ```python
    >>> import mamp_hub
    >>> from transformers import pipeline
    >>> classifier = pipeline("skeleton-action-recognition", model="converted/ntu60-xsub-finetune")
    >>> classifier("clip.npy", top_k=2)
    [{'score': 0.93, 'label': 'drink water'}, {'score': 0.02, 'label': 'eat meal/snack'}]
    ```
    """

    _model_classes = ("MampForSkeletonClassification",)

    def __call__(
        self, inputs: SkeletonClip | list[SkeletonClip], **kwargs: Any
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """
        The most likely actions of each clip.

        Args:
            inputs: one clip (a numpy array, a torch tensor, a `.npy`/`.npz` path) or several (a list of clips, a
                batched array, a file holding a batch).
            top_k (`int`, *optional*, defaults to 5): labels per clip (at most the model's `num_labels`).
            function_to_apply (`str`, *optional*): `"softmax"`, `"sigmoid"` or `"none"` (the logits); default
                `"sigmoid"` for a multi-label model, `"none"` for regression, else `"softmax"`.
            layout (`str`, *optional*): the array layout of one clip (`MampSkeletonProcessor.__call__`'s `layout`),
                for shapes that fit two.
            joint_layout, joint_units, joint_axes (`str`, *optional*): the processor's joint-layout options for this
                call, e.g. `joint_layout="h36m"` for Human3.6M joints; each changes what it names, the others stay as
                the pipeline was made or saved (a different `joint_layout` drops the units and axes of the one it
                replaces, with a warning).
            npz_key (`str`, *optional*): the array of a `.npz` file that holds the clips (default `x_test`, else
                `x`).
            batch_size (`int`, *optional*): clips per processor and model call.

        Returns:
            For one clip, `top_k` dicts `{"score": float, "label": str}`, highest score first; for several, one such
            list per clip, in order.

        Raises:
            ValueError: for an input that is no clip (another type, a missing or unreadable file, a shape that fits
                no layout) or a bad option.
        """
        return super().__call__(inputs, **kwargs)

    def _postprocess_parameters(self, top_k: int | None = None, function_to_apply: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if top_k is not None:
            params["top_k"] = checked("top_k", positive_int, top_k)
        if function_to_apply is not None:
            if function_to_apply not in _SCORE_FUNCTIONS:
                raise ValueError(
                    f"function_to_apply must be one of {list(_SCORE_FUNCTIONS)}, got {function_to_apply!r}."
                )
            params["function_to_apply"] = function_to_apply
        return params

    def postprocess(
        self, model_outputs: Any, top_k: int = 5, function_to_apply: str | None = None
    ) -> list[dict[str, Any]]:
        """(1, num_labels) logits of one clip -> its `top_k` labels and scores, highest first."""
        config = self.model.config
        if function_to_apply is None:
            problem_type = config.problem_type
            defaults = {"regression": "none", "multi_label_classification": "sigmoid"}
            function_to_apply = defaults.get(problem_type, "softmax")
        logits = model_outputs["logits"][0].float()
        scores = {"softmax": logits.softmax(-1), "sigmoid": logits.sigmoid(), "none": logits}[function_to_apply]
        scores, ids = scores.topk(min(top_k, config.num_labels))
        return [
            {"score": score, "label": config.id2label[i]}
            for score, i in zip(scores.tolist(), ids.tolist(), strict=True)
        ]


@add_end_docstrings(build_pipeline_init_args(has_feature_extractor=True))
class SkeletonFeatureExtractionPipeline(_SkeletonPipeline):
    """Clip embeddings (or token features) of 3D skeleton sequences from any MAMP checkpoint's encoder.

    Task `"skeleton-feature-extraction"` (registered by `import mamp_hub`). See `mamp_hub.pipelines` for the inputs.

    Example:

    ```python
    >>> import mamp_hub
    >>> from transformers import pipeline
    >>> embedder = pipeline("skeleton-feature-extraction", model="converted/ntu60-xsub-pretrain")
    >>> len(embedder("clip.npy"))  # the pooled embedding: hidden_size floats
    256
    ```
    """

    _model_classes = ("MampModel", "MampForSkeletonClassification")

    def __call__(self, inputs: SkeletonClip | list[SkeletonClip], **kwargs: Any) -> Any:
        """
        The features of each clip.

        Args:
            inputs: one clip or several, as for `SkeletonActionRecognitionPipeline`.
            pool (`bool`, *optional*, defaults to `True`): the clip embedding, `(hidden_size,)` (the model's
                `pooler_output`, the mean of its token features); False: the token features,
                `(persons, segments, joint_patches, hidden_size)` (`last_hidden_state`; a `MampModel` only).
            return_tensors (`bool`, *optional*, defaults to `False`): torch tensors instead of nested lists.
            layout, joint_layout, joint_units, joint_axes, npz_key, batch_size: as for the action recognition
                pipeline.

        Returns:
            For one clip, its features; for several, a list of them, one per clip.
        """
        return super().__call__(inputs, **kwargs)

    def _postprocess_parameters(self, pool: bool | None = None, return_tensors: bool | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if pool is not None:
            params["pool"] = checked("pool", flag, pool)
        if return_tensors is not None:
            params["return_tensors"] = checked("return_tensors", flag, return_tensors)
        return params

    def postprocess(self, model_outputs: Any, pool: bool = True, return_tensors: bool = False) -> Any:
        if not pool and "last_hidden_state" not in model_outputs:
            raise ValueError(
                f"pool=False returns token features, which {type(self.model).__name__} does not output; load the "
                "checkpoint as MampModel (pipeline(task, model=path) does), or keep pool=True."
            )
        features = model_outputs["pooler_output" if pool else "last_hidden_state"][0]
        return features if return_tensors else features.tolist()
