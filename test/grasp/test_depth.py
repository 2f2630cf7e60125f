"""Tests of depth decoding (16UC1/mono16 millimetres, 32FC1 metres)."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.grasp.depth import (depth_to_metres, DEPTH_TRAITS,
                                        UnsupportedDepthEncodingError)


@pytest.mark.parametrize('encoding', ['16UC1', 'mono16'])
def test_uint16_millimetres_with_zero_invalid(encoding):
    out = depth_to_metres(np.array([[0, 1000], [1500, 65535]], dtype=np.uint16), encoding)
    assert out.dtype == np.float32
    assert np.isnan(out[0, 0])
    np.testing.assert_allclose(out[0, 1:], [1.0])
    np.testing.assert_allclose(out[1], [1.5, 65.535], rtol=1e-6)


def test_uint16_custom_unit():
    out = depth_to_metres(np.array([[12345]], dtype=np.uint16), '16UC1', metres_per_unit=1e-4)
    np.testing.assert_allclose(out, [[1.2345]], rtol=1e-6)


def test_float_metres_with_non_finite_and_non_positive_invalid():
    raw = np.array([[1.25, np.nan, np.inf, -np.inf, 0.0, -1.0]], dtype=np.float32)
    out = depth_to_metres(raw, '32FC1')
    assert out[0, 0] == np.float32(1.25)
    assert np.isnan(out[0, 1:]).all()
    assert raw[0, 0] == np.float32(1.25) and raw[0, 4] == 0.0   # input untouched


def test_unknown_encoding_names_the_supported_ones():
    with pytest.raises(UnsupportedDepthEncodingError, match='rgb8.*16UC1'):
        depth_to_metres(np.zeros((2, 2), np.uint8), 'rgb8')


def test_dtype_must_match_encoding():
    with pytest.raises(ValueError, match='uint16'):
        depth_to_metres(np.zeros((2, 2), np.float32), '16UC1')


def test_traits_table():
    assert DEPTH_TRAITS['16UC1'].metres_per_unit == 0.001
    assert DEPTH_TRAITS['32FC1'].float_encoding
