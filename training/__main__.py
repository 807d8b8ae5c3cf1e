"""`python -m training CONFIG [section.key=value ...]`: run one recipe; its `protocol` (pretrain, linear_probe,
finetune) says what is trained. See training/README.md."""

from .recipe import main

main()
