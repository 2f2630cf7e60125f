"""scaled_intrinsics: a CameraInfo's K/P carried to another image size, pixel centres aligned."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.conversions.camera_info import CameraInfoScaleError, scaled_intrinsics

K = [600.0, 0.0, 319.5, 0.0, 610.0, 239.5, 0.0, 0.0, 1.0]
P = [600.0, 0.0, 319.5, -30.0, 0.0, 610.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_same_size_is_unchanged() -> None:
    k, p = scaled_intrinsics(K, P, (640, 480), (640, 480))
    assert k == K and p == P


def test_half_size_keeps_pixel_centres_aligned() -> None:
    k, p = scaled_intrinsics(K, P, (640, 480), (320, 240))
    np.testing.assert_allclose(k, [300.0, 0.0, 159.5, 0.0, 305.0, 119.5, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(p, [300.0, 0.0, 159.5, -15.0, 0.0, 305.0, 119.5, 0.0,
                                   0.0, 0.0, 1.0, 0.0])
    # The centre of the image stays the centre: (319.5 + 0.5) / 2 - 0.5 = 159.5.
    k2, _ = scaled_intrinsics(k, p, (320, 240), (640, 480))
    np.testing.assert_allclose(k2, K)


def test_uncalibrated_size_and_bad_matrices_are_refused() -> None:
    with pytest.raises(CameraInfoScaleError, match='0x0') as info:
        scaled_intrinsics(K, P, (0, 0), (320, 240))
    assert info.value.reason == 'zero_size'
    with pytest.raises(CameraInfoScaleError) as info:
        scaled_intrinsics(K[:4], P, (640, 480), (320, 240))
    assert info.value.reason == 'matrix_size'
