"""Shared fixtures: the authors' reference run (tests/fixtures/mamp_official_small.safetensors) and tiny configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from mamp_hub import MampConfig
from training.config import load_config

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
TINY_RECIPES = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny"
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
        num_frames=16,
        num_labels=7,
    )
    values.update(overrides)
    return MampConfig(**values)


@pytest.fixture
def config() -> MampConfig:
    return tiny_config()


@pytest.fixture(scope="module")
def synthetic_npz(tmp_path_factory) -> Path:
    """100 SYNTHETIC clips in the NTU `.npz` layout, for the tiny recipes (some test files make their own)."""
    from mamp_hub.data.synthetic import write_synthetic_npz

    return Path(write_synthetic_npz(tmp_path_factory.mktemp("data") / "synthetic.npz", num_samples=100, seed=0))


def pretrain_recipe(synthetic_npz: Path, output_dir: Path, *overrides: str) -> dict:
    """The tiny pre-training on `synthetic_npz` with `SMALL_MODEL`: 1 epoch of 3 steps of 16 clips."""
    settings = [
        *SMALL_MODEL, f"data.path={synthetic_npz}", f"trainer.output_dir={output_dir}", "schedule.epochs=1",
        "schedule.warmup_epochs=0", "schedule.global_batch_size=16", *overrides,
    ]  # fmt: skip
    return load_config(TINY_RECIPES / "pretrain_mamp.yaml", settings)
