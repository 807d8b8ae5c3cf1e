"""What several test modules share: the authors' reference run (tests/fixtures/mamp_official_small.safetensors),
tiny configs and checkpoints, a small synthetic data set, the tiny pre-training recipe and long SYNTHETIC recordings,
the examples as modules, a training callback, and raw NTU / PKU-MMD files for the preparation scripts.

Test modules import the helpers (`from conftest import tiny_config`); pytest provides the fixtures.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import TrainerCallback
from transformers.utils import ModelOutput

from mamp_hub import MampConfig, MampForSkeletonClassification, MampPreTrainedModel, MampSkeletonProcessor
from mamp_hub.data.synthetic import SYNTHETIC_ACTION_NAMES, SyntheticActionConfig, generate_synthetic_actions
from training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_LABELS = dict(enumerate(SYNTHETIC_ACTION_NAMES))
TINY_NUM_FRAMES = 16  # `tiny_config`'s: windows of long recordings from 4 to 64 frames, default 17 (16 / 0.95)
pytest_plugins = ["hub_server"]  # the loopback Hub's `local_hub` fixture, for the tests that push and pull

FIXTURES = Path(__file__).parent / "fixtures"
# Overrides that shrink the tiny recipes further for tests: width 32, 2 layers, 16 frames, no kNN monitor.
SMALL_MODEL = [
    "model.num_frames=16",
    "model.hidden_size=32",
    "model.num_hidden_layers=2",
    "model.intermediate_size=64",
    "model.decoder_hidden_size=32",
    "model.decoder_intermediate_size=64",
    "knn_monitor.every_n_epochs=0",
    "trainer.logging_steps=1",
]
TINY_RECIPES = ROOT / "training" / "configs" / "tiny"
REFERENCE = FIXTURES / "mamp_official_small.safetensors"
OFFICIAL_CHECKPOINT = FIXTURES / "mamp_official_small_checkpoint-399.pth"


class Reference:
    """Tensors of the reference run; `state_dict("pretrain")` gives one model's official weights."""

    def __init__(self, path: Path):
        with safe_open(str(path), "pt") as f:
            self.metadata = f.metadata()
            self.tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
        self.model_args = json.loads(self.metadata["config"])

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]

    def state_dict(self, model: str) -> dict[str, torch.Tensor]:
        outputs = {"input", "logits"}
        prefix = f"{model}."
        return {
            k[len(prefix) :]: v
            for k, v in self.tensors.items()
            if k.startswith(prefix)
            and k[len(prefix) :] not in outputs
            and not k.startswith(f"{prefix}motion_aware")
            and not k.startswith(f"{prefix}random")
        }

    @property
    def skeleton_values(self) -> torch.Tensor:
        """`pretrain.input` (N, C, T, V, M) in our layout (N, M, T, V, C)."""
        return self["pretrain.input"].permute(0, 4, 2, 3, 1).contiguous()


@pytest.fixture(scope="session")
def reference() -> Reference:
    return Reference(REFERENCE)


def tiny_config(**overrides) -> MampConfig:
    """The reference run's configuration (width 32, 2 + 1 layers, 16 frames); small enough for CPU tests."""
    values = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=128,
        num_frames=TINY_NUM_FRAMES,
        num_labels=7,
    )
    values.update(overrides)
    return MampConfig(**values)


@pytest.fixture
def config() -> MampConfig:
    return tiny_config()


def tiny_model(
    model_class: type[MampPreTrainedModel] = MampForSkeletonClassification, seed: int = 0, **overrides
) -> MampPreTrainedModel:
    """A randomly initialised (`torch.manual_seed(seed)`) model of `tiny_config(**overrides)`, in eval mode."""
    torch.manual_seed(seed)
    return model_class(tiny_config(**overrides)).eval()


def save_tiny_checkpoint(
    folder: Path, model_class: type[MampPreTrainedModel] = MampForSkeletonClassification, seed: int = 0, **overrides
) -> Path:
    """`tiny_model(model_class, seed, **overrides)` and its processor, saved in `folder` as a checkpoint folder is."""
    model = tiny_model(model_class, seed, **overrides)
    model.save_pretrained(folder)
    MampSkeletonProcessor(num_frames=model.config.num_frames).save_pretrained(folder)
    return folder


def save_tiny_classifier(folder: Path, seed: int = 0) -> Path:
    """A tiny randomly initialised classifier of the synthetic action names, and its processor."""
    labels = SYNTHETIC_LABELS
    return save_tiny_checkpoint(folder, seed=seed, num_labels=len(labels), id2label=labels, classifier_head="finetune")


@torch.no_grad()
def run_saved(
    folder: Path | str,
    sequences,
    model_class: type[MampPreTrainedModel] = MampForSkeletonClassification,
    layout: str | None = None,
    **processor_options,
) -> ModelOutput:
    """The outputs of the model saved in `folder` (eval mode) on `sequences`, prepared in one batch by the processor
    saved with it (loaded with `processor_options`): what a pipeline's or an example's results should agree with."""
    model = model_class.from_pretrained(folder).eval()
    processor = MampSkeletonProcessor.from_pretrained(folder, **processor_options)
    return model(**processor(sequences, layout=layout))


def load_example(name: str) -> ModuleType:
    """Import `examples/<name>.py` as a module (the folder is not a package: examples are scripts)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthetic_npz(tmp_path_factory, request) -> Path:
    """A synthetic `.npz` (seed 0, split by subject) of the test module's `SYNTHETIC_SAMPLES` clips (default 100)."""
    from mamp_hub.data.synthetic import write_synthetic_npz

    num_samples = getattr(request.module, "SYNTHETIC_SAMPLES", 100)
    return Path(write_synthetic_npz(tmp_path_factory.mktemp("data") / "synthetic.npz", num_samples=num_samples, seed=0))


class StopAtStep(TrainerCallback):
    """Ends training after `step` optimizer steps, as an interruption would (a checkpoint is saved there)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def synthetic_recording(clips: int = 3, seed: int = 0) -> np.ndarray:
    """SYNTHETIC clips of 30 to 60 frames one after another: NTU rows (frames, 150), two person slots."""
    config = SyntheticActionConfig(min_frames=30, max_frames=60, padded_frames=60)
    data = generate_synthetic_actions(clips, seed=seed, config=config)
    return np.concatenate([sequence[:length] for sequence, length in zip(data.sequences, data.lengths, strict=True)])


def moving_people(persons: int, frames: int, seed: int = 0, speeds: tuple[float, ...] | None = None) -> np.ndarray:
    """`(persons, frames, 25, 3)`: one pose, drifting about a separate place per person, person p at `speeds[p]` (the
    drift's share of the motion by which the most active people are chosen), with a little jitter."""
    rng = np.random.default_rng(seed)
    speeds = np.asarray(speeds or (1.0,) * persons)[:, None, None, None]
    pose = rng.normal(scale=0.3, size=(1, 1, 25, 3))
    drift = np.cumsum(rng.normal(scale=0.1, size=(persons, frames, 1, 3)), axis=1) * speeds
    jitter = rng.normal(scale=0.01, size=(persons, frames, 25, 3))
    places = np.arange(persons)[:, None, None, None] * np.array([1.0, 0.0, 0.0]) + np.array([0.0, 0.0, 3.0])
    return (pose + drift + jitter + places).astype(np.float32)


def pretrain_recipe(synthetic_npz: Path, output_dir: Path, *overrides: str) -> dict:
    """The tiny pre-training on `synthetic_npz` with `SMALL_MODEL`: 1 epoch of 3 steps of 16 clips."""
    settings = [
        *SMALL_MODEL, f"data.path={synthetic_npz}", f"trainer.output_dir={output_dir}", "schedule.epochs=1",
        "schedule.warmup_epochs=0", "schedule.global_batch_size=16", *overrides,
    ]  # fmt: skip
    return load_config(TINY_RECIPES / "pretrain_mamp.yaml", settings)


# Raw downloads in their real text formats, for the preparation scripts (test_prepare.py, test_cli.py).
RNG = np.random.default_rng(0)  # the draws of `body`, which test_prepare.py continues


def body(frames: int, wide: bool = False, motion: float = 0.01) -> np.ndarray:
    """(frames, 25, 3) joints of a plausible standing body (taller than wide), or of an implausibly wide one,
    rounded to 4 decimals as the files store them."""
    spread = np.array([2.0, 0.3, 0.1]) if wide else np.array([0.2, 0.6, 0.1])
    pose = RNG.uniform(-1, 1, size=(25, 3)) * spread + np.array([RNG.uniform(-1, 1), 0.2, 3.0])
    drift = np.cumsum(RNG.normal(size=(frames, 1, 3)) * motion, axis=0)
    return np.round(pose + drift, 4)


def write_skeleton_file(path: Path, frames: list[list[tuple[str, np.ndarray]]]) -> None:
    """The NTU text format: frame count; per frame the body count; per body 10 body values, the joint count and
    25 lines of x y z depthX depthY colorX colorY orientationW X Y Z trackingState."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines += [f"{body_id} 0 1 1 1 1 0 0.01 -0.02 2", "25"]
            lines += [f"{x:.4f} {y:.4f} {z:.4f} 250.1 180.2 960.3 540.4 0.5 0.1 0.2 0.3 2" for x, y, z in joints]
    path.write_text("\r\n".join(lines) + "\r\n")


def per_frame(*tracks: tuple[str, np.ndarray, int]) -> list[list[tuple[str, np.ndarray]]]:
    """Frames from (body id, joints, first frame) tracks."""
    num_frames = max(start + len(joints) for _, joints, start in tracks)
    return [
        [(body_id, joints[t - start]) for body_id, joints, start in tracks if start <= t < start + len(joints)]
        for t in range(num_frames)
    ]


def pku_raw(tmp_path: Path, recordings: dict[str, np.ndarray], labels: dict[str, str]) -> Path:
    """A PKU-MMD download: skeleton/ and label/ files, and a cross-subject split with every recording training."""
    raw = tmp_path / "pku"
    (raw / "skeleton").mkdir(parents=True)
    (raw / "label").mkdir()
    for name, frames in recordings.items():
        np.savetxt(raw / "skeleton" / f"{name}.txt", frames, fmt="%.4f")
        (raw / "label" / f"{name}.txt").write_text(labels[name])
    training = ", ".join(recordings) or "0002-L"  # a split file lists recordings even if none were downloaded
    (raw / "cross-subject.txt").write_text(f"Training videos:\n{training}\nValidation videos:\n")
    return raw
