"""Tiny classifiers and long recordings for the tests of windowed and streaming recognition (not a test module).

Long recordings are SYNTHETIC clips (`mamp_hub.data.synthetic`) played one after another, or smooth random motion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import tiny_config

from mamp_hub import MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data.synthetic import SYNTHETIC_ACTION_NAMES, SyntheticActionConfig, generate_synthetic_actions

LABELS = dict(enumerate(SYNTHETIC_ACTION_NAMES))
NUM_FRAMES = 16  # the tiny model's: windows from 4 to 64 frames, default 17 (16 / 0.95), stride 4


def save_tiny_classifier(folder: Path, seed: int = 0) -> Path:
    """A tiny randomly initialised classifier (16 frames, the synthetic action names) and its processor."""
    torch.manual_seed(seed)
    config = tiny_config(num_labels=len(LABELS), id2label=LABELS, classifier_head="finetune")
    MampForSkeletonClassification(config).eval().save_pretrained(folder)
    MampSkeletonProcessor(num_frames=NUM_FRAMES).save_pretrained(folder)
    return folder


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
