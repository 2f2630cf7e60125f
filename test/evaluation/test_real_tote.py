"""The real-tote check: depth-derived object mask and label agreement."""

from __future__ import annotations

import numpy as np

from seg_perception.evaluation.real_tote import load_tote_frame, object_mask, score_labels


def test_object_mask_from_depth_difference() -> None:
    background = np.full((2, 3), 1.0, np.float32)
    depth = np.array([[1.0, 0.98, np.nan], [0.995, 0.9, 1.0]], np.float32)
    objects, tote = object_mask(depth, background)
    assert objects.tolist() == [[False, True, False], [False, True, False]]
    assert tote.tolist() == [[True, False, False], [True, False, True]]


def test_score_labels_golden() -> None:
    objects = np.array([[True, True], [False, False]])
    tote = ~objects
    labels = np.array([[2, 1], [1, 3]], np.uint8)
    s = score_labels(labels, objects, tote, item_ids=[2, 3], surface_ids=[0, 1])
    assert s['object_labelled_item'] == 0.5 and s['tote_labelled_surface'] == 0.5
    assert s['predicted_item_fraction'] == 0.5


def test_real_frame_loads(shared_data) -> None:
    frame = load_tote_frame(shared_data / 'arc2017_tote')
    assert frame['rgb'].shape == (480, 640, 3) and frame['K'][0, 0] > 600
    objects, tote = object_mask(frame['depth'], frame['background_depth'])
    assert objects.sum() > 10000 and tote.sum() > 10000
    assert np.nanmax(frame['depth']) < 2.0  # metres, not 0.1 mm units
