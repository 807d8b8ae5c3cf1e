"""Export MAMP models to ONNX for deployment, and check the export against PyTorch with ONNX Runtime.

    mamp-export-onnx MODEL_DIR OUTPUT.onnx [--task auto|features|classification] [--opset N] [--no-verify]

`MampModel` becomes a features graph (outputs `last_hidden_state`, `pooler_output`), `MampForSkeletonClassification`
a classifier graph (outputs `logits`, `pooler_output`). Both take one input, `skeleton_values`: float32
`(batch, max_persons, num_frames, num_joints, num_channels)` with a dynamic batch dimension, as
`MampSkeletonProcessor(sequences, return_tensors="np")` returns it; an absent person is all zeros, as in PyTorch.
The model's config is stored in the file's metadata (`mamp_config`, JSON), so the file alone names its classes.

After the export, ONNX Runtime runs the file on a fresh batch of another size than the export's, with one- and
two-person clips, and its outputs must match the PyTorch model's to `atol` (1e-4). Exporting needs `onnx` and
`onnxscript`, verifying `onnxruntime`: `pip install "mamp-hub[onnx]"`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import numbers
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.onnx._constants import ONNX_MAX_OPSET

from ..checks import checked, flag, integer, is_integer, positive_int
from ..configuration_mamp import MampConfig
from ..modeling_mamp import MampForSkeletonClassification, MampModel
from ..skeletons.layouts import present_person_slots
from .cli import console_script

INPUT_NAME = "skeleton_values"
MIN_OPSET = 18  # the opset torch.export-based export writes natively
OUTPUT_NAMES = {"features": ("last_hidden_state", "pooler_output"), "classification": ("logits", "pooler_output")}
CONFIG_METADATA_KEY = "mamp_config"
# torch.export specialises a dimension whose example size is 0 or 1, so the example batch must be larger to stay
# dynamic; verification then uses another size, so that a batch size fixed into the graph by mistake shows.
EXPORT_BATCH_SIZE = 2
VERIFY_BATCH_SIZE = 3
DEFAULT_ATOL = 1e-4

Task = Literal["auto", "features", "classification"]


class OnnxVerificationError(RuntimeError):
    """ONNX Runtime's outputs for the exported file differ from the PyTorch model's."""


@dataclass
class OnnxExport:
    """What `export_onnx` wrote.

    Args:
        path: the `.onnx` file (weights inside it, no external data file).
        task: `"features"` (`MampModel`) or `"classification"` (`MampForSkeletonClassification`).
        output_names: the graph's outputs, in order.
        max_abs_difference: per output, the largest absolute difference between ONNX Runtime and PyTorch on the
            verification batch; None when the export was not verified.
    """

    path: Path
    task: str
    output_names: tuple[str, ...]
    max_abs_difference: dict[str, float] | None = None


# ---------------------------------------------------------------------------------------------
# What is exported
# ---------------------------------------------------------------------------------------------


class MampOnnxModule(nn.Module):
    """What is exported: the eval-mode forward of a `MampModel` or a `MampForSkeletonClassification`, returning a
    tuple of tensors. Without `present_persons` the forward encodes every person slot, absent (all-zero) ones
    included: no step depends on the values, so one graph serves any mix of one- and two-person clips, and the
    features are those of the skipping path."""

    def __init__(self, model: MampModel | MampForSkeletonClassification):
        super().__init__()
        self.model = model
        self.output_names = OUTPUT_NAMES[export_task(model)]

    def forward(self, skeleton_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(B, M, T, V, C)` skeletons -> `logits` `(B, num_labels)` for a classifier, else `last_hidden_state`
        `(B, M, T_e, V_p, D)`; then `pooler_output` `(B, D)`."""
        outputs = self.model(skeleton_values)
        return tuple(outputs[name] for name in self.output_names)


def export_task(model: MampModel | MampForSkeletonClassification) -> str:
    """`"classification"` for a `MampForSkeletonClassification`, `"features"` for a `MampModel`."""
    if isinstance(model, MampForSkeletonClassification):
        return "classification"
    if isinstance(model, MampModel):
        return "features"
    raise TypeError(
        f"ONNX export takes a MampModel or a MampForSkeletonClassification, got {type(model).__name__}; for a "
        "pre-training model pass its encoder, model.mamp."
    )


# ---------------------------------------------------------------------------------------------
# Export and verification
# ---------------------------------------------------------------------------------------------


def export_onnx(
    model: MampModel | MampForSkeletonClassification,
    output_path: str | os.PathLike,
    opset_version: int | None = None,
    verify: bool = True,
    atol: float = DEFAULT_ATOL,
) -> OnnxExport:
    """Export `model` to one `.onnx` file with a dynamic batch dimension, then (by default) verify it.

    Args:
        model: a float32 `MampModel` (features) or `MampForSkeletonClassification` (logits); exported in eval
            mode, and left in the mode it was in.
        output_path: the file to write, in an existing folder (an existing file is replaced).
        opset_version: ONNX opset, from 18 (what torch's exporter writes natively; it only down-converts with
            warnings, or fails) to `torch.onnx._constants.ONNX_MAX_OPSET`; None takes torch's recommended one.
        verify: run the file with ONNX Runtime on a fresh batch (`verify_onnx`) and raise
            `OnnxVerificationError` if an output differs from PyTorch's by more than `atol`.
        atol: largest absolute difference accepted by the verification.
    """
    task = export_task(model)
    if isinstance(atol, bool) or not isinstance(atol, numbers.Real) or not atol >= 0:
        raise ValueError(f"atol must be a difference >= 0, got {atol!r}; pass e.g. {DEFAULT_ATOL:g}.")
    if opset_version is not None and not (is_integer(opset_version) and MIN_OPSET <= opset_version <= ONNX_MAX_OPSET):
        raise ValueError(
            f"opset_version must be an integer between {MIN_OPSET} and {ONNX_MAX_OPSET}, got {opset_version!r}; leave "
            "it out for torch's recommended one."
        )
    verify = checked("verify", flag, verify)
    if not isinstance(output_path, (str, os.PathLike)):
        raise ValueError(
            f"output_path is of type {type(output_path).__name__}; pass the path of the .onnx file to write."
        )
    output_path = Path(output_path)
    _check_output_path(output_path)
    _require_packages(verify)
    if model.dtype != torch.float32:
        raise TypeError(
            f"ONNX export needs a float32 model, got {model.dtype}; call model.float() or load it with "
            "dtype=torch.float32."
        )
    config = model.config
    shape = (EXPORT_BATCH_SIZE, config.max_persons, config.num_frames, config.num_joints, config.num_channels)
    example = torch.randn(shape, device=model.device)
    output_names = OUTPUT_NAMES[task]
    module = MampOnnxModule(model)
    was_training = model.training
    module.eval()  # and so `model`
    try:
        with _without_exporter_noise():
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[INPUT_NAME],
                output_names=list(output_names),
                opset_version=opset_version,
                dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}},
                dynamo=True,
                verbose=False,
            )
        program.model.metadata_props[CONFIG_METADATA_KEY] = config.to_json_string(use_diff=False)
        program.save(output_path, external_data=False)
        differences = verify_onnx(output_path, model) if verify else None
    finally:
        model.train(was_training)
    if differences is not None:
        worst = max(differences, key=differences.get)
        if differences[worst] > atol:
            raise OnnxVerificationError(
                f"ONNX Runtime's {worst} differs from PyTorch's by {differences[worst]:.2e}, more than atol={atol:g}, "
                f"on {VERIFY_BATCH_SIZE} clips (file kept at {output_path} for inspection); pass a larger atol "
                "(--atol) if that difference is acceptable for your use."
            )
    return OnnxExport(output_path, task, output_names, differences)


def verification_batch(config: MampConfig, batch_size: int = VERIFY_BATCH_SIZE, seed: int = 0) -> torch.Tensor:
    """Random `(batch_size, max_persons, num_frames, num_joints, num_channels)` clips, seeded: the even-numbered ones
    have one person (the other slots all zeros), the odd-numbered ones every slot filled."""
    batch_size, seed = checked("batch_size", positive_int, batch_size), checked("seed", integer, seed)
    generator = torch.Generator().manual_seed(seed)
    clips = torch.randn(
        batch_size, config.max_persons, config.num_frames, config.num_joints, config.num_channels, generator=generator
    )
    clips[::2, 1:] = 0
    return clips


@torch.no_grad()
def verify_onnx(
    onnx_path: str | os.PathLike,
    model: MampModel | MampForSkeletonClassification,
    batch_size: int = VERIFY_BATCH_SIZE,
    seed: int = 0,
) -> dict[str, float]:
    """Per output, the largest absolute difference between ONNX Runtime (CPU) running `onnx_path` and `model`'s
    eval-mode forward on `verification_batch(config, batch_size, seed)` (one- and two-person clips).

    PyTorch is given the clips' `present_persons`, as a batch from the processor is, so it skips the absent slots
    the graph encodes: the check covers both that the graph is the model and that encoding every slot changes
    nothing.
    """
    import onnxruntime

    task = export_task(model)
    clips = verification_batch(model.config, batch_size, seed)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(list(OUTPUT_NAMES[task]), {INPUT_NAME: clips.numpy()})
    was_training = model.training
    reference = model.eval()(clips.to(model.device), present_persons=present_person_slots(clips).to(model.device))
    model.train(was_training)
    differences = {}
    for name, onnx_output in zip(OUTPUT_NAMES[task], onnx_outputs, strict=True):
        expected = reference[name].float().cpu().numpy()
        if onnx_output.shape != expected.shape:
            raise OnnxVerificationError(
                f"ONNX Runtime's {name} has shape {onnx_output.shape} on a batch of {batch_size}, PyTorch's "
                f"{expected.shape}, so its batch dimension is not dynamic; export the model with export_onnx "
                "(mamp-export-onnx)."
            )
        differences[name] = float(np.abs(onnx_output - expected).max())
    return differences


@contextlib.contextmanager
def _without_exporter_noise() -> Iterator[None]:
    """Silence what torch's exporter prints that a user cannot act on: a warning per torchvision operator it skips
    when torchvision is not installed (none is needed here), and a FutureWarning about its own pytree calls."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def _check_output_path(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"The output {path} is a folder; pass a file path such as {path / 'model.onnx'}.")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"The folder of the output, {path.parent}, does not exist; create it or pass a path in an existing folder."
        )


def _require_packages(verify: bool) -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"Exporting to ONNX needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            'installed; pip install "mamp-hub[onnx]".'
        )
    if verify and importlib.util.find_spec("onnxruntime") is None:
        raise ImportError(
            'Verifying the export needs onnxruntime, which is not installed; pip install "mamp-hub[onnx]", or skip '
            "the check (--no-verify, verify=False)."
        )


# ---------------------------------------------------------------------------------------------
# Loading a model folder, and the console script
# ---------------------------------------------------------------------------------------------


def load_for_export(model_dir: str | os.PathLike, task: Task = "auto") -> MampModel | MampForSkeletonClassification:
    """Load a MAMP `save_pretrained` folder in float32 and eval mode as the model to export.

    `task="auto"` exports a classifier checkpoint (fine-tuned or linear probe) as a classifier and any other
    (pre-trained) as features; `"features"` exports the encoder of any checkpoint; `"classification"` needs a
    classifier checkpoint.
    """
    if task not in ("auto", "features", "classification"):
        raise ValueError(f"task must be 'auto', 'features' or 'classification', got {task!r}.")
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"{model_dir} is not a folder; pass a folder written by save_pretrained or mamp-convert."
        )
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{model_dir} has no config.json; pass a folder written by save_pretrained or mamp-convert."
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{config_path} is not valid JSON ({error}); pass a folder written by save_pretrained."
        ) from None
    if not isinstance(config, dict) or config.get("model_type") != MampConfig.model_type:
        model_type = config.get("model_type") if isinstance(config, dict) else None
        raise ValueError(
            f"{config_path} describes a {model_type!r} model, not a MAMP one (model_type 'mamp'); pass a MAMP model "
            "folder."
        )
    architectures = config.get("architectures") or []
    is_classifier = MampForSkeletonClassification.__name__ in architectures
    if task == "classification" and not is_classifier:
        raise ValueError(
            f"{model_dir} holds a {' / '.join(architectures) or 'model without architectures'} checkpoint, which has "
            "no classification head; pass --task features (task='features') to export its encoder, or a fine-tuned "
            "or linear-probe checkpoint."
        )
    if is_classifier:
        # A classifier's encoder is taken from the loaded classifier: `MampModel.from_pretrained` would load it
        # too, but report every head weight as unexpected.
        model = MampForSkeletonClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
        return model.mamp if task == "features" else model
    return MampModel.from_pretrained(model_dir, dtype=torch.float32).eval()


@console_script("mamp-export-onnx")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mamp-export-onnx",
        description="Export a MAMP model folder to ONNX (dynamic batch, input 'skeleton_values') and check it with "
        "ONNX Runtime against PyTorch.",
    )
    parser.add_argument("model_dir", help="a MAMP save_pretrained folder (from training/, mamp-convert or Trainer)")
    parser.add_argument("output", help="the .onnx file to write (its folder must exist)")
    parser.add_argument(
        "--task",
        choices=("auto", "features", "classification"),
        default="auto",
        help="features: MampModel (last_hidden_state, pooler_output); classification: logits, pooler_output; "
        "auto (default): classification for a fine-tuned or linear-probe folder, else features",
    )
    parser.add_argument("--opset", type=int, help="ONNX opset version (default: torch's recommended one)")
    parser.add_argument(
        "--no-verify", dest="verify", action="store_false", help="skip the ONNX Runtime check (needs no onnxruntime)"
    )
    parser.add_argument(
        "--atol", type=float, default=DEFAULT_ATOL, help=f"largest difference accepted (default {DEFAULT_ATOL:g})"
    )
    args = parser.parse_args(argv)

    _check_output_path(Path(args.output))  # before loading a model that could not be written anyway
    _require_packages(args.verify)
    model = load_for_export(args.model_dir, args.task)
    result = export_onnx(model, args.output, opset_version=args.opset, verify=args.verify, atol=args.atol)
    size_mb = result.path.stat().st_size / 2**20
    print(
        f"wrote {result.path} ({size_mb:.1f} MB): {type(model).__name__} as {result.task}, input {INPUT_NAME} "
        f"(batch, {model.config.max_persons}, {model.config.num_frames}, {model.config.num_joints}, "
        f"{model.config.num_channels}), outputs {', '.join(result.output_names)}"
    )
    if result.max_abs_difference is None:
        print("not verified (--no-verify)")
    else:
        differences = ", ".join(f"{name} {value:.1e}" for name, value in result.max_abs_difference.items())
        print(
            f"verified with ONNX Runtime against PyTorch on {VERIFY_BATCH_SIZE} clips (one- and two-person; exported "
            f"with {EXPORT_BATCH_SIZE}): max |difference| {differences} (atol {args.atol:g})"
        )


if __name__ == "__main__":
    main()
