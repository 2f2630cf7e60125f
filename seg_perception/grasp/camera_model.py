"""Pinhole camera intrinsics taken from a sensor_msgs/CameraInfo (P first, K as fallback)."""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence

import numpy as np


class InvalidCameraInfoError(ValueError):
    """Raised when CameraInfo intrinsics or sizes cannot describe a pinhole camera."""


#: Largest focal length accepted, pixels (a 1e6 px focal length is a 0.03 degree field of view).
MAX_FOCAL_PX = 1e6


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of a rectified pinhole camera for one image size (REP 103 optical frame)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ('fx', 'fy', 'cx', 'cy'):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise InvalidCameraInfoError(f'{name}={value} is not finite')
        if self.fx <= 0.0 or self.fy <= 0.0:
            raise InvalidCameraInfoError(
                f'focal lengths must be positive, got fx={self.fx}, fy={self.fy}')
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise InvalidCameraInfoError(
                f'image size must be positive, got width={self.width}, height={self.height}')
        if self.fx > MAX_FOCAL_PX or self.fy > MAX_FOCAL_PX:
            raise InvalidCameraInfoError(
                f'focal lengths fx={self.fx}, fy={self.fy} exceed {MAX_FOCAL_PX:.0e} px: not a '
                'real camera (the back-projection would overflow or collapse to a point)')
        if not (-self.width <= self.cx <= 2 * self.width
                and -self.height <= self.cy <= 2 * self.height):
            raise InvalidCameraInfoError(
                f'principal point ({self.cx}, {self.cy}) lies far outside the '
                f'{self.width}x{self.height} image')

    @classmethod
    def from_camera_info(cls, k: Sequence[float], p: Sequence[float], width: int,
                         height: int) -> 'PinholeCamera':
        """Build from CameraInfo fields: P like depth_image_proc, K when P is all zero."""
        k_arr = np.asarray(k, dtype=np.float64).reshape(-1)
        p_arr = np.asarray(p, dtype=np.float64).reshape(-1)
        if k_arr.size != 9:
            raise InvalidCameraInfoError(f'K must have 9 values, got {k_arr.size}')
        if p_arr.size != 12:
            raise InvalidCameraInfoError(f'P must have 12 values, got {p_arr.size}')
        if int(width) <= 0 or int(height) <= 0:
            raise InvalidCameraInfoError(
                f'CameraInfo size must be positive, got width={width}, height={height}')
        # P holds the intrinsics of the rectified image, which is what depth images carry.
        for name, fx, fy, cx, cy in (('P', p_arr[0], p_arr[5], p_arr[2], p_arr[6]),
                                     ('K', k_arr[0], k_arr[4], k_arr[2], k_arr[5])):
            values = (fx, fy, cx, cy)
            if all(math.isfinite(v) for v in values) and fx > 0.0 and fy > 0.0:
                return cls(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy),
                           width=int(width), height=int(height))
        raise InvalidCameraInfoError(
            'CameraInfo has no usable intrinsics: P and K both have zero or non-finite focal '
            f'lengths (P fx={p_arr[0]}, fy={p_arr[5]}; K fx={k_arr[0]}, fy={k_arr[4]}); '
            'is the camera calibrated?')

    @classmethod
    def from_matrix(cls, k: np.ndarray, width: int, height: int) -> 'PinholeCamera':
        """Build from a (3, 3) intrinsic matrix such as a synthetic frame's K."""
        k_arr = np.asarray(k, dtype=np.float64)
        if k_arr.shape != (3, 3):
            raise InvalidCameraInfoError(f'K must be 3x3, got shape {k_arr.shape}')
        return cls(fx=float(k_arr[0, 0]), fy=float(k_arr[1, 1]), cx=float(k_arr[0, 2]),
                   cy=float(k_arr[1, 2]), width=int(width), height=int(height))

    @property
    def size(self) -> tuple[int, int]:
        """Return (width, height) in pixels."""
        return int(self.width), int(self.height)

    @property
    def matrix(self) -> np.ndarray:
        """Return the (3, 3) float64 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> 'PinholeCamera':
        """Return the intrinsics of the same camera for an image resized to width x height.

        Pixel centres are kept aligned (cv2.resize's convention): c' = (c + 0.5) * s - 0.5.
        """
        if int(width) <= 0 or int(height) <= 0:
            raise InvalidCameraInfoError(
                f'scaled size must be positive, got width={width}, height={height}')
        if (int(width), int(height)) == self.size:
            return self
        sx = int(width) / self.width
        sy = int(height) / self.height
        return PinholeCamera(fx=self.fx * sx, fy=self.fy * sy, cx=(self.cx + 0.5) * sx - 0.5,
                             cy=(self.cy + 0.5) * sy - 0.5, width=int(width), height=int(height))
