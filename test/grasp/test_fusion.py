"""Tests of label/depth fusion on tiny golden cases."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.config import GraspConfig
from seg_perception.grasp.fusion import (discontinuity_mask, fuse, resize_labels,
                                         uniform_label_mask, workspace_filter)

CAM = PinholeCamera(fx=10.0, fy=10.0, cx=3.5, cy=3.5, width=8, height=8)


def _run(labels, depth, **kwargs):
    config = GraspConfig(**{'erosion_px': 0, 'min_region_pixels': 1, **kwargs})
    xyz = BackProjector(CAM).organized(depth)
    return fuse(labels, depth, xyz, [2], config)


def test_erosion_drops_edge_pixels():
    labels = np.zeros((8, 8), np.uint8)
    labels[1:6, 1:6] = 2
    depth = np.ones((8, 8), np.float32)
    assert _run(labels, depth).full_mask(2).sum() == 25
    eroded = _run(labels, depth, erosion_px=1).full_mask(2)
    expected = np.zeros((8, 8), bool)
    expected[2:5, 2:5] = True
    np.testing.assert_array_equal(eroded, expected)


def test_uniform_label_mask_is_per_class_erosion():
    labels = np.array([[2, 2, 2, 3, 3, 3]] * 3, np.uint8)
    np.testing.assert_array_equal(uniform_label_mask(labels, 1)[1], [1, 1, 0, 0, 1, 1])


def test_discontinuity_marks_both_sides_of_a_jump():
    depth = np.ones((3, 6), np.float32)
    depth[:, 3:] = 1.05
    depth[0, 0] = np.nan
    jump = discontinuity_mask(depth, 0.01)
    np.testing.assert_array_equal(jump[1], [0, 0, 1, 1, 0, 0])
    assert not jump[0, 1]                      # NaN neighbours are not jumps (already invalid)
    assert not discontinuity_mask(depth, 0.1).any()


def test_discontinuity_pixels_are_removed_from_masks():
    labels = np.full((8, 8), 2, np.uint8)
    depth = np.ones((8, 8), np.float32)
    depth[:, 4:] = 0.9
    mask = _run(labels, depth, discontinuity_m=0.02).full_mask(2)
    assert not mask[:, 3:5].any() and mask[:, :3].all() and mask[:, 5:].all()


def test_depth_range_and_invalid_depth():
    labels = np.full((8, 8), 2, np.uint8)
    depth = np.ones((8, 8), np.float32)
    depth[0, 0] = np.nan
    depth[1, 1] = 0.05
    depth[2, 2] = 9.0
    mask = _run(labels, depth, discontinuity_m=100.0).full_mask(2)
    assert mask.sum() == 61 and not mask[0, 0] and not mask[1, 1] and not mask[2, 2]


def test_workspace_in_camera_frame():
    labels = np.full((8, 8), 2, np.uint8)
    depth = np.ones((8, 8), np.float32)
    mask = _run(labels, depth, workspace_min=(0.0, -1.0, 0.0),
                workspace_max=(1.0, 1.0, 2.0)).full_mask(2)
    assert mask[:, 4:].all() and not mask[:, :4].any()    # x = (u - 3.5) / 10 >= 0


def test_workspace_in_base_frame():
    # Base frame 1 m above the camera's origin, z up: z_base = 1 - z_cam.
    t = np.array([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 1.0], [0, 0, 0, 1]], float)
    labels = np.full((8, 8), 2, np.uint8)
    depth = np.ones((8, 8), np.float32)
    depth[:4] = 0.8                            # 0.2 m above the base plane
    mask = _run(labels, depth, discontinuity_m=1.0, workspace_min=(-1, -1, 0.1),
                workspace_max=(1, 1, 0.5), base_from_camera=tuple(t.ravel())).full_mask(2)
    assert mask[:4].all() and not mask[4:].any()


def test_workspace_filter_golden():
    pts = np.array([[0, 0, 1], [2, 0, 1]], np.float32)
    assert workspace_filter(pts, (-1, -1, 0), (1, 1, 2)).tolist() == [True, False]


def test_labels_at_other_resolution_are_resized_nearest():
    labels = np.zeros((4, 4), np.uint8)
    labels[:2, :2] = 2
    resized = resize_labels(labels, 8, 8)
    assert set(np.unique(resized)) == {0, 2}
    assert resized[:4, :4].all() and not resized[4:].any()
    fused = _run(labels, np.ones((8, 8), np.float32))
    assert fused.full_mask(2).sum() == 16 and fused.labels.shape == (8, 8)


def test_no_graspable_pixels_gives_empty_masks():
    fused = _run(np.zeros((8, 8), np.uint8), np.ones((8, 8), np.float32))
    assert fused.empty


def test_labels_must_be_2d():
    with pytest.raises(ValueError, match='labels'):
        resize_labels(np.zeros((4, 4, 3), np.uint8), 8, 8)
