"""Tests of GraspPipeline: cloud layout, resizing, empty frames, errors."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.config import GraspConfig
from seg_perception.grasp.pipeline import GraspPipeline, pack_rgb, POINT_DTYPE
from seg_perception.grasp.scenes import DepthScene

CAM = PinholeCamera(fx=300.0, fy=300.0, cx=159.5, cy=119.5, width=320, height=240)


def _scene() -> DepthScene:
    scene = DepthScene(CAM).add_plane([0, 0, 1.0], [0, 0, -1], 1)
    return scene.add_rectangle([0, 0, 0.8], [0, 0, -1], [1, 0, 0], (0.2, 0.12), 2)


def test_cloud_fields_and_contents():
    scene = _scene()
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 2] = 7
    result = GraspPipeline(GraspConfig()).process(scene.labels, scene.depth_m(), CAM, rgb=rgb)
    cloud = result.points
    assert cloud.dtype == POINT_DTYPE and cloud.ndim == 1 and len(cloud) > 1000
    assert set(cloud['label']) == {2} and set(cloud['region']) == {1}
    np.testing.assert_allclose(cloud['z'], 0.8, atol=1e-6)
    assert not np.isnan(cloud['rgb']).any()
    assert set(cloud['rgb'].view(np.uint32)) == {(200 << 16) | 7}
    assert np.nanmax(cloud['normal_z']) < -0.99
    assert cloud['score'].max() > 0.5
    assert set(result.timings_ms) >= {'backprojection', 'fusion', 'regions', 'candidates',
                                      'total'}
    assert result.regions_summary()[0]['class_name'] == 'box'


def test_organized_cloud():
    scene = _scene()
    result = GraspPipeline(GraspConfig(organized_cloud=True)).process(
        scene.labels, scene.depth_m(), CAM)
    cloud = result.points
    assert cloud.shape == (240, 320) and result.organized
    inside = cloud['region'] > 0
    assert np.isnan(cloud['x'][~inside]).all() and np.isfinite(cloud['x'][inside]).all()
    assert not np.isnan(cloud['rgb']).any()


def test_labels_and_rgb_at_other_resolution():
    scene = _scene()
    labels_small = scene.labels[::2, ::2].copy()
    result = GraspPipeline(GraspConfig()).process(labels_small, scene.depth_m(), CAM,
                                                  rgb=np.zeros((120, 160, 3), np.uint8))
    assert len(result.regions) == 1 and result.candidates


def test_depth_at_other_resolution_than_camera_info():
    big = PinholeCamera(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=640, height=480)
    scene = _scene()
    a = GraspPipeline(GraspConfig()).process(scene.labels, scene.depth_m(), CAM)
    b = GraspPipeline(GraspConfig()).process(scene.labels, scene.depth_m(), big)
    np.testing.assert_allclose(a.candidates[0].position, b.candidates[0].position, atol=1e-6)


def test_empty_masks_give_empty_result():
    scene = _scene()
    result = GraspPipeline(GraspConfig()).process(np.ones((240, 320), np.uint8),
                                                  scene.depth_m(), CAM)
    assert result.empty and result.candidates == [] and len(result.points) == 0


def test_all_invalid_depth_gives_empty_result():
    depth = np.full((240, 320), np.nan, np.float32)
    result = GraspPipeline(GraspConfig(organized_cloud=True)).process(
        _scene().labels, depth, CAM)
    assert result.empty and result.candidates == []
    assert result.points.shape == (240, 320) and np.isnan(result.points['x']).all()


def test_buffers_are_reset_between_frames():
    pipeline = GraspPipeline(GraspConfig())
    scene = _scene()
    first = pipeline.process(scene.labels, scene.depth_m(), CAM)
    empty = pipeline.process(np.zeros((240, 320), np.uint8), scene.depth_m(), CAM)
    again = pipeline.process(scene.labels, scene.depth_m(), CAM)
    assert empty.empty
    assert len(again.points) == len(first.points)
    assert first.candidates[0].score == again.candidates[0].score


def test_bad_inputs_are_refused():
    pipeline = GraspPipeline(GraspConfig())
    with pytest.raises(ValueError, match='float32'):
        pipeline.process(np.zeros((240, 320), np.uint8), np.zeros((240, 320)), CAM)
    with pytest.raises(ValueError, match='labels'):
        pipeline.process(np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320), np.float32),
                         CAM)
    with pytest.raises(KeyError, match='unknown class'):
        GraspPipeline(GraspConfig(graspable_classes=('nope',)))


def test_pack_rgb():
    packed = pack_rgb(np.array([[255, 255, 255], [1, 2, 3]], np.uint8))
    assert packed.dtype == np.float32 and not np.isnan(packed).any()
    assert packed.view(np.uint32).tolist() == [0xFFFFFF, 0x010203]
