"""Tests of the segmentation loss and the automatic class weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.constants import UNLABELED_ID
from seg_perception.training.losses import class_weights_from_counts, SegmentationLoss, \
    soft_dice_loss


def test_class_weights_favour_rare_classes_and_are_capped():
    w = class_weights_from_counts(np.array([1_000_000, 40_000, 100, 0]))
    assert w[0] < w[1] < w[2]
    assert w[3] == 1.0  # never seen: neutral
    assert float(w[2] / w[0]) == pytest.approx(10.0)  # capped at max_ratio
    assert float(w[:3].mean()) == pytest.approx(1.0)


def test_dice_is_zero_for_a_perfect_prediction_and_ignores_unlabeled():
    labels = torch.tensor([[[0, 1], [2, UNLABELED_ID]]])
    logits = torch.nn.functional.one_hot(labels.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    logits = logits * 50.0
    logits[0, :, 1, 1] = torch.tensor([0.0, 0.0, 100.0])  # wrong on the ignored pixel only
    assert soft_dice_loss(logits, labels, num_classes=3) == pytest.approx(0.0, abs=1e-3)


def test_loss_prefers_the_correct_prediction():
    labels = torch.randint(0, 4, (2, 8, 8))
    good = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float() * 5
    bad = torch.roll(good, 1, dims=1)
    loss = SegmentationLoss(num_classes=4, class_weights=torch.tensor([1.0, 2.0, 1.0, 1.0]))
    assert loss(good, labels) < loss(bad, labels)
    labels[:] = UNLABELED_ID
    assert loss(good, labels).item() == pytest.approx(0.0, abs=1e-6) or \
        torch.isnan(loss(good, labels))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match='class_weights'):
        SegmentationLoss(num_classes=3, class_weights=torch.ones(4))
    with pytest.raises(ValueError, match='counts'):
        class_weights_from_counts(np.array([-1, 2]))
