"""Building blocks of the MAMP models: transformer blocks, the pre-training decoder, classification heads."""
