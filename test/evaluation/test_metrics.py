"""Golden tests of the confusion matrix, IoU, mIoU and pixel accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.constants import UNLABELED_ID
from seg_perception.evaluation.metrics import (
    confusion_matrix,
    format_table,
    iou_per_class,
    mean_iou,
    MetricsError,
    pixel_accuracy,
    SegmentationScores,
)

U = UNLABELED_ID
GT = np.array([[0, 0, 1, 1],
               [0, 2, 2, 1],
               [U, 2, 2, 9]], dtype=np.uint8)   # 9: outside 0..3, ignored like U
PRED = np.array([[0, 1, 1, 1],
                 [0, 2, 1, 1],
                 [3, 2, 2, 0]], dtype=np.uint8)
# counted pixels (gt, pred): (0,0) x2, (0,1), (1,1) x3, (2,2) x3, (2,1)
GOLDEN = np.array([[2, 1, 0, 0],
                   [0, 3, 0, 0],
                   [0, 1, 3, 0],
                   [0, 0, 0, 0]])


def test_confusion_matrix_golden_numpy_and_torch():
    assert confusion_matrix(GT, PRED, num_classes=4).tolist() == GOLDEN.tolist()
    conf_t = confusion_matrix(torch.from_numpy(GT), torch.from_numpy(PRED), num_classes=4)
    assert conf_t.tolist() == GOLDEN.tolist()


def test_iou_miou_accuracy_golden():
    iou = iou_per_class(GOLDEN)
    # class 0: 2 / (2 + 1) ; class 1: 3 / (3 + 2) ; class 2: 3 / (3 + 1) ; class 3: absent
    np.testing.assert_allclose(iou[:3], [2 / 3, 3 / 5, 3 / 4])
    assert np.isnan(iou[3])
    assert mean_iou(GOLDEN) == pytest.approx((2 / 3 + 3 / 5 + 3 / 4) / 3)
    assert pixel_accuracy(GOLDEN) == pytest.approx(8 / 10)


def test_class_predicted_but_absent_from_gt_counts_as_zero():
    gt = np.zeros((2, 2), dtype=np.uint8)
    pred = np.array([[0, 0], [0, 1]], dtype=np.uint8)
    conf = confusion_matrix(gt, pred, num_classes=3)
    iou = iou_per_class(conf)
    assert iou[0] == pytest.approx(3 / 4) and iou[1] == 0.0 and np.isnan(iou[2])
    assert mean_iou(conf) == pytest.approx(3 / 8)


def test_perfect_prediction_and_empty_input():
    assert mean_iou(confusion_matrix(GT, GT, num_classes=4)) == 1.0
    empty = confusion_matrix(np.full((2, 2), U, np.uint8), np.zeros((2, 2), np.uint8),
                             num_classes=4)
    assert empty.sum() == 0 and np.isnan(mean_iou(empty)) and np.isnan(pixel_accuracy(empty))


def test_bad_inputs_are_rejected():
    with pytest.raises(MetricsError, match='shape'):
        confusion_matrix(GT, PRED[:2], num_classes=4)
    with pytest.raises(MetricsError, match='integer'):
        confusion_matrix(GT.astype(np.float32), PRED, num_classes=4)
    with pytest.raises(MetricsError, match='num_classes'):
        confusion_matrix(GT, PRED, num_classes=0)


def test_scores_accumulate_frames_and_batches():
    scores = SegmentationScores(num_classes=4, class_names=['a', 'b', 'c', 'd'])
    scores.update(GT, PRED)
    scores.update(np.stack([GT, GT]), np.stack([PRED, PRED]))
    summary = scores.summary()
    assert summary['frames'] == 3
    assert summary['confusion_matrix'] == (3 * GOLDEN).tolist()
    assert summary['per_class_iou']['a'] == pytest.approx(2 / 3)
    assert summary['per_class_iou']['d'] is None
    table = format_table(summary)
    assert 'mIoU' in table and 'n/a' in table
