"""Extract MAMP clip embeddings from skeleton sequences in an `.npz` or `.npy` file.

    python examples/extract_features.py --output-dir outputs/features
    python examples/extract_features.py --input NTU60_XSub.npz --checkpoint <org>/<repo> --output-dir out
    python examples/extract_features.py --input my_clips.npy --checkpoint converted/ntu60-xsub-pretrain --output-dir out

`--input` is a standard NTU-layout `.npz` (`x_train`/`x_test` of shape (N, 300, 150)) or a `.npy` holding a batch
of sequences, e.g. (N, frames, 25, 3). Without it, a small synthetic `.npz` is written and used. Writes
`features.npy`, (N, hidden_size): the mean of the encoder's token features over persons, time and joints
(`pooler_output`), the features the paper's linear probe is trained on. Without `--checkpoint` the model is
randomly initialised, which exercises the code but gives meaningless features.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mamp_hub import MampConfig, MampModel, MampSkeletonProcessor
from mamp_hub.data import NpzSkeletonDataset
from mamp_hub.data.synthetic import write_synthetic_npz


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/extract_features"))
    parser.add_argument("--input", type=Path, help=".npz (NTU layout) or .npy batch of sequences; default: synthetic")
    parser.add_argument("--split", default="test", choices=["train", "test"], help="split of an .npz input")
    parser.add_argument("--checkpoint", help="Hub id or folder of a MAMP model (default: random initialisation)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-synthetic", type=int, default=20, help="clips of the synthetic input (train + test)")
    return parser.parse_args(argv)


def load_model(checkpoint: str | None) -> tuple[MampModel, MampSkeletonProcessor]:
    """The encoder of any MAMP checkpoint (pre-trained, linear-probe or fine-tuned) and its processor."""
    if checkpoint is None:
        print("No --checkpoint: using a randomly initialised encoder (its features mean nothing).")
        config = MampConfig()
        return MampModel(config).eval(), MampSkeletonProcessor(num_frames=config.num_frames)
    return MampModel.from_pretrained(checkpoint).eval(), MampSkeletonProcessor.from_pretrained(checkpoint)


def load_sequences(path: Path, split: str) -> np.ndarray:
    """(N, ...) raw sequences; an `.npz` split stays memory-mapped."""
    if path.suffix == ".npz":
        return NpzSkeletonDataset(path, split).sequences
    return np.load(path, mmap_mode="r", allow_pickle=False)


@torch.no_grad()
def extract_features(
    model: MampModel, processor: MampSkeletonProcessor, sequences: np.ndarray, batch_size: int
) -> np.ndarray:
    """(N, hidden_size) clip embeddings of (N, ...) raw sequences, one processor and model call per batch."""
    layout = processor.infer_layout(sequences.shape[1:])
    features = [
        model(**processor(sequences[start : start + batch_size], layout=layout)).pooler_output
        for start in range(0, len(sequences), batch_size)
    ]
    return torch.cat(features).numpy()


def main(argv: list[str] | None = None) -> np.ndarray:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.input is None:
        args.input = Path(write_synthetic_npz(args.output_dir / "synthetic.npz", num_samples=args.num_synthetic))
        print(f"No --input: wrote {args.input} (synthetic sequences in the NTU layout)")
    model, processor = load_model(args.checkpoint)
    sequences = load_sequences(args.input, args.split)
    features = extract_features(model, processor, sequences, args.batch_size)
    path = args.output_dir / "features.npy"
    np.save(path, features)
    print(f"saved {path}: {features.shape[0]} sequences x {features.shape[1]} features")
    return features


if __name__ == "__main__":
    main()
