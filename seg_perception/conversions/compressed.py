"""Convert sensor_msgs/CompressedImage (jpeg, png) to numpy arrays and back.

The `format` string follows image_transport's compressed plugin: '<encoding>; <jpeg|png>
compressed <bgr8|mono8|...>' (plain 'jpeg' / 'png' is accepted too). Arrays are RGB ordered,
as everywhere in this project; OpenCV's BGR order stays inside this module.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from seg_perception.conversions.encodings import (
    BGR8,
    BGRA8,
    ImageConversionError,
    MONO16,
    MONO8,
    RGB8,
    RGBA8,
)
from seg_perception.conversions.image import message_buffer

__all__ = ['compressed_image_size', 'compressed_to_numpy', 'numpy_to_compressed',
           'COMPRESSED_FORMATS', 'PASSTHROUGH']

#: compression formats understood by `numpy_to_compressed`
COMPRESSED_FORMATS = ('jpeg', 'png')
#: `desired` value that returns the decoded pixels in the order OpenCV gives (BGR or mono)
PASSTHROUGH = 'passthrough'

_DECODED_TO_DESIRED = {
    # (decoded channels, desired) -> cv2 conversion code or None for no conversion
    (3, RGB8): cv2.COLOR_BGR2RGB, (3, BGR8): None, (3, MONO8): cv2.COLOR_BGR2GRAY,
    (3, RGBA8): cv2.COLOR_BGR2RGBA, (3, BGRA8): cv2.COLOR_BGR2BGRA,
    (4, RGB8): cv2.COLOR_BGRA2RGB, (4, BGR8): cv2.COLOR_BGRA2BGR, (4, MONO8): cv2.COLOR_BGRA2GRAY,
    (4, RGBA8): cv2.COLOR_BGRA2RGBA, (4, BGRA8): None,
    (1, RGB8): cv2.COLOR_GRAY2RGB, (1, BGR8): cv2.COLOR_GRAY2BGR, (1, MONO8): None,
    (1, RGBA8): cv2.COLOR_GRAY2RGBA, (1, BGRA8): cv2.COLOR_GRAY2BGRA,
}


def compressed_image_size(data: Any) -> tuple[int, int] | None:
    """Return (width, height) announced by a PNG or JPEG header, None for other data.

    Read before decoding, so that a 249 kB PNG announcing 16000x16000 pixels (a decompression
    bomb: 768 MB of pixels) can be refused without allocating them.
    """
    head = bytes(memoryview(data)[:65536])
    if head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR' and len(head) >= 24:
        return int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')
    if head[:2] != b'\xff\xd8':
        return None
    pos = 2
    while pos + 9 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(head[pos + 2:pos + 4], 'big')
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF):   # start of frame: precision, height, width
            return (int.from_bytes(head[pos + 7:pos + 9], 'big'),
                    int.from_bytes(head[pos + 5:pos + 7], 'big'))
        pos += 2 + length
    return None


def compressed_to_numpy(msg: Any, desired: str = RGB8, *,
                        max_pixels: int | None = None) -> np.ndarray:
    """Decode a jpeg/png CompressedImage into `desired` ('rgb8', 'bgr8', 'mono8', 'mono16', ...).

    'passthrough' returns what the codec holds (BGR(A), mono8 or mono16). With `max_pixels`, an
    image whose header announces more pixels is refused before decoding.
    """
    buffer = message_buffer(msg.data)
    if buffer.size == 0:
        raise ImageConversionError(f'compressed image ({msg.format!r}) has no data',
                                   reason='no_data')
    if max_pixels is not None:
        size = compressed_image_size(buffer)
        if size is not None and size[0] * size[1] > max_pixels:
            raise ImageConversionError(
                f'too_many_pixels: compressed image announces {size[0]}x{size[1]} = '
                f'{size[0] * size[1]} pixels, over max_input_pixels {max_pixels}',
                reason='too_many_pixels')
    decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageConversionError(
            f'cannot decode compressed image with format {msg.format!r} ({buffer.size} bytes)',
            reason='undecodable')
    if desired == PASSTHROUGH:
        return decoded
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    if desired == MONO16:
        if decoded.dtype != np.uint16 or channels != 1:
            raise ImageConversionError(
                f'cannot give mono16 from a {channels}-channel {decoded.dtype} image '
                f'({msg.format!r})')
        return decoded
    if decoded.dtype != np.uint8:
        decoded = (decoded >> 8).astype(np.uint8)  # 16-bit png to 8-bit, as cv_bridge scales
    key = (channels, desired)
    if key not in _DECODED_TO_DESIRED:
        supported = ', '.join(sorted({RGB8, BGR8, RGBA8, BGRA8, MONO8, MONO16, PASSTHROUGH}))
        raise ImageConversionError(
            f'cannot convert a {channels}-channel compressed image to {desired!r}; '
            f'supported: {supported}')
    code = _DECODED_TO_DESIRED[key]
    return decoded if code is None else cv2.cvtColor(decoded, code)


def _infer_encoding(image: np.ndarray) -> str:
    """Return the encoding an RGB-ordered array most likely holds."""
    if image.dtype == np.uint8 and image.ndim == 2:
        return MONO8
    if image.dtype == np.uint16 and image.ndim == 2:
        return MONO16
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (3, 4):
        return RGB8 if image.shape[2] == 3 else RGBA8
    raise ImageConversionError(
        f'cannot compress an array of dtype {image.dtype} and shape {image.shape}; expected '
        '(H, W, 3|4) uint8, (H, W) uint8 or (H, W) uint16')


def numpy_to_compressed(image: np.ndarray, fmt: str = 'jpeg', *, encoding: str | None = None,
                        header: Header | None = None, jpeg_quality: int = 90) -> CompressedImage:
    """Return a CompressedImage of an RGB(A)/mono array; encoding is inferred when None."""
    if fmt not in COMPRESSED_FORMATS:
        raise ImageConversionError(
            f'unknown compression format {fmt!r}; supported: {", ".join(COMPRESSED_FORMATS)}')
    if not isinstance(image, np.ndarray):
        raise ImageConversionError(f'expected a numpy array, got {type(image).__name__}')
    encoding = encoding or _infer_encoding(image)
    to_bgr = {RGB8: (cv2.COLOR_RGB2BGR, BGR8), BGR8: (None, BGR8), MONO8: (None, MONO8),
              MONO16: (None, MONO16), RGBA8: (cv2.COLOR_RGBA2BGRA, BGRA8),
              BGRA8: (None, BGRA8)}
    if encoding not in to_bgr:
        raise ImageConversionError(
            f'cannot compress encoding {encoding!r}; supported: {", ".join(sorted(to_bgr))}')
    if encoding != _infer_encoding(image) and {encoding, _infer_encoding(image)} not in (
            {RGB8, BGR8}, {RGBA8, BGRA8}):
        raise ImageConversionError(
            f'array of dtype {image.dtype} and shape {image.shape} does not hold {encoding!r}')
    if fmt == 'jpeg' and encoding in (MONO16, RGBA8, BGRA8):
        raise ImageConversionError(f'jpeg cannot hold {encoding!r}; use png')
    code, compressed_as = to_bgr[encoding]
    pixels = image if code is None else cv2.cvtColor(image, code)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == 'jpeg' else []
    ok, encoded = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', pixels, params)
    if not ok:
        raise ImageConversionError(f'OpenCV failed to encode a {image.shape} image as {fmt}')
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = f'{encoding}; {fmt} compressed {compressed_as}'
    msg.data = encoded.tobytes()
    return msg
