"""Action recognition with `transformers.pipeline`: one clip as an array, a list of clips, and a `.npy` path.

    python examples/pipeline.py --output-dir outputs/pipeline
    python examples/pipeline.py --checkpoint <org>/<repo> --output-dir outputs/pipeline

`import mamp_hub` registers the `"skeleton-action-recognition"` task (and `"skeleton-feature-extraction"`), so that
`pipeline(task, model=<folder or Hub id>)` loads a MAMP classifier with the processor saved next to it. The clips
are SYNTHETIC (`mamp_hub.data.synthetic`), written to `clip.npy` in the output folder. Without `--checkpoint` the
example saves a tiny classifier with RANDOM weights (the synthetic action names, chance-level predictions: the
printed scores mean nothing) and runs that; with `--checkpoint`, a fine-tuned or linear-probe MAMP checkpoint
(a folder from `mamp-convert` or `training/`, or a Hub id).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import pipeline

# Importing mamp_hub registers the pipeline tasks.
from mamp_hub import MampConfig, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data.synthetic import SYNTHETIC_ACTION_NAMES, generate_synthetic_actions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/pipeline"))
    parser.add_argument("--checkpoint", help="Hub id or folder of a MAMP classifier; default: a random tiny one")
    parser.add_argument("--top-k", type=int, default=5)
    return parser.parse_args(argv)


def save_random_classifier(folder: Path) -> Path:
    """A tiny MAMP classifier with RANDOM weights and its processor, saved as a checkpoint folder: a stand-in
    whose predictions are meaningless."""
    torch.manual_seed(0)
    config = MampConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        decoder_num_hidden_layers=1,  # unused by a classifier, but no deeper than the encoder
        num_frames=32,
        num_labels=len(SYNTHETIC_ACTION_NAMES),
        id2label=dict(enumerate(SYNTHETIC_ACTION_NAMES)),
        classifier_head="finetune",
    )
    MampForSkeletonClassification(config).save_pretrained(folder)
    MampSkeletonProcessor(num_frames=config.num_frames).save_pretrained(folder)
    return folder


def synthetic_clips(count: int) -> list[np.ndarray]:
    """`count` SYNTHETIC clips in the NTU row layout, (frames, 150) each, without their zero padding."""
    data = generate_synthetic_actions(count, seed=0)
    return [sequence[:length] for sequence, length in zip(data.sequences, data.lengths, strict=True)]


def show(title: str, predictions: list[dict[str, Any]]) -> None:
    print(f"{title}: " + ", ".join(f"{p['label']} ({p['score']:.1%})" for p in predictions))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = save_random_classifier(args.output_dir / "random-classifier")
        print(f"No --checkpoint: saved a classifier with RANDOM weights to {checkpoint}; its scores are meaningless.")
    classifier = pipeline("skeleton-action-recognition", model=str(checkpoint))

    clip, other_clip = synthetic_clips(2)
    path = args.output_dir / "clip.npy"
    np.save(path, clip)
    print(f"Wrote a SYNTHETIC clip of {len(clip)} frames to {path}")

    results = {
        "array": classifier(clip, top_k=args.top_k),
        "list": classifier([clip, other_clip], top_k=args.top_k, batch_size=2),
        "path": classifier(str(path), top_k=args.top_k),
    }
    show("array", results["array"])
    for index, predictions in enumerate(results["list"]):
        show(f"list[{index}]", predictions)
    show("path", results["path"])
    return results


if __name__ == "__main__":
    main()
