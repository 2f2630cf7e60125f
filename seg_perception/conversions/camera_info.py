"""Intrinsics of a CameraInfo for an image of another size (what image_proc's resize does)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ['CameraInfoScaleError', 'scaled_intrinsics']


class CameraInfoScaleError(ValueError):
    """A CameraInfo whose K/P cannot be carried to another image size; `reason` says why."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def scaled_intrinsics(k: Sequence[float], p: Sequence[float], size: tuple[int, int],
                      new_size: tuple[int, int]) -> tuple[list[float], list[float]]:
    """Return (K, P) of a camera calibrated at `size` (width, height) for an image at `new_size`.

    Pixel centres stay aligned (cv2.resize's convention: c' = (c + 0.5) * s - 0.5), so a label
    image resized from the camera image lines up with it; P's Tx/Ty terms scale with fx/fy.
    """
    k_arr = np.asarray(k, dtype=np.float64).reshape(-1)
    p_arr = np.asarray(p, dtype=np.float64).reshape(-1)
    if k_arr.size != 9 or p_arr.size != 12:
        raise CameraInfoScaleError(f'CameraInfo K has {k_arr.size} values and P {p_arr.size}; '
                                   'expected 9 and 12', reason='matrix_size')
    (width, height), (new_width, new_height) = size, new_size
    if (width, height) == (new_width, new_height):
        return k_arr.tolist(), p_arr.tolist()
    if width <= 0 or height <= 0:
        raise CameraInfoScaleError(f'CameraInfo size is {width}x{height}: cannot scale its '
                                   f'intrinsics to {new_width}x{new_height}', reason='zero_size')
    sx, sy = new_width / width, new_height / height
    scale = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return ((scale @ k_arr.reshape(3, 3)).reshape(-1).tolist(),
            (scale @ p_arr.reshape(3, 4)).reshape(-1).tolist())
