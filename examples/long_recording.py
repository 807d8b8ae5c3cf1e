"""Actions in a long recording and in a live stream: segments with timestamps, a timeline, the same windows streamed.

    python examples/long_recording.py --output-dir outputs/long_recording
    python examples/long_recording.py --checkpoint converted/ntu60-xsub-finetune --output-dir out

The recording is SYNTHETIC (`mamp_hub.data.synthetic`): a few generated actions played one after another, with
stretches where nobody is in view between them. The `"skeleton-action-recognition"` pipeline, called with `window=`,
runs the model on every window and returns the segments (label, score, frames and seconds); the per-frame scores
and the segments are drawn to `timeline.png` (with matplotlib installed). Then the recording is pushed into a
`StreamingActionRecognizer` a few frames at a time, as a camera loop would, and gives the same windows. Without
`--checkpoint` the example saves a tiny classifier with RANDOM weights (the synthetic action names, chance-level
predictions: the segments mean nothing) and runs that; with `--checkpoint`, a fine-tuned or linear-probe MAMP
checkpoint (a folder from `mamp-convert` or `training/`, or a Hub id).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import pipeline

from mamp_hub import MampConfig, MampForSkeletonClassification, MampSkeletonProcessor, StreamingActionRecognizer
from mamp_hub.data.synthetic import FRAME_RATE, SYNTHETIC_ACTION_NAMES, generate_synthetic_actions
from mamp_hub.tools.recognize import plot_timeline


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/long_recording"))
    parser.add_argument("--checkpoint", help="Hub id or folder of a MAMP classifier; default: a random tiny one")
    parser.add_argument("--actions", type=int, default=4, help="synthetic actions in the recording")
    parser.add_argument("--chunk", type=int, default=5, help="frames per push of the simulated camera loop")
    return parser.parse_args(argv)


def save_random_classifier(folder: Path) -> Path:
    """A tiny MAMP classifier with RANDOM weights (32 frames: windows of 34 frames) and its processor."""
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


def synthetic_recording(actions: int, seed: int = 0) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """SYNTHETIC actions one after another, a second of nobody in view before each: NTU rows `(frames, 150)`, and
    what was played where, `(action, start, end)`."""
    data = generate_synthetic_actions(actions, seed=seed)
    gap = np.zeros((int(FRAME_RATE), data.sequences.shape[2]), dtype=np.float32)
    pieces, played, frames = [], [], 0
    for sequence, length, label in zip(data.sequences, data.lengths, data.labels, strict=True):
        pieces += [gap, sequence[:length]]
        played.append((SYNTHETIC_ACTION_NAMES[label], frames + len(gap), frames + len(gap) + int(length)))
        frames += len(gap) + int(length)
    return np.concatenate(pieces), played


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = save_random_classifier(args.output_dir / "random-classifier")
        print(f"No --checkpoint: saved a classifier with RANDOM weights to {checkpoint}; its segments are meaningless.")
    classifier = pipeline("skeleton-action-recognition", model=str(checkpoint))

    recording, played = synthetic_recording(args.actions)
    print(f"A SYNTHETIC recording of {len(recording)} frames ({len(recording) / FRAME_RATE:.1f} s), played:")
    for action, start, end in played:
        print(f"  {start / FRAME_RATE:5.1f}-{end / FRAME_RATE:5.1f} s  {action}")

    # Windows of the checkpoint's default length and stride (see docs/long_recordings.md); fps adds seconds.
    result = classifier(recording, fps=FRAME_RATE, return_frame_scores=True, return_windows=True)
    print(f"Recognised, in windows of {result['windows'][0]['end']} frames:")
    for segment in result["segments"]:
        print(f"  {segment['start_s']:5.1f}-{segment['end_s']:5.1f} s  {segment['label']} ({segment['score']:.2f})")
    if importlib.util.find_spec("matplotlib") is not None:
        plot_timeline(args.output_dir / "timeline.png", result, classifier.model.config.id2label, FRAME_RATE)
        print(f"Wrote the per-frame scores and segments to {args.output_dir / 'timeline.png'}")

    # The same recording as a live stream: frames arrive a few at a time, windows come back once complete.
    recognizer = StreamingActionRecognizer(classifier, fps=FRAME_RATE)
    streamed = []
    for start in range(0, len(recording), args.chunk):
        streamed += recognizer.push(recording[start : start + args.chunk])
    streamed += recognizer.flush()
    same = streamed == result["windows"]
    print(f"Streamed in chunks of {args.chunk} frames: {len(streamed)} windows, the same as offline: {same}")
    return {"recording": recording, "played": played, "result": result, "streamed": streamed}


if __name__ == "__main__":
    main()
