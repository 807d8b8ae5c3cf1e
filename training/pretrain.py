"""Pre-training: MAMP (masked motion prediction) or, with `model.pretraining_target: joints` and
`model.masking_strategy: random`, the SkeletonMAE-style joint-reconstruction baseline.

    python -m training.pretrain training/configs/ntu60_xsub/pretrain_mamp.yaml [section.key=value ...]
"""

from .recipe import main

if __name__ == "__main__":
    main("pretrain")
