"""Training recipes of MAMP (pre-training, linear probing, fine-tuning) on `transformers.Trainer`.

Entry points, run from the repository root:
    python -m training              CONFIG [section.key=value ...]   (the recipe's `protocol` says what it trains)
    python -m training.tiny_recipe  [--output_dir DIR] [--seed S] [--pretrain_epochs N]
See training/README.md.
"""
