"""Tests for sensor_msgs/CompressedImage <-> numpy conversion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

from seg_perception.conversions.compressed import compressed_to_numpy, numpy_to_compressed
from seg_perception.conversions.encodings import ImageConversionError


def _scene(height: int = 48, width: int = 64) -> np.ndarray:
    """Return a smooth RGB image with distinct colour blocks (jpeg-friendly)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (200, 30, 40)     # red-ish left half
    image[:, width // 2:] = (20, 60, 220)      # blue-ish right half
    return image


def test_png_round_trip_is_exact_and_rgb_ordered():
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    msg = numpy_to_compressed(image, 'png')
    assert msg.format == 'rgb8; png compressed bgr8'
    np.testing.assert_array_equal(compressed_to_numpy(msg), image)
    np.testing.assert_array_equal(compressed_to_numpy(msg, 'bgr8'), image[:, :, ::-1])


def test_jpeg_decode_keeps_colours():
    image = _scene()
    msg = numpy_to_compressed(image, 'jpeg', jpeg_quality=95)
    assert msg.format == 'rgb8; jpeg compressed bgr8'
    assert bytes(msg.data[:2]) == b'\xff\xd8'
    decoded = compressed_to_numpy(msg)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - image).mean() < 3.0
    assert decoded[24, 5, 0] > 150 and decoded[24, 60, 2] > 150  # red stays red, blue stays blue


def test_decodes_message_encoded_by_opencv_directly():
    bgr = _scene()[:, :, ::-1]
    ok, encoded = cv2.imencode('.png', bgr)
    assert ok
    msg = CompressedImage(format='bgr8; png compressed bgr8', data=encoded.tobytes())
    np.testing.assert_array_equal(compressed_to_numpy(msg, 'rgb8'), _scene())
    np.testing.assert_array_equal(compressed_to_numpy(msg, 'passthrough'), bgr)


def test_mono16_png_round_trip():
    depth_mm = np.random.default_rng(1).integers(0, 65536, (6, 9), dtype=np.uint16)
    msg = numpy_to_compressed(depth_mm, 'png')
    assert msg.format == 'mono16; png compressed mono16'
    np.testing.assert_array_equal(compressed_to_numpy(msg, 'mono16'), depth_mm)


def test_mono8_to_rgb():
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    rgb = compressed_to_numpy(numpy_to_compressed(gray, 'png'), 'rgb8')
    np.testing.assert_array_equal(rgb, np.repeat(gray[:, :, None], 3, axis=2))


def test_errors_name_the_problem():
    with pytest.raises(ImageConversionError, match='cannot decode'):
        compressed_to_numpy(CompressedImage(format='jpeg', data=b'not a jpeg'))
    with pytest.raises(ImageConversionError, match='no data'):
        compressed_to_numpy(CompressedImage(format='jpeg'))
    with pytest.raises(ImageConversionError, match="'webp'"):
        numpy_to_compressed(_scene(), 'webp')
    with pytest.raises(ImageConversionError, match='jpeg cannot hold'):
        numpy_to_compressed(np.zeros((4, 4), np.uint16), 'jpeg')
    with pytest.raises(ImageConversionError, match='mono16 from a 3-channel'):
        compressed_to_numpy(numpy_to_compressed(_scene(), 'png'), 'mono16')


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header announces width x height (IHDR patched; never decoded)."""
    ok, buf = cv2.imencode('.png', np.zeros((8, 8), np.uint8))
    data = bytearray(buf.tobytes())
    data[16:20], data[20:24] = width.to_bytes(4, 'big'), height.to_bytes(4, 'big')
    return bytes(data)


def test_header_sizes_and_a_decompression_bomb_is_refused_before_decoding() -> None:
    """Fuzzing fault: a 249 kB PNG decoding to 16000x16000 stalled every camera for 7.7 s."""
    from types import SimpleNamespace

    from seg_perception.conversions.compressed import compressed_image_size
    for ext in ('.png', '.jpg'):
        ok, buf = cv2.imencode(ext, np.zeros((123, 456, 3), np.uint8))
        assert compressed_image_size(buf.tobytes()) == (456, 123)
    assert compressed_image_size(b'not an image') is None
    bomb = SimpleNamespace(format='png', data=_bomb_png(16000, 16000))
    with pytest.raises(ImageConversionError, match='too_many_pixels: .*16000x16000'):
        compressed_to_numpy(bomb, max_pixels=4096 * 4096)
