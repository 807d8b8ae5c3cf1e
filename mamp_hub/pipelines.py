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
classifier("recording.npy", window=126, stride=32, fps=30)  # {"segments": [{"label", "score", "start", ...}]}
```

A clip is a numpy array, a torch tensor, or the path of a `.npy` or `.npz` file, in any array layout the processor
reads (`MampSkeletonProcessor`: `(frames, 25, 3)`, `(persons, frames, 25, 3)`, NTU rows `(frames, 150)`, ...). A
`.npz` file's clips are its `x_test` array (the standard NTU / PKU-MMD files' test split), else its `x` array, or
the array that `npz_key=` names. An input that holds several clips (a list, a batched array, a file of a batch)
gives one result per clip; the pipeline's `batch_size` sets how many clips go through the processor and the model
together.

Called with `window=` (or another of `WINDOW_OPTIONS`), a pipeline takes ONE long recording, of any number of people,
and runs the model on its windows (`mamp_hub.recognition`, docs/long_recordings.md): the action recognition
pipeline returns segments with their frames (and per-frame scores, windows), the feature extraction pipeline one
embedding per window.

A clip with fewer valid (non-zero) frames than one of the model's time segments (`temporal_patch_size`, by default
4 frames) is refused with a ValueError: stretched to the model's frame count it shows a pose at most, no motion, and
the label the model would give it is a guess. The processor alone does not refuse such clips (a
data set's rare short sample should not stop a training run); the pipeline does, because it answers with a label.

A misspelt option (`batchsize=`, `topk=`) is a TypeError that names the closest option and lists them all.
"""

from __future__ import annotations

import inspect
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
from .processing_mamp import MampSkeletonProcessor, unknown_options_message
from .recognition.persons import Recording, checked_centre, checked_policy, read_recording
from .recognition.recognize import recognize_recording, window_features
from .recognition.runners import TorchRunner, checked_score_function, class_scores
from .recognition.windows import checked_fps, checked_min_score, checked_window
from .skeletons.layouts import as_float_array, count_valid_frames

# The arrays a `.npz` file's clips are read from when `npz_key` is not given, in order of preference.
NPZ_KEYS: tuple[str, ...] = ("x_test", "x")
# The call arguments that say how to read the input.
_READING_PARAMETERS = ("layout", "npz_key", "joint_layout", "joint_units", "joint_axes")
# The call arguments of one recording in windows (both pipelines), instead of one result per clip.
WINDOW_OPTIONS = ("window", "stride", "fps", "persons", "tracks", "centre")
# The options of the recognition pipeline's windowed calls only; like `WINDOW_OPTIONS`, each asks for windows.
RECOGNITION_WINDOW_OPTIONS = ("min_score", "return_frame_scores", "return_windows")

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
    # The methods whose keyword parameters (those with a default) are the options of a call, and of
    # `pipeline(task, model=..., **options)`: an option added to one of them is known to `_call_options`.
    _option_readers: tuple[str, ...] = (
        "_sanitize_parameters",
        "_postprocess_parameters",
        "_call_windowed",
        "_windowed",
    )

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
        """Runs the pipeline on one clip, or on each clip of a batch, or on one recording in windows (see the
        subclasses)."""
        if any(kwargs.get(name) is not None for name in WINDOW_OPTIONS + RECOGNITION_WINDOW_OPTIONS):
            return self._call_windowed(inputs, **kwargs)
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

    def _call_windowed(
        self,
        inputs: SkeletonClip,
        window: int | None = None,
        stride: int | None = None,
        fps: float | None = None,
        persons: str | None = None,
        tracks: Any = None,
        centre: bool | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """One recording in windows (see `mamp_hub.recognition`): reads and checks what all windowed calls share."""
        if not isinstance(inputs, (str, os.PathLike, np.ndarray, torch.Tensor)):
            raise ValueError(
                f"Recognition in windows takes one recording (an array, a tensor or a .npy/.npz path), got "
                f"{type(inputs).__name__}; call the pipeline once per recording."
            )
        reading = {name: kwargs.pop(name) for name in _READING_PARAMETERS if name in kwargs}
        params = {**self._preprocess_params, **self._sanitize_parameters(**reading)[0]}
        processor = params.get("processor", self.feature_extractor)
        window, stride = checked_window(window, stride, processor.num_frames, processor.eval_crop_ratio)
        settings = {
            "max_persons": processor.max_persons,
            "persons": checked_policy("most_active" if persons is None else persons),
            "centre": checked_centre(False if centre is None else centre, processor),
            "fps": checked_fps(fps),
            "batch_size": checked(
                "batch_size", positive_int, self._batch_size or 1 if batch_size is None else batch_size
            ),
        }
        recording = read_recording(
            read_skeletons(inputs, params.get("npz_key")), processor, params.get("layout"), tracks
        )
        return self._windowed(recording, processor, window, stride, settings, **kwargs)

    def _windowed(
        self,
        recording: Recording,
        processor: MampSkeletonProcessor,
        window: int,
        stride: int,
        settings: dict[str, Any],
        **options: Any,
    ) -> Any:
        raise NotImplementedError

    def _refuse_in_windows(self, options: dict[str, Any], accepted: tuple[str, ...]) -> None:
        """Refuse the options of a windowed call that this pipeline does not take there (`top_k`, ...)."""
        if options:
            names = ", ".join(sorted(options))
            raise ValueError(
                f"{names}: not an option of the {self.task} pipeline on a recording in windows; its options are "
                f"{', '.join(WINDOW_OPTIONS + accepted)}, batch_size and the reading options ({', '.join(_READING_PARAMETERS)})."
            )

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
        unknown = set(postprocess_kwargs) - set(self._call_options())
        if unknown:  # a misspelt option: say which are valid, instead of a TypeError from a private method
            owner = f"The {self.task} pipeline" if self.task else type(self).__name__
            raise TypeError(unknown_options_message(owner, unknown, self._call_options()))
        return preprocess_params, forward_params, self._postprocess_parameters(**postprocess_kwargs)

    def _postprocess_parameters(self, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _call_options(self) -> list[str]:
        """Every keyword option a call takes: those `Pipeline.__call__` reads itself (`batch_size`, `num_workers`)
        and those of the methods in `_option_readers`, with every override of them (which may take some options
        and pass the others on to `super()`)."""
        readers = [Pipeline.__call__]
        readers += [vars(cls)[name] for name in self._option_readers for cls in type(self).__mro__ if name in vars(cls)]
        return sorted(
            {
                name
                for reader in readers
                for name, parameter in inspect.signature(reader).parameters.items()
                if parameter.default is not inspect.Parameter.empty
            }
        )

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
            clip_layout = processor.resolve_layout(clip.shape, layout, batched=False)[0]
        except ValueError as error:
            try:
                processor.resolve_layout(clip.shape, layout, batched=True)
            except ValueError:
                raise error from None
            raise ValueError(
                f"An element of the input holds a batch of {len(clip)} clips (shape {clip.shape}); pass that batch on "
                "its own, or its clips as separate elements."
            ) from None
        self._check_motion_frames(clip, clip_layout)
        return {"clips": [clip]}

    def _check_motion_frames(self, clip: np.ndarray, clip_layout: str) -> None:
        """Refuse a clip with fewer valid frames than one time segment of the model (see the module's docstring)."""
        segment = self.model.config.temporal_patch_size
        valid = count_valid_frames(clip, clip_layout)
        if valid < segment:
            raise ValueError(
                f"A clip of shape {clip.shape} has {valid} valid (non-zero) frame{'' if valid == 1 else 's'}, fewer "
                f"than one time segment of the model (temporal_patch_size={segment} frames): it shows no motion to "
                f"recognise. Pass clips of at least {segment} frames (leave this one out of a list)."
            )

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
            batch_size (`int`, *optional*): clips (windows) per processor and model call.
            window (`int`, *optional*): recognise ONE long recording in windows of this many frames (default, when
                another window option is given: the checkpoint's, `round(num_frames / eval_crop_ratio)`); the
                recording may hold any number of people (`(persons, frames, joints, channels)`).
            stride (`int`, *optional*): frames between window starts (default: a quarter of the window).
            fps (`float`, *optional*): frames per second; results then carry `"start_s"` and `"end_s"` too.
            min_score (`float`, *optional*): frames whose top score is below it belong to no segment.
            return_frame_scores (`bool`, *optional*): add `"frame_scores"`, `(frames, num_labels)`.
            return_windows (`bool`, *optional*): add `"windows"`, one dict per window.
            persons (`str`, *optional*): `"most_active"` (default: each window's `max_persons` most active people)
                or `"each"` (every person or track on its own; results carry `"track"`).
            tracks (*optional*): track ids of the person rows, `(persons,)` or per frame `(persons, frames)`.
            centre (`bool`, *optional*): move each window's clip of NTU joints as the NTU files are centred (its first
                person's spine-middle joint in its first frame to the origin); default False, the joints as given.

        Returns:
            For one clip, `top_k` dicts `{"score": float, "label": str}`, highest score first; for several, one such
            list per clip, in order. In windows, `{"segments": [{"label", "score", "start", "end"}, ...]}` (frames,
            `end` exclusive) and the asked-for `"frame_scores"` and `"windows"` (see `mamp_hub.recognition.recognize`).

        Raises:
            ValueError: for an input that is no clip (another type, a missing or unreadable file, a shape that fits
                no layout, fewer valid frames than `temporal_patch_size`) or a bad option value.
            TypeError: for an unknown option, naming the closest one.
        """
        return super().__call__(inputs, **kwargs)

    def _postprocess_parameters(self, top_k: int | None = None, function_to_apply: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if top_k is not None:
            params["top_k"] = checked("top_k", positive_int, top_k)
        if function_to_apply is not None:
            params["function_to_apply"] = checked_score_function(function_to_apply)
        return params

    def _windowed(
        self,
        recording: Recording,
        processor: MampSkeletonProcessor,
        window: int,
        stride: int,
        settings: dict[str, Any],
        min_score: float | None = None,
        return_frame_scores: bool = False,
        return_windows: bool = False,
        function_to_apply: str | None = None,
        **others: Any,
    ) -> dict[str, Any]:
        self._refuse_in_windows(others, (*RECOGNITION_WINDOW_OPTIONS, "function_to_apply"))
        return recognize_recording(
            recording,
            TorchRunner(self.model, processor, "scores", function_to_apply, self.device),
            self.model.config.id2label,
            window,
            stride,
            min_score=checked_min_score(min_score),
            return_frame_scores=checked("return_frame_scores", flag, return_frame_scores),
            return_windows=checked("return_windows", flag, return_windows),
            **settings,
        )

    def postprocess(
        self, model_outputs: Any, top_k: int = 5, function_to_apply: str | None = None
    ) -> list[dict[str, Any]]:
        """(1, num_labels) logits of one clip -> its `top_k` labels and scores, highest first."""
        config = self.model.config
        scores = class_scores(model_outputs["logits"][0], function_to_apply, config.problem_type)
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
            window, stride, fps, persons, tracks, centre: ONE long recording in windows, as for the action
                recognition pipeline.

        Returns:
            For one clip, its features; for several, a list of them, one per clip. In windows, one dict per window
            (per track with `persons="each"`): `{"start", "end", "features"}` (frames, `end` exclusive; and
            `"start_s"`, `"end_s"`, `"track"` likewise), `features` None for a window where nobody is present.
        """
        return super().__call__(inputs, **kwargs)

    def _postprocess_parameters(self, pool: bool | None = None, return_tensors: bool | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if pool is not None:
            params["pool"] = checked("pool", flag, pool)
        if return_tensors is not None:
            params["return_tensors"] = checked("return_tensors", flag, return_tensors)
        return params

    def _windowed(
        self,
        recording: Recording,
        processor: MampSkeletonProcessor,
        window: int,
        stride: int,
        settings: dict[str, Any],
        pool: bool | None = None,
        return_tensors: bool | None = None,
        **others: Any,
    ) -> list[dict[str, Any]]:
        self._refuse_in_windows(others, ("pool", "return_tensors"))
        options = {"pool": True, "return_tensors": False, **self._postprocess_parameters(pool, return_tensors)}
        runner = TorchRunner(self.model, processor, self._features_output(options["pool"]), device=self.device)
        return window_features(recording, runner, window, stride, return_tensors=options["return_tensors"], **settings)

    def _features_output(self, pool: bool) -> str:
        """The model output that holds the features: `pooler_output`, or with `pool=False` `last_hidden_state`."""
        if pool:
            return "pooler_output"
        if type(self.model).__name__ != "MampModel":
            raise ValueError(
                f"pool=False returns token features, which {type(self.model).__name__} does not output; load the "
                "checkpoint as MampModel (pipeline(task, model=path) does), or keep pool=True."
            )
        return "last_hidden_state"

    def postprocess(self, model_outputs: Any, pool: bool = True, return_tensors: bool = False) -> Any:
        features = model_outputs[self._features_output(pool)][0]
        return features if return_tensors else features.tolist()
