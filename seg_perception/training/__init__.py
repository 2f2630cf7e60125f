"""Training and fine-tuning of segmentation models (datasets, augmentation, losses, loop, CLI)."""
