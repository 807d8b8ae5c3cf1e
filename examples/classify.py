"""Classify skeleton sequences with a fine-tuned MAMP model and print the five most likely actions of each.

    python examples/classify.py --output-dir outputs/classify
    python examples/classify.py --input NTU60_XSub.npz --limit 10 --checkpoint <org>/<repo> --output-dir out
    python examples/classify.py --input my_sequences.npy --checkpoint outputs/finetune/model --output-dir out

`--input` is a standard NTU-layout `.npz` (its test split) or a `.npy` batch of sequences, e.g.
(N, frames, 25, 3); without it a small synthetic `.npz` is written and used. Writes `predictions.json`: for
each sequence its top-5 action names with probabilities (and the true action for an `.npz`). Without
`--checkpoint` a randomly initialised classifier with the NTU-60 action names runs: the names are real, the
predictions are chance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mamp_hub import MampConfig, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data import NpzSkeletonDataset
from mamp_hub.data.synthetic import write_synthetic_npz
from mamp_hub.skeletons import get_id2label


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/classify"))
    parser.add_argument("--input", type=Path, help=".npz (NTU layout, test split) or .npy batch; default: synthetic")
    parser.add_argument("--checkpoint", help="Hub id or folder of a fine-tuned (or linear-probe) MAMP classifier")
    parser.add_argument("--limit", type=int, default=8, help="classify at most this many sequences")
    parser.add_argument("--top-k", type=int, default=5)
    return parser.parse_args(argv)


def load_classifier(checkpoint: str | None) -> tuple[MampForSkeletonClassification, MampSkeletonProcessor]:
    if checkpoint is None:
        print("No --checkpoint: using a randomly initialised classifier (chance-level predictions).")
        config = MampConfig(num_labels=60, id2label=get_id2label("ntu60"), classifier_head="finetune")
        return MampForSkeletonClassification(config).eval(), MampSkeletonProcessor(num_frames=config.num_frames)
    model = MampForSkeletonClassification.from_pretrained(checkpoint).eval()
    return model, MampSkeletonProcessor.from_pretrained(checkpoint)


@torch.no_grad()
def top_k_actions(
    model: MampForSkeletonClassification, processor: MampSkeletonProcessor, sequences: np.ndarray, k: int
) -> list[list[tuple[str, float]]]:
    """For each of the (N, ...) raw sequences, its k most likely (action name, probability) pairs."""
    inputs = processor(sequences, layout=processor.infer_layout(sequences.shape[1:]))
    probabilities = model(**inputs).logits.softmax(dim=-1)
    values, indices = probabilities.topk(min(k, probabilities.shape[-1]), dim=-1)
    return [
        [(model.config.id2label[i], round(p, 4)) for i, p in zip(row_indices, row_values, strict=True)]
        for row_indices, row_values in zip(indices.tolist(), values.tolist(), strict=True)
    ]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.input is None:
        # About half of the synthetic clips land in the test split.
        args.input = Path(write_synthetic_npz(args.output_dir / "synthetic.npz", num_samples=2 * args.limit + 10))
        print(f"No --input: wrote {args.input} (synthetic sequences in the NTU layout)")
    model, processor = load_classifier(args.checkpoint)

    true_names = None
    if args.input.suffix == ".npz":
        dataset = NpzSkeletonDataset(args.input, split="test")
        sequences = dataset.sequences[: args.limit]
        true_names = [dataset.id2label[label] for label in dataset.labels[: args.limit]]
    else:
        sequences = np.load(args.input, mmap_mode="r", allow_pickle=False)[: args.limit]

    predictions = []
    for index, top in enumerate(top_k_actions(model, processor, sequences, args.top_k)):
        record = {"index": index, "top_k": [{"action": name, "probability": p} for name, p in top]}
        line = ", ".join(f"{name} ({p:.0%})" for name, p in top)
        if true_names is not None:
            record["true_action"] = true_names[index]
            line += f"   [true: {true_names[index]}]"
        predictions.append(record)
        print(f"sequence {index}: {line}")
    path = args.output_dir / "predictions.json"
    path.write_text(json.dumps(predictions, indent=2))
    print(f"saved {path}")
    return predictions


if __name__ == "__main__":
    main()
