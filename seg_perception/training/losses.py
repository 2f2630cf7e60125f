"""Segmentation losses: weighted cross-entropy + soft Dice, ignoring UNLABELED_ID pixels.

Why both: cross-entropy trains every pixel; Dice is insensitive to class frequency, which keeps
small items (envelopes, cylinders) from being drowned by the tote and background.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from seg_perception.constants import UNLABELED_ID


def class_weights_from_counts(counts: np.ndarray | torch.Tensor, *, power: float = 0.5,
                              max_ratio: float = 10.0) -> torch.Tensor:
    """Return per-class weights ~ (1 / frequency) ** power, normalised to mean 1 over seen classes.

    Classes never seen get weight 1; the ratio between largest and smallest weight is capped at
    `max_ratio` so that a rare class cannot dominate the loss.
    """
    counts = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0 or bool((counts < 0).any()):
        raise ValueError(f'counts must be a non-empty 1-D array of non-negative values, '
                         f'got {counts.tolist()}')
    seen = counts > 0
    if not bool(seen.any()):
        return torch.ones(counts.numel(), dtype=torch.float32)
    freq = counts / counts.sum()
    w = torch.ones_like(freq)
    w[seen] = freq[seen].pow(-power)
    w[seen] = w[seen].clamp(max=float(w[seen].min()) * max_ratio)
    w[seen] = w[seen] / w[seen].mean()
    return w.float()


class SegmentationLoss(nn.Module):
    """ce_weight * CE(logits, labels; class weights) + dice_weight * (1 - soft Dice)."""

    def __init__(self, *, num_classes: int, class_weights: torch.Tensor | None = None,
                 ce_weight: float = 1.0, dice_weight: float = 0.5,
                 ignore_index: int = UNLABELED_ID) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if class_weights is not None and class_weights.numel() != num_classes:
            raise ValueError(f'class_weights has {class_weights.numel()} entries for '
                             f'{num_classes} classes')
        if ce_weight < 0 or dice_weight < 0 or ce_weight + dice_weight == 0:
            raise ValueError(f'loss weights must be >= 0 and not both 0, got ce={ce_weight}, '
                             f'dice={dice_weight}')
        self.num_classes = num_classes
        self.register_buffer('class_weights', None if class_weights is None else
                             class_weights.float().clone())
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros(())
        if self.ce_weight:
            loss = loss + self.ce_weight * F.cross_entropy(
                logits, labels, weight=self.class_weights, ignore_index=self.ignore_index)
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(
                logits, labels, num_classes=self.num_classes, ignore_index=self.ignore_index)
        return loss


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, *, num_classes: int,
                   ignore_index: int = UNLABELED_ID, eps: float = 1.0) -> torch.Tensor:
    """Return 1 - mean soft Dice over the classes present in the batch's labels."""
    valid = (labels != ignore_index) & (labels < num_classes)
    probs = logits.float().softmax(dim=1) * valid.unsqueeze(1)
    target = F.one_hot(torch.where(valid, labels, torch.zeros_like(labels)),
                       num_classes).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    dims = (0, 2, 3)
    inter = (probs * target).sum(dims)
    denom = probs.sum(dims) + target.sum(dims)
    present = target.sum(dims) > 0
    dice = (2 * inter + eps) / (denom + eps)
    if not bool(present.any()):
        return logits.sum() * 0.0
    return 1.0 - dice[present].mean()
