"""Convert sensor_msgs/Image messages to numpy arrays and back (what cv_bridge does).

`image_to_numpy` returns views on the message's buffer where it can (no copy), so a 640x480
colour frame costs microseconds; the view shares memory with the message, copy it before
mutating if the message is still used elsewhere.
"""

from __future__ import annotations

import array
import sys
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.conversions.encodings import (
    encoding_info,
    ImageConversionError,
    UnknownEncodingError,
)

__all__ = ['ImageConversionError', 'UnknownEncodingError', 'image_layout', 'image_to_numpy',
           'numpy_to_image', 'message_buffer']

_NATIVE_BIG_ENDIAN = sys.byteorder == 'big'


def message_buffer(data: Any) -> np.ndarray:
    """Return a uint8[] message field (bytes, array.array, ndarray, list) as a flat uint8 array.

    Buffer-protocol objects are viewed without a copy; a Python list is copied.
    """
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError as exc:
        raise ImageConversionError(
            f'image data of type {type(data).__name__} is not a byte buffer',
            reason='data_not_bytes') from exc


def image_to_numpy(msg: Any) -> np.ndarray:
    """Return the pixels of an Image message as (H, W) or (H, W, C) in native byte order.

    Works with rclpy and rosbags Image objects alike. Row padding (`step` larger than a packed
    row) gives a strided view; big-endian multi-byte data is byte-swapped into a copy.
    """
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(
            f'image has zero size: height={height}, width={width} (encoding {msg.encoding!r})',
            reason='zero_size')
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f'image step {step} is smaller than width*bytes_per_pixel = {width}*'
            f'{info.bytes_per_pixel} = {row_bytes} for encoding {msg.encoding!r}',
            reason='step_too_small')
    buffer = message_buffer(msg.data)
    if buffer.size < height * step:
        raise ImageConversionError(
            f'image data has {buffer.size} bytes, fewer than height*step = {height}*{step} = '
            f'{height * step} (encoding {msg.encoding!r}, {width}x{height})',
            reason='data_too_short')
    dtype = info.dtype.newbyteorder('>' if msg.is_bigendian else '<')
    shape: tuple[int, ...] = (height, width, info.channels)
    strides: tuple[int, ...] = (step, info.bytes_per_pixel, info.dtype.itemsize)
    if info.channels == 1:
        shape, strides = shape[:2], strides[:2]
    image = np.ndarray(shape=shape, dtype=dtype, buffer=buffer, offset=0, strides=strides)
    if info.dtype.itemsize > 1 and bool(msg.is_bigendian) != _NATIVE_BIG_ENDIAN:
        image = image.astype(info.dtype)  # byte-swapping copy into native order
    return image


def _byte_array(contiguous: np.ndarray) -> array.array:
    """Copy a C-contiguous array's bytes into array('B'), the type rclpy keeps without copying."""
    data = array.array('B')
    data.frombytes(contiguous.reshape(-1).view(np.uint8).data)
    return data


def image_layout(image: np.ndarray, encoding: str) -> tuple[int, int, int, bool]:
    """Check `image` against `encoding`; return (height, width, step, is_bigendian).

    The array's dtype and channel count must match the encoding exactly (as cv_bridge
    requires); a non-native byte order is kept and reported as big-endian where it is.
    """
    info = encoding_info(encoding)
    if not isinstance(image, np.ndarray):
        raise ImageConversionError(f'expected a numpy array, got {type(image).__name__}')
    if image.ndim == 2:
        channels = 1
    elif image.ndim == 3:
        channels = image.shape[2]
    else:
        raise ImageConversionError(
            f'expected an (H, W) or (H, W, C) array for {encoding!r}, got shape {image.shape}')
    if channels != info.channels or image.dtype.base.newbyteorder('=') != info.dtype:
        raise ImageConversionError(
            f'array of dtype {image.dtype} with {channels} channel(s) does not match encoding '
            f'{encoding!r} ({info.dtype}, {info.channels} channel(s))')
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(f'image has zero size: shape {image.shape}')
    order = image.dtype.byteorder
    big_endian = order == '>' or (order == '=' and _NATIVE_BIG_ENDIAN)
    return (int(height), int(width), int(width * info.bytes_per_pixel),
            big_endian and info.dtype.itemsize > 1)


def numpy_to_image(image: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Return an Image message holding `image`, checked against `encoding` (`image_layout`)."""
    height, width, step, big_endian = image_layout(image, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = int(big_endian)
    msg.step = step
    msg.data = _byte_array(np.ascontiguousarray(image))
    return msg
