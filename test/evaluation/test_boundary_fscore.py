"""Golden tests of the boundary F-score (BF) on hand-counted label maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.constants import UNLABELED_ID
from seg_perception.evaluation.metrics import boundary_f_scores, BoundaryScores, MetricsError


def _halves(split: int) -> np.ndarray:
    """Return a 10x10 map: class 0 in columns < split, class 1 from it on."""
    labels = np.ones((10, 10), dtype=np.uint8)
    labels[:, :split] = 0
    return labels


def test_a_boundary_shifted_within_the_tolerance_is_perfect_and_beyond_it_is_zero():
    gt = _halves(5)  # boundaries: class 0 column 4, class 1 column 5
    assert np.allclose(boundary_f_scores(gt, _halves(7), num_classes=2), [1.0, 1.0])  # 2 px
    assert np.allclose(boundary_f_scores(gt, _halves(8), num_classes=2), [0.0, 0.0])  # 3 px
    assert np.allclose(boundary_f_scores(gt, _halves(6), num_classes=2, tolerance_px=0),
                       [0.0, 0.0])


def test_hand_counted_partial_match():
    gt = _halves(5)
    pred = _halves(5)
    pred[:5, :9] = 0  # class 0 bulges to column 8 in rows 0..4
    # class 0: predicted boundary (r, 8) r<5, (4, 5..7), (r, 4) r>=5: 13 px, of which (4, 5),
    # (4, 6) and the 5 of column 4 lie within 2 px of the true column 4: precision 7/13.
    # True boundary (r, 4): rows 5..9 and rows 3, 4 (1 and 1.41 px from (4, 5)): recall 7/10.
    # Class 1 is the mirror image: the same 7/13 and 7/10.
    p, r = 7 / 13, 7 / 10
    f1 = 2 * p * r / (p + r)
    scores = boundary_f_scores(gt, pred, num_classes=3)
    assert scores[:2] == pytest.approx([f1, f1])
    assert np.isnan(scores[2])  # class 2 in neither map: left out
    acc = BoundaryScores(num_classes=3, class_names=['a', 'b', 'c'])
    acc.update(gt, pred)
    acc.update(torch.from_numpy(gt), torch.from_numpy(gt))  # a perfect frame
    summary = acc.summary()
    assert summary['frames'] == 2
    assert summary['bf_score'] == pytest.approx((f1 + 1.0) / 2)
    assert summary['per_class_bf'] == {'a': pytest.approx((f1 + 1) / 2),
                                       'b': pytest.approx((f1 + 1) / 2), 'c': None}


def test_missing_and_spurious_classes_score_zero_and_unlabeled_pixels_are_ignored():
    gt = _halves(5)
    pred = _halves(5)
    pred[2:4, 1:3] = 2  # a spurious class-2 blob inside class 0
    scores = boundary_f_scores(gt, pred, num_classes=3)
    assert scores[2] == 0.0 and scores[1] == 1.0 and 0 < scores[0] < 1
    # the same blob on pixels the ground truth does not label costs nothing for class 2
    gt_ignoring = gt.copy()
    gt_ignoring[1:5, 0:4] = UNLABELED_ID
    assert np.isnan(boundary_f_scores(gt_ignoring, pred, num_classes=3)[2])
    # one class filling the frame in both maps: no boundary anywhere, a perfect score
    full = np.zeros((4, 4), dtype=np.uint8)
    assert boundary_f_scores(full, full, num_classes=2)[0] == 1.0


def test_bad_inputs_are_refused():
    with pytest.raises(MetricsError, match='shape'):
        boundary_f_scores(np.zeros((3, 3), np.uint8), np.zeros((3, 4), np.uint8),
                          num_classes=2)
    with pytest.raises(MetricsError, match='integer'):
        boundary_f_scores(np.zeros((3, 3)), np.zeros((3, 3)), num_classes=2)
    with pytest.raises(MetricsError, match='tolerance'):
        boundary_f_scores(np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8),
                          num_classes=2, tolerance_px=-1)
