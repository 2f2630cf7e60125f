"""Build rosbags message objects (Header, Image, CameraInfo) from numpy data, for bag writing."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from rosbags.typesys.store import Typestore

from seg_perception.conversions.encodings import encoding_info, ImageConversionError

__all__ = ['camera_info_message', 'header_message', 'image_message']


def header_message(typestore: Typestore, stamp_ns: int, frame_id: str) -> Any:
    """Return a std_msgs/msg/Header with a stamp in nanoseconds."""
    time_type = typestore.types['builtin_interfaces/msg/Time']
    header_type = typestore.types['std_msgs/msg/Header']
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return header_type(stamp=time_type(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_message(typestore: Typestore, image: np.ndarray, encoding: str, stamp_ns: int,
                  frame_id: str) -> Any:
    """Return a sensor_msgs/msg/Image of a native-order array matching `encoding`."""
    info = encoding_info(encoding)
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else -1
    if channels != info.channels or image.dtype != info.dtype:
        raise ImageConversionError(
            f'array of dtype {image.dtype} and shape {image.shape} does not match encoding '
            f'{encoding!r} ({info.dtype}, {info.channels} channel(s))')
    height, width = image.shape[:2]
    image_type = typestore.types['sensor_msgs/msg/Image']
    return image_type(
        header=header_message(typestore, stamp_ns, frame_id), height=height, width=width,
        encoding=encoding, is_bigendian=int(sys.byteorder == 'big'),
        step=width * info.bytes_per_pixel,
        data=np.ascontiguousarray(image).reshape(-1).view(np.uint8))


def camera_info_message(typestore: Typestore, K: np.ndarray, width: int, height: int,
                        stamp_ns: int, frame_id: str) -> Any:
    """Return a sensor_msgs/msg/CameraInfo of an undistorted pinhole camera (plumb_bob, D=0)."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f'intrinsics K must be 3x3, got shape {K.shape}')
    projection = np.zeros((3, 4))
    projection[:, :3] = K
    roi_type = typestore.types['sensor_msgs/msg/RegionOfInterest']
    info_type = typestore.types['sensor_msgs/msg/CameraInfo']
    return info_type(
        header=header_message(typestore, stamp_ns, frame_id), height=int(height),
        width=int(width), distortion_model='plumb_bob', d=np.zeros(5), k=K.reshape(-1),
        r=np.eye(3).reshape(-1), p=projection.reshape(-1), binning_x=0, binning_y=0,
        roi=roi_type(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
