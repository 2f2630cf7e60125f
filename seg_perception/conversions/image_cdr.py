"""sensor_msgs/Image in its serialized (CDR) form: read without copying pixels, write in one copy.

rclpy hands a received Image to Python by copying the pixels twice (CDR -> C struct ->
array('B')) and copies them twice more to publish one. For the segmentation node's 640x480
frames that is ~1.2 ms of its 10 Hz latency on the project's CPU (docs/benchmarks.md). A
subscription created with `raw=True` gets the CDR bytes instead, and `Publisher.publish()`
takes CDR bytes, so:

- `decode_image(raw)` returns a `SerializedImage` with the Image fields; its `data` is a numpy
  view into `raw`, so `image_to_numpy()` works on it without a copy;
- `encode_image(array, encoding, header)` returns the CDR bytes of an Image, the same as
  `rclpy.serialization.serialize_message(numpy_to_image(...))` except for alignment padding,
  which rclpy leaves uninitialised and this writes as zeros (tested).

The layout is OMG CDR as rmw_fastrtps and rmw_cyclonedds write it: a 4-byte encapsulation
header (representation id, options), then the fields, each aligned to its size counted from
the end of the encapsulation header. Image has no 8-byte fields, so plain XCDR2 has the same
body; both byte orders are read.
"""

from __future__ import annotations

from dataclasses import dataclass
import struct
from typing import Any

import numpy as np

from seg_perception.conversions.encodings import ImageConversionError
from seg_perception.conversions.image import image_layout

__all__ = ['CdrStamp', 'CdrHeader', 'SerializedImage', 'decode_image', 'encode_image',
           'restamp']

# Representation ids (XTypes 7.6.3.1.2): CDR_BE, CDR_LE, PLAIN_CDR2_BE, PLAIN_CDR2_LE.
_BIG_ENDIAN_IDS = {0x0000, 0x0006}
_LITTLE_ENDIAN_IDS = {0x0001, 0x0007}
_ENCAPSULATION_LE = b'\x00\x01\x00\x00'
_HEADER_BYTES = 4


@dataclass(frozen=True)
class CdrStamp:
    """builtin_interfaces/Time as read from CDR."""

    sec: int
    nanosec: int


@dataclass(frozen=True)
class CdrHeader:
    """std_msgs/Header as read from CDR."""

    stamp: CdrStamp
    frame_id: str


@dataclass(frozen=True)
class SerializedImage:
    """The fields of a serialized sensor_msgs/Image; `data` views the serialized bytes."""

    header: CdrHeader
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray  # uint8, read-only, shares memory with the CDR buffer


class _Reader:
    """Read CDR primitives from a buffer, with alignment and bounds checks."""

    def __init__(self, raw: bytes | bytearray | memoryview) -> None:
        self.raw = raw
        self.size = len(raw)
        if self.size < _HEADER_BYTES:
            raise ImageConversionError(
                f'serialized Image has {self.size} bytes, too short for a CDR header',
                reason='cdr_too_short')
        representation = raw[0] << 8 | raw[1]
        if representation in _LITTLE_ENDIAN_IDS:
            self.order = '<'
        elif representation in _BIG_ENDIAN_IDS:
            self.order = '>'
        else:
            raise ImageConversionError(
                f'serialized Image has CDR representation id 0x{representation:04x}; expected '
                'plain CDR or XCDR2 (0x0000, 0x0001, 0x0006, 0x0007)',
                reason='cdr_representation')
        self.offset = _HEADER_BYTES

    def take(self, size: int, what: str) -> int:
        """Return the offset of the next `size` bytes and move past them."""
        start = self.offset
        if start + size > self.size:
            raise ImageConversionError(
                f'serialized Image ends inside {what}: needs bytes {start}..{start + size}, '
                f'has {self.size}', reason='cdr_truncated')
        self.offset = start + size
        return start

    def uint32(self, what: str, signed: bool = False) -> int:
        """Return the next 4-byte integer, aligned to 4 from the start of the body."""
        self.offset += -(self.offset - _HEADER_BYTES) % 4
        start = self.take(4, what)
        return struct.unpack_from(self.order + ('i' if signed else 'I'), self.raw, start)[0]

    def uint8(self, what: str) -> int:
        """Return the next byte."""
        return self.raw[self.take(1, what)]

    def string(self, what: str) -> str:
        """Return the next CDR text: a length that counts the NUL, the bytes, the NUL."""
        length = self.uint32(what)  # includes the terminating NUL
        start = self.take(length, what)
        if length == 0 or self.raw[start + length - 1] != 0:
            raise ImageConversionError(f'serialized Image: {what} is not a NUL-terminated string',
                                       reason='cdr_bad_string')
        try:
            return bytes(self.raw[start:start + length - 1]).decode('utf-8')
        except UnicodeDecodeError as exc:
            raise ImageConversionError(f'serialized Image: {what} is not UTF-8: {exc}',
                                       reason='cdr_bad_string') from exc


def decode_image(raw: bytes | bytearray | memoryview) -> SerializedImage:
    """Read a serialized sensor_msgs/Image; the pixel data stays in `raw` (a read-only view).

    Raises ImageConversionError when the bytes are not a complete Image. The pixel fields are
    not checked against each other here; `image_to_numpy()` does that.
    """
    reader = _Reader(raw)
    sec = reader.uint32('header.stamp.sec', signed=True)
    nanosec = reader.uint32('header.stamp.nanosec')
    frame_id = reader.string('header.frame_id')
    height = reader.uint32('height')
    width = reader.uint32('width')
    encoding = reader.string('encoding')
    is_bigendian = reader.uint8('is_bigendian')
    step = reader.uint32('step')
    count = reader.uint32('data length')
    start = reader.take(count, 'data')
    data = np.frombuffer(raw, dtype=np.uint8, count=count, offset=start)
    return SerializedImage(header=CdrHeader(CdrStamp(sec, nanosec), frame_id), height=height,
                           width=width, encoding=encoding, is_bigendian=is_bigendian, step=step,
                           data=data)


def _string(text: str, offset: int) -> tuple[bytes, int]:
    """Return the CDR bytes of a string starting at body offset `offset`, and the new offset."""
    encoded = text.encode('utf-8') + b'\x00'
    chunk = struct.pack('<I', len(encoded)) + encoded
    return chunk, offset + len(chunk)


def encode_image(image: np.ndarray, encoding: str, header: Any) -> bytes:
    """Return the little-endian CDR bytes of an Image holding `image` (checked as numpy_to_image).

    `header` is anything with `stamp.sec`, `stamp.nanosec` and `frame_id` (a std_msgs Header or
    a CdrHeader). The pixels are copied once, into the returned bytes.
    """
    height, width, step, big_endian = image_layout(image, encoding)
    frame_id, offset = _string(header.frame_id, 8)
    parts = [_ENCAPSULATION_LE, struct.pack('<iI', header.stamp.sec, header.stamp.nanosec),
             frame_id]
    pad = -offset % 4
    encoding_bytes, offset = _string(encoding, offset + pad + 8)
    parts += [b'\x00' * pad, struct.pack('<II', height, width), encoding_bytes,
              bytes([int(big_endian)])]
    offset += 1
    pad = -offset % 4
    pixels = np.ascontiguousarray(image)
    parts += [b'\x00' * pad, struct.pack('<II', step, pixels.nbytes),
              memoryview(pixels.reshape(-1).view(np.uint8))]
    return b''.join(parts)


def restamp(raw: bytearray, sec: int, nanosec: int) -> None:
    """Rewrite the header stamp of a serialized stamped message in place (no re-encoding).

    The stamp is the first field of any message that starts with a std_msgs/Header, so a
    publisher that sends the same frame repeatedly (a benchmark, a test pattern) can encode it
    once and only restamp it. Raises ImageConversionError for anything but little-endian CDR.
    """
    if bytes(raw[:_HEADER_BYTES]) not in (_ENCAPSULATION_LE, b'\x00\x07\x00\x00'):
        raise ImageConversionError('restamp needs little-endian CDR (encapsulation 00 01 or '
                                   f'00 07), got {bytes(raw[:_HEADER_BYTES]).hex(" ")}')
    struct.pack_into('<iI', raw, _HEADER_BYTES, sec, nanosec)
