"""Fine-tuning of the encoder of `init_from` with the MLP head, layer-wise lr decay, drop path and label smoothing.

The same entry point runs the paper's other fine-tuning protocols through the config:
- semi-supervised: `data.train_fraction: 0.01` or `0.1` (configs `semi_1pct.yaml`, `semi_10pct.yaml`);
- transfer: `init_from` a model pre-trained on another data set (configs `pku2_xsub/transfer_from_*.yaml`);
- from scratch: `init_from=null optimizer.layer_decay=1.0`.

    python -m training.finetune training/configs/ntu60_xsub/finetune.yaml [section.key=value ...]
"""

from .recipe import main

if __name__ == "__main__":
    main("finetune")
