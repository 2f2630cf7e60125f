"""Pseudo-labels against the synthetic cell's ground truth: precise items, honest ignoring."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.adaptation.pseudo_labels import PseudoLabelConfig, PseudoLabeler, \
    PseudoLabelError, score_against_truth
from seg_perception.classes import ClassSet
from seg_perception.constants import UNLABELED_ID
from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.fusion import discontinuity_mask
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

CLASSES = ClassSet.default()
ITEM_IDS = np.array([c.id for c in CLASSES.graspable()])


@pytest.fixture(scope='module')
def tote_frames():
    cell = SyntheticCell(SyntheticConfig(width=320, height=240, tote_probability=1.0,
                                         empty_probability=0.0, max_items=12))
    return [cell.render(seed=s) for s in range(8)]


def _label(labeler, frame, model_labels=None, confidence=None):
    camera = PinholeCamera.from_matrix(frame.K, frame.width, frame.height)
    model_labels = frame.labels if model_labels is None else model_labels
    confidence = np.full(frame.labels.shape, 255, np.uint8) if confidence is None else confidence
    return labeler.label(frame.depth_m, camera, model_labels, confidence)


def test_items_from_geometry_are_precise_and_ignored_pixels_are_reported(tote_frames):
    # The ground truth stands in for a perfect model's votes: what is measured here is the
    # geometry (where the items are), which the votes cannot move.
    labeler = PseudoLabeler(CLASSES)
    totals = {}
    for frame in tote_frames:
        out = _label(labeler, frame)
        assert out.usable, out.reason
        for key, value in score_against_truth(out.labels, frame.labels, ITEM_IDS).items():
            totals[key] = totals.get(key, 0) + value
    precision = totals['item_tp'] / (totals['item_tp'] + totals['item_fp'])
    recall = totals['item_tp'] / (totals['item_tp'] + totals['item_fn'])
    ignored = totals['ignored'] / (totals['ignored'] + totals['labelled'])
    assert precision >= 0.95, totals
    assert recall >= 0.3, totals
    assert 0.02 < ignored < 0.8
    assert totals['class_correct'] / totals['labelled'] >= 0.95


def test_unconfident_votes_leave_instances_ignored_and_one_item_class_labels_them(tote_frames):
    frame = tote_frames[0]
    shy = np.full(frame.labels.shape, 100, np.uint8)     # 0.39 < min_confidence
    out = _label(PseudoLabeler(CLASSES), frame, confidence=shy)
    assert not np.isin(out.labels, ITEM_IDS).any()
    assert out.stats['instances'] == 0 and out.stats['ignored_instances'] > 0
    single = PseudoLabeler(CLASSES, PseudoLabelConfig(single_item_class='box'))
    out = _label(single, frame, confidence=shy)
    items = np.isin(out.labels, ITEM_IDS)
    assert items.any() and set(np.unique(out.labels[items])) == {CLASSES.by_name('box').id}


def test_depth_edges_invalid_depth_and_the_bin_surface(tote_frames):
    frame = tote_frames[1]
    out = _label(PseudoLabeler(CLASSES), frame)
    assert (out.labels[~np.isfinite(frame.depth_m)] == UNLABELED_ID).all()
    assert (out.labels[discontinuity_mask(frame.depth_m, 0.01)] == UNLABELED_ID).all()
    tote = CLASSES.by_name('tote').id
    assert out.stats['container_px'] > 0
    assert np.mean(frame.labels[out.labels == tote] == tote) > 0.95


def test_a_frame_without_a_container_is_unusable_and_bad_inputs_are_refused(tote_frames):
    frame = tote_frames[2]
    camera = PinholeCamera.from_matrix(frame.K, frame.width, frame.height)
    blank = np.full(frame.depth_m.shape, np.nan, np.float32)
    out = PseudoLabeler(CLASSES).label(blank, camera, frame.labels,
                                       np.full(frame.labels.shape, 255, np.uint8))
    assert not out.usable and out.reason.startswith('no container')
    with pytest.raises(PseudoLabelError, match='differ in size'):
        PseudoLabeler(CLASSES).label(frame.depth_m, camera, frame.labels[:10],
                                     frame.labels[:10])
    with pytest.raises(PseudoLabelError, match='not in the class set'):
        PseudoLabeler(CLASSES, PseudoLabelConfig(single_item_class='unicorn'))
