"""Tests for sensor_msgs/Image <-> numpy conversion."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.conversions import encodings
from seg_perception.conversions.encodings import encoding_info, ENCODINGS
from seg_perception.conversions.image import (
    image_to_numpy,
    ImageConversionError,
    numpy_to_image,
    UnknownEncodingError,
)

LISTED = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '8UC1', '8UC3', '16UC1',
          '32FC1', '16SC1', '32SC1', '64FC1']


def _random_image(encoding: str, height: int = 5, width: int = 7, seed: int = 0) -> np.ndarray:
    """Return a random array of the encoding's dtype and channels with extreme values included."""
    info = encoding_info(encoding)
    rng = np.random.default_rng(seed)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    if info.dtype.kind == 'f':
        image = rng.normal(size=shape).astype(info.dtype)
        image.reshape(-1)[:3] = [np.nan, np.inf, -0.0]
    else:
        limits = np.iinfo(info.dtype)
        image = rng.integers(limits.min, limits.max, size=shape, endpoint=True, dtype=info.dtype)
        image.reshape(-1)[:2] = [limits.min, limits.max]
    return image


def _raw_bytes(image: np.ndarray, big_endian: bool) -> np.ndarray:
    """Return the array with the requested byte order (same values)."""
    return image.astype(image.dtype.newbyteorder('>' if big_endian else '<'))


@pytest.mark.parametrize('encoding', LISTED)
def test_round_trip_is_bit_exact(encoding):
    image = _random_image(encoding)
    header = Header(frame_id='camera_color_optical_frame')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = numpy_to_image(image, encoding, header)
    info = encoding_info(encoding)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * info.bytes_per_pixel
    assert msg.is_bigendian == (sys.byteorder == 'big' and info.dtype.itemsize > 1)
    assert msg.header.frame_id == 'camera_color_optical_frame' and msg.header.stamp.nanosec == 345
    assert len(msg.data) == 5 * msg.step
    back = image_to_numpy(msg)
    assert back.dtype == image.dtype and back.shape == image.shape
    assert back.tobytes() == image.tobytes()  # bit-exact, NaN and -0.0 included


@pytest.mark.parametrize('encoding', ['rgb8', 'mono16', '32FC1', '16SC1'])
@pytest.mark.parametrize('data_type', ['bytes', 'array', 'list', 'ndarray'])
def test_padded_step_gives_strided_view(encoding, data_type):
    image = _random_image(encoding, height=4, width=3, seed=1)
    info = encoding_info(encoding)
    step = 3 * info.bytes_per_pixel + 5  # odd padding: rows not aligned to the item size
    rows = np.full((4, step), 0xAB, dtype=np.uint8)
    rows[:, :3 * info.bytes_per_pixel] = np.ascontiguousarray(image).view(np.uint8).reshape(4, -1)
    raw = rows.tobytes()
    data = {'bytes': raw, 'array': array.array('B', raw), 'list': list(raw),
            'ndarray': np.frombuffer(raw, np.uint8)}[data_type]
    msg = Image(height=4, width=3, encoding=encoding, step=step,
                is_bigendian=sys.byteorder == 'big')
    msg._data = data  # bypass the setter to feed each buffer type as it arrives from transports
    back = image_to_numpy(msg)
    assert back.tobytes() == image.tobytes()
    assert back.strides[0] == step


def test_view_shares_memory_with_message():
    msg = numpy_to_image(_random_image('rgb8', 480, 640), 'rgb8')
    view = image_to_numpy(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize('encoding', ['mono16', '16UC1', '32FC1', '64FC1', '16SC1', '32SC1'])
def test_big_endian_input_is_swapped_to_native(encoding):
    image = _random_image(encoding, seed=2)
    msg = Image(height=5, width=7, encoding=encoding, step=7 * image.itemsize, is_bigendian=True)
    msg.data = _raw_bytes(image, big_endian=True).tobytes()
    back = image_to_numpy(msg)
    assert back.dtype.isnative
    assert back.tobytes() == image.tobytes()


def test_big_endian_padded_input():
    image = _random_image('mono16', height=3, width=4, seed=3)
    rows = np.zeros((3, 12), dtype=np.uint8)
    rows[:, :8] = _raw_bytes(image, big_endian=True).view(np.uint8).reshape(3, 8)
    msg = Image(height=3, width=4, encoding='mono16', step=12, is_bigendian=True)
    msg.data = rows.tobytes()
    np.testing.assert_array_equal(image_to_numpy(msg), image)


def test_big_endian_array_to_message_keeps_order():
    image = _random_image('16UC1', seed=4)
    msg = numpy_to_image(_raw_bytes(image, big_endian=True), '16UC1')
    assert msg.is_bigendian
    np.testing.assert_array_equal(image_to_numpy(msg), image)


def test_single_channel_third_axis_is_accepted():
    image = _random_image('mono8')
    msg = numpy_to_image(image[:, :, None], 'mono8')
    np.testing.assert_array_equal(image_to_numpy(msg), image)


def test_non_contiguous_array_is_packed():
    image = _random_image('rgb8', 6, 8)[::2, ::2]
    msg = numpy_to_image(image, 'rgb8')
    assert msg.step == 4 * 3
    np.testing.assert_array_equal(image_to_numpy(msg), image)


def _message(encoding='rgb8', height=2, width=3, step=None, size=None) -> Image:
    info = encoding_info(encoding)
    step = width * info.bytes_per_pixel if step is None else step
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.data = bytes(height * step if size is None else size)
    return msg


def test_unknown_encoding_names_it_and_lists_supported():
    with pytest.raises(UnknownEncodingError, match=r"'rgb9'.*supported:.*rgb8"):
        image_to_numpy(Image(encoding='rgb9', height=1, width=1, step=3))
    with pytest.raises(ImageConversionError, match='rgb9'):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb9')


@pytest.mark.parametrize('height,width', [(0, 3), (2, 0)])
def test_zero_size_is_rejected(height, width):
    msg = _message(height=height, width=width, step=9, size=18)
    with pytest.raises(ImageConversionError, match='zero size'):
        image_to_numpy(msg)


def test_short_data_is_rejected():
    msg = _message(height=4, width=3, size=4 * 9 - 1)
    with pytest.raises(ImageConversionError, match=r'35 bytes.*height\*step = 4\*9 = 36'):
        image_to_numpy(msg)


def test_step_smaller_than_row_is_rejected():
    msg = _message(width=3, step=8)
    with pytest.raises(ImageConversionError, match=r'step 8 .*3\*3 = 9'):
        image_to_numpy(msg)


@pytest.mark.parametrize('image,encoding', [
    (np.zeros((2, 2, 3), np.uint8), 'mono8'),
    (np.zeros((2, 2), np.float64), '32FC1'),
    (np.zeros((2, 2, 4), np.uint8), 'rgb8'),
    (np.zeros((2, 2), np.int16), 'mono16'),
    (np.zeros((2,), np.uint8), 'mono8'),
])
def test_array_not_matching_encoding_is_rejected(image, encoding):
    with pytest.raises(ImageConversionError, match=encoding):
        numpy_to_image(image, encoding)


def test_encoding_constants_are_in_the_table():
    names = [v for k, v in vars(encodings).items() if k.isupper() and isinstance(v, str)]
    assert names and all(name in ENCODINGS for name in names)


def test_matches_cv_bridge():
    cv_bridge = pytest.importorskip(
        'cv_bridge', reason='cv_bridge is not installable without a ROS distribution')
    bridge = cv_bridge.CvBridge()
    for encoding in LISTED:
        image = _random_image(encoding, seed=5)
        ours, theirs = numpy_to_image(image, encoding), bridge.cv2_to_imgmsg(image, encoding)
        assert (ours.step, bytes(ours.data)) == (theirs.step, bytes(theirs.data))
        np.testing.assert_array_equal(image_to_numpy(theirs), bridge.imgmsg_to_cv2(ours))
