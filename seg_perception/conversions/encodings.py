"""Image encoding names of sensor_msgs/Image and their numpy layout, defined once.

The names and layouts follow sensor_msgs/image_encodings.hpp (as cv_bridge does): each
encoding maps to a numpy scalar type and a channel count.
"""  # noqa: A005 (the name the team contract uses)

from __future__ import annotations

from typing import NamedTuple

import numpy as np

RGB8 = 'rgb8'
BGR8 = 'bgr8'
RGBA8 = 'rgba8'
BGRA8 = 'bgra8'
RGB16 = 'rgb16'
BGR16 = 'bgr16'
RGBA16 = 'rgba16'
BGRA16 = 'bgra16'
MONO8 = 'mono8'
MONO16 = 'mono16'
YUV422 = 'yuv422'
TYPE_8UC1 = '8UC1'
TYPE_8UC3 = '8UC3'
TYPE_16UC1 = '16UC1'
TYPE_16SC1 = '16SC1'
TYPE_32SC1 = '32SC1'
TYPE_32FC1 = '32FC1'
TYPE_64FC1 = '64FC1'


class EncodingInfo(NamedTuple):
    """Numpy layout of one pixel of an encoding."""

    dtype: np.dtype
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        """Return the size of one pixel in bytes."""
        return self.dtype.itemsize * self.channels


def _build_table() -> dict[str, EncodingInfo]:
    """Return the encoding table: named colour formats plus the generic OpenCV-style names."""
    u8, u16 = np.dtype(np.uint8), np.dtype(np.uint16)
    table = {
        RGB8: EncodingInfo(u8, 3), BGR8: EncodingInfo(u8, 3),
        RGBA8: EncodingInfo(u8, 4), BGRA8: EncodingInfo(u8, 4),
        RGB16: EncodingInfo(u16, 3), BGR16: EncodingInfo(u16, 3),
        RGBA16: EncodingInfo(u16, 4), BGRA16: EncodingInfo(u16, 4),
        MONO8: EncodingInfo(u8, 1), MONO16: EncodingInfo(u16, 1),
        YUV422: EncodingInfo(u8, 2),
    }
    for pattern in ('rggb', 'bggr', 'gbrg', 'grbg'):
        table[f'bayer_{pattern}8'] = EncodingInfo(u8, 1)
        table[f'bayer_{pattern}16'] = EncodingInfo(u16, 1)
    generic = {'8U': np.uint8, '8S': np.int8, '16U': np.uint16, '16S': np.int16,
               '32S': np.int32, '32F': np.float32, '64F': np.float64}
    for prefix, scalar in generic.items():
        for channels in range(1, 5):
            table[f'{prefix}C{channels}'] = EncodingInfo(np.dtype(scalar), channels)
    return table


#: encoding name -> (numpy dtype in native byte order, channels)
ENCODINGS: dict[str, EncodingInfo] = _build_table()


class ImageConversionError(ValueError):
    """An image message or array that cannot be converted as asked.

    `reason` is a short token saying what was wrong ('step_too_small', 'data_too_short', ...):
    the nodes count refused frames in /diagnostics under it (None: not said).
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownEncodingError(ImageConversionError):
    """An encoding name this package does not know."""


def encoding_info(encoding: str) -> EncodingInfo:
    """Return the numpy layout of `encoding`, or raise naming the supported encodings."""
    try:
        return ENCODINGS[encoding]
    except KeyError:
        supported = ', '.join(sorted(ENCODINGS))
        raise UnknownEncodingError(
            f'unknown image encoding {encoding!r}; supported: {supported}',
            reason=f'unsupported_encoding:{encoding}') from None
