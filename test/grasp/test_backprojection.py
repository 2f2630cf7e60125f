"""Tests of back-projection against Open3D's create_from_depth_image."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.camera_model import PinholeCamera
from seg_perception.grasp.depth import depth_to_metres

o3d = pytest.importorskip('open3d')

CAM = PinholeCamera(fx=525.0, fy=530.0, cx=158.3, cy=121.7, width=320, height=240)


def _raw_mm(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(300, 4000, size=(CAM.height, CAM.width)).astype(np.uint16)
    raw[rng.random(raw.shape) < 0.1] = 0
    return raw


def _open3d_points(image: np.ndarray, depth_scale: float) -> np.ndarray:
    intrinsic = o3d.camera.PinholeCameraIntrinsic(CAM.width, CAM.height, CAM.fx, CAM.fy,
                                                  CAM.cx, CAM.cy)
    cloud = o3d.geometry.PointCloud.create_from_depth_image(
        o3d.geometry.Image(image), intrinsic, depth_scale=depth_scale, depth_trunc=1e6)
    return np.asarray(cloud.points)


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_points_match_open3d(encoding):
    raw = _raw_mm()
    if encoding == '16UC1':
        image, scale = raw, 1000.0
    else:
        image, scale = raw.astype(np.float32) / 1000.0, 1.0
    depth = depth_to_metres(image, encoding)
    points, index = BackProjector(CAM).points(depth)
    expected = _open3d_points(image, scale)   # Open3D drops zero depth, row-major order
    assert points.shape == expected.shape
    np.testing.assert_allclose(points, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(index, np.flatnonzero(raw.ravel() > 0))


def test_organized_matches_points_and_has_nan_where_invalid():
    raw = _raw_mm(1)
    depth = depth_to_metres(raw, '16UC1')
    proj = BackProjector(CAM)
    cloud = proj.organized(depth)
    assert cloud.shape == (CAM.height, CAM.width, 3) and cloud.dtype == np.float32
    invalid = raw == 0
    assert np.isnan(cloud[invalid]).all()
    assert np.isfinite(cloud[~invalid]).all()
    np.testing.assert_allclose(cloud[~invalid], _open3d_points(raw, 1000.0), atol=1e-5, rtol=0)


def test_optical_frame_axes():
    depth = np.full((CAM.height, CAM.width), 2.0, dtype=np.float32)
    cloud = BackProjector(CAM).organized(depth)
    assert cloud[0, 0, 0] < 0 and cloud[0, 0, 1] < 0          # top-left: left and up
    assert cloud[-1, -1, 0] > 0 and cloud[-1, -1, 1] > 0      # bottom-right: right and down
    np.testing.assert_allclose(cloud[..., 2], 2.0)


def test_mask_and_other_resolution():
    depth = np.full((CAM.height // 2, CAM.width // 2), 1.0, dtype=np.float32)
    mask = np.zeros(depth.shape, dtype=bool)
    mask[10, 20] = True
    points, index = BackProjector(CAM).points(depth, mask)
    half = CAM.scaled(CAM.width // 2, CAM.height // 2)
    np.testing.assert_allclose(points, [[(20 - half.cx) / half.fx, (10 - half.cy) / half.fy, 1.0]],
                               rtol=1e-6)
    assert index.tolist() == [10 * depth.shape[1] + 20]


def test_bad_depth_is_refused():
    with pytest.raises(ValueError, match='float32'):
        BackProjector(CAM).organized(np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match='mask shape'):
        BackProjector(CAM).points(np.zeros((4, 4), np.float32), np.ones((3, 3), bool))
