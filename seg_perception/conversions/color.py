"""Bring decoded camera images to the RGB uint8 layout the segmentation engine expects."""

from __future__ import annotations

import numpy as np

from seg_perception.conversions.encodings import ImageConversionError

# encoding -> channel order to take from the decoded array (None = grey, replicate).
_RGB_ORDER = {'rgb8': (0, 1, 2), 'bgr8': (2, 1, 0), 'rgba8': (0, 1, 2), 'bgra8': (2, 1, 0),
              '8UC3': (2, 1, 0), 'mono8': None, '8UC1': None}


def as_rgb8(image: np.ndarray, encoding: str) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB view or copy of a decoded colour or grey image.

    rgb8 passes through without a copy; 8UC3 is taken as BGR (OpenCV's habit, like cv_bridge).
    """
    if encoding not in _RGB_ORDER:
        raise ImageConversionError(
            f'encoding {encoding!r} is not a colour image; expected one of {sorted(_RGB_ORDER)}',
            reason=f'unsupported_encoding:{encoding}')
    if image.dtype != np.uint8:
        raise ImageConversionError(f'{encoding} image must be uint8, got {image.dtype}',
                                   reason='not_uint8')
    order = _RGB_ORDER[encoding]
    if order is None:
        grey = image.reshape(image.shape[0], image.shape[1])
        return np.repeat(grey[:, :, None], 3, axis=2)
    if order == (0, 1, 2) and image.shape[2] == 3:
        return image
    return image[:, :, list(order)]
