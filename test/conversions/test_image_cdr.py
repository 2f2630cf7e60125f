"""Tests for reading and writing serialized sensor_msgs/Image (CDR) against rclpy's serializer."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.conversions.encodings import encoding_info, ImageConversionError
from seg_perception.conversions.image import image_to_numpy, numpy_to_image
from seg_perception.conversions.image_cdr import decode_image, encode_image, restamp

ENCODINGS = ['rgb8', 'mono8', 'bgra8', 'mono16', '16UC1', '32FC1', '64FC1']


def _header(frame_id: str, sec: int = 1_700_000_123, nanosec: int = 456_789) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def _image(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    info = encoding_info(encoding)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    rng = np.random.default_rng(3)
    return rng.integers(0, 200, size=shape).astype(info.dtype)


# frame_id lengths 0..4 put every padding case in front of height/width and the data length.
@pytest.mark.parametrize('frame_id', ['', 'a', 'ab', 'abc', 'cam0_optical_frame', 'kamera_ä'])
@pytest.mark.parametrize('encoding', ENCODINGS)
def test_encode_matches_rclpy(encoding, frame_id):
    """Same length, same message, same bytes except padding (rclpy leaves it uninitialised)."""
    image = _image(encoding)
    header = _header(frame_id)
    msg = numpy_to_image(image, encoding, header)
    expected = serialize_message(msg)
    ours = encode_image(image, encoding, header)
    assert len(ours) == len(expected)
    assert deserialize_message(ours, Image) == msg
    differ = [i for i, (a, b) in enumerate(zip(ours, expected)) if a != b]
    assert all(ours[i] == 0 for i in differ)  # only our zeroed padding differs
    assert len(differ) <= 6  # at most 3 pad bytes after frame_id and 3 after is_bigendian


@pytest.mark.parametrize('frame_id', ['', 'abc', 'camera_color_optical_frame'])
@pytest.mark.parametrize('encoding', ENCODINGS)
def test_decode_reads_what_rclpy_wrote(encoding, frame_id):
    image = _image(encoding, height=4, width=9)
    msg = numpy_to_image(image, encoding, _header(frame_id, sec=-3, nanosec=999_999_999))
    raw = serialize_message(msg)
    view = decode_image(raw)
    assert (view.header.stamp.sec, view.header.stamp.nanosec) == (-3, 999_999_999)
    assert view.header.frame_id == frame_id
    assert (view.height, view.width, view.encoding, view.step, view.is_bigendian) == \
        (msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian)
    np.testing.assert_array_equal(image_to_numpy(view), image)


def test_decoded_pixels_are_a_view_of_the_bytes():
    raw = serialize_message(numpy_to_image(_image('rgb8', 48, 64), 'rgb8', _header('c')))
    view = decode_image(raw)
    assert np.shares_memory(image_to_numpy(view), np.frombuffer(raw, np.uint8))
    assert not view.data.flags.writeable


def test_round_trip_keeps_padded_step_and_big_endian_flag():
    msg = numpy_to_image(_image('mono16', 3, 5).astype('>u2'), 'mono16', _header('x'))
    assert msg.is_bigendian == 1
    msg.step, msg.data = 12, bytes(range(36))  # two padding bytes per row
    view = decode_image(serialize_message(msg))
    assert (view.step, view.is_bigendian) == (12, 1)
    expected = np.frombuffer(bytes(range(36)), '>u2').reshape(3, 6)[:, :5]
    np.testing.assert_array_equal(image_to_numpy(view), expected)
    out = encode_image(expected.astype('>u2'), 'mono16', view.header)
    assert deserialize_message(out, Image).is_bigendian == 1
    np.testing.assert_array_equal(image_to_numpy(decode_image(out)), expected)


def test_big_endian_cdr_is_read():
    """A big-endian writer (representation id 0x0000): the same fields, swapped integers."""
    pixels = bytes(range(6))
    body = (struct.pack('>iI', 7, 8) + struct.pack('>I', 2) + b'f\x00' + b'\x00\x00'
            + struct.pack('>II', 1, 2) + struct.pack('>I', 6) + b'mono8\x00' + b'\x00'
            + b'\x00' + struct.pack('>II', 2, 2) + pixels[:2])
    view = decode_image(b'\x00\x00\x00\x00' + body)
    assert (view.header.stamp.sec, view.header.frame_id, view.height, view.width) == \
        (7, 'f', 1, 2)
    assert view.encoding == 'mono8' and view.data.tobytes() == pixels[:2]


def test_malformed_bytes_are_refused_with_the_reason():
    raw = serialize_message(numpy_to_image(_image('rgb8'), 'rgb8', _header('cam')))
    with pytest.raises(ImageConversionError, match='too short'):
        decode_image(raw[:3])
    with pytest.raises(ImageConversionError, match='representation id 0x0002'):
        decode_image(b'\x00\x02' + raw[2:])
    with pytest.raises(ImageConversionError, match='ends inside data'):
        decode_image(raw[:-1])
    with pytest.raises(ImageConversionError, match='ends inside header.frame_id'):
        decode_image(raw[:14])
    broken = bytearray(raw)
    broken[12 + 4 + 3] = ord('x')  # overwrite the NUL that ends 'cam'
    with pytest.raises(ImageConversionError, match='NUL-terminated'):
        decode_image(bytes(broken))


def test_short_pixel_data_decodes_and_is_refused_by_image_to_numpy():
    msg = numpy_to_image(_image('rgb8'), 'rgb8', _header('cam'))
    msg.data = msg.data[:10]
    view = decode_image(serialize_message(msg))
    with pytest.raises(ImageConversionError, match='fewer than height\\*step'):
        image_to_numpy(view)


def test_encode_refuses_an_array_that_does_not_match_the_encoding():
    with pytest.raises(ImageConversionError, match='does not match encoding'):
        encode_image(np.zeros((4, 4), np.uint16), 'mono8', _header(''))


def test_restamp_rewrites_only_the_stamp_as_rclpy_reads_it():
    msg = numpy_to_image(np.arange(24, dtype=np.uint8).reshape(2, 4, 3), 'rgb8')
    msg.header.frame_id = 'cam0_optical_frame'
    raw = bytearray(serialize_message(msg))
    restamp(raw, 1_795_000_000, 999_999_999)
    back = deserialize_message(bytes(raw), Image)
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == (1_795_000_000, 999_999_999)
    assert back.header.frame_id == 'cam0_optical_frame' and bytes(back.data) == bytes(msg.data)
    big = bytearray(raw)
    big[:4] = b'\x00\x00\x00\x00'  # big-endian CDR: the stamp would be written wrongly
    with pytest.raises(ImageConversionError, match='little-endian'):
        restamp(big, 1, 2)
