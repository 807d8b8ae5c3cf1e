"""Fine-tune MAMP on your own labelled skeleton sequences with `transformers.Trainer`.

    python examples/finetune.py --output-dir outputs/finetune
    python examples/finetune.py --train-data my_clips.npz --checkpoint <org>/<repo> --epochs 30 --output-dir out

`--train-data` is an `.npz` with `x_train`, `y_train`, `x_test`, `y_test` in the standard NTU layout
(`x_*`: (N, frames, persons x 25 x 3), zero frames after the end of each clip; `y_*`: class indices or one-hot),
optionally `class_names`; for arrays already in memory, build `ArraySkeletonDataset(sequences, labels)` the
same way. Without it, a small synthetic data set is written and used. `--checkpoint` is the pre-trained encoder
to start from (any MAMP repository or folder); without it training starts from random weights, with a tiny
encoder unless `--scratch-size paper`. The fine-tuned model and its processor are saved to `OUTPUT_DIR/model`,
ready for `examples/classify.py --checkpoint OUTPUT_DIR/model` or `push_to_hub`.

This is the smallest complete use of the API. The paper's fine-tuning recipe (layer-wise learning-rate decay,
drop path 0.3, label smoothing 0.1, 100 epochs) is `training/finetune.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transformers import TrainingArguments

from mamp_hub import MampConfig, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data import NpzSkeletonDataset, SkeletonDataCollator
from mamp_hub.data.synthetic import write_synthetic_npz
from mamp_hub.metrics import compute_metrics, logits_only
from mamp_hub.trainer import SkeletonTrainer

# Encoder sizes for training from scratch; a checkpoint brings its own.
SCRATCH_SIZES = {
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "num_frames": 32,
    },
    "paper": {},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/finetune"))
    parser.add_argument("--train-data", type=Path, help="labelled .npz (x_train, y_train, x_test, y_test)")
    parser.add_argument("--checkpoint", help="Hub id or folder of a pre-trained MAMP model (default: from scratch)")
    parser.add_argument(
        "--scratch-size",
        choices=sorted(SCRATCH_SIZES),
        default="tiny",
        help="model size without --checkpoint: 'tiny' trains in about a minute on a CPU, 'paper' is "
        "the paper's encoder (8 layers, width 256, 120 frames)",
    )
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--num-synthetic", type=int, default=100, help="clips of the synthetic data set (train + test)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_model(
    checkpoint: str | None, id2label: dict[int, str], scratch_size: str = "tiny"
) -> tuple[MampForSkeletonClassification, MampSkeletonProcessor]:
    """A classifier for `id2label` with the authors' fine-tuning head, on the pre-trained encoder if given."""
    head = {"num_labels": len(id2label), "id2label": id2label, "classifier_head": "finetune"}
    if checkpoint is None:
        config = MampConfig(**SCRATCH_SIZES[scratch_size], **head)
        return MampForSkeletonClassification(config), MampSkeletonProcessor(num_frames=config.num_frames)
    # The encoder's weights load under `mamp.*`. The head starts from scratch unless the checkpoint has one of the
    # same type and size (e.g. a fine-tuned model with as many classes), which is then fine-tuned further.
    model = MampForSkeletonClassification.from_pretrained(checkpoint, ignore_mismatched_sizes=True, **head)
    return model, MampSkeletonProcessor.from_pretrained(checkpoint)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.train_data is None:
        args.train_data = Path(write_synthetic_npz(args.output_dir / "synthetic.npz", num_samples=args.num_synthetic))
        print(f"No --train-data: wrote {args.train_data} (synthetic labelled sequences in the NTU layout)")
    train_dataset = NpzSkeletonDataset(args.train_data, split="train")
    test_dataset = NpzSkeletonDataset(args.train_data, split="test")
    model, processor = build_model(args.checkpoint, train_dataset.id2label, args.scratch_size)

    training_args = TrainingArguments(
        output_dir=str(args.output_dir / "trainer"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=0.05,
        # The head's BatchNorm cannot train on a batch of one clip: drop an incomplete last batch.
        dataloader_drop_last=True,
        # Items are {"skeleton_values", "labels", "valid_frames"} dicts that the collator consumes whole.
        remove_unused_columns=False,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        seed=args.seed,
    )
    trainer = SkeletonTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        # Training batches get the random crop and rotation of the paper's recipe; evaluation batches the central
        # crop, and every test clip. A run whose loss stops being finite stops with TrainingDivergedError.
        data_collator=SkeletonDataCollator(processor, training=True),
        eval_data_collator=SkeletonDataCollator(processor, training=False),
        compute_metrics=compute_metrics,  # top-1 / top-5 accuracy, in percent
        preprocess_logits_for_metrics=logits_only,
    )
    trainer.train()
    metrics = trainer.evaluate(test_dataset)
    print(
        f"test accuracy: top-1 {metrics['eval_top1']:.1f}%, top-5 {metrics['eval_top5']:.1f}% on {len(test_dataset)} clips"
    )

    model_dir = args.output_dir / "model"
    trainer.save_model(str(model_dir))
    processor.save_pretrained(model_dir)
    print(f"saved the fine-tuned model and its processor to {model_dir}")
    return metrics


if __name__ == "__main__":
    main()
