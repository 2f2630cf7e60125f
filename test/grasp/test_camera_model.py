"""Tests of PinholeCamera: CameraInfo P/K handling, validation and rescaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.grasp.camera_model import InvalidCameraInfoError, PinholeCamera

K = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
P = [600.0, 0.0, 330.0, 0.0, 0.0, 610.0, 250.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_intrinsics_come_from_p_when_set():
    cam = PinholeCamera.from_camera_info(K, P, 640, 480)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (600.0, 610.0, 330.0, 250.0)
    assert cam.size == (640, 480)


def test_zero_p_falls_back_to_k():
    cam = PinholeCamera.from_camera_info(K, [0.0] * 12, 640, 480)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (500.0, 510.0, 320.0, 240.0)


def test_non_finite_p_falls_back_to_k():
    p = list(P)
    p[0] = math.nan
    assert PinholeCamera.from_camera_info(K, p, 640, 480).fx == 500.0


@pytest.mark.parametrize('k, p, width, height, text', [
    ([0.0] * 9, [0.0] * 12, 640, 480, 'no usable intrinsics'),
    ([math.nan] * 9, [math.inf] * 12, 640, 480, 'no usable intrinsics'),
    (K, P, 0, 480, 'size must be positive'),
    (K[:8], P, 640, 480, 'K must have 9 values'),
    (K, P[:9], 640, 480, 'P must have 12 values'),
])
def test_invalid_camera_info_is_refused(k, p, width, height, text):
    with pytest.raises(InvalidCameraInfoError, match=text):
        PinholeCamera.from_camera_info(k, p, width, height)


def test_constructor_validates():
    with pytest.raises(InvalidCameraInfoError, match='fx'):
        PinholeCamera(fx=-1.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2)


def test_scaled_keeps_pixel_centres_aligned():
    cam = PinholeCamera(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=640, height=480)
    half = cam.scaled(320, 240)
    assert (half.fx, half.fy) == (300.0, 300.0)
    assert (half.cx, half.cy) == (159.5, 119.5)   # the optical centre stays mid-image
    assert cam.scaled(640, 480) is cam
    np.testing.assert_allclose(half.matrix, [[300, 0, 159.5], [0, 300, 119.5], [0, 0, 1]])


@pytest.mark.parametrize('field, value, message', [
    ('cx', 1e30, 'far outside'), ('cy', -5000.0, 'far outside'), ('fx', 1e30, 'exceed'),
    ('fy', 2e6, 'exceed')])
def test_absurd_intrinsics_are_refused(field, value, message) -> None:
    """Fuzzing faults: cx = 1e30 gave NaN poses, fx = 1e30 an OverflowError downstream."""
    kwargs = {'fx': 600.0, 'fy': 600.0, 'cx': 320.0, 'cy': 240.0, 'width': 640, 'height': 480}
    kwargs[field] = value
    with pytest.raises(InvalidCameraInfoError, match=message):
        PinholeCamera(**kwargs)
