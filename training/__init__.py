"""Training recipes of MAMP (pre-training, linear probing, fine-tuning) on `transformers.Trainer`.

Entry points, run from the repository root:
    python -m training.pretrain      CONFIG [section.key=value ...]
    python -m training.linear_probe  CONFIG [section.key=value ...]
    python -m training.finetune      CONFIG [section.key=value ...]
    python -m training.tiny_recipe   [--output_dir DIR]
See training/README.md.
"""
