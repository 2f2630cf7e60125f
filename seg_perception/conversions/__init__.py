"""Conversions between ROS 2 sensor messages and numpy arrays (cv_bridge, sensor_msgs_py)."""

from __future__ import annotations

from seg_perception.conversions.compressed import compressed_to_numpy, numpy_to_compressed
from seg_perception.conversions.encodings import (
    encoding_info,
    EncodingInfo,
    ENCODINGS,
    ImageConversionError,
    UnknownEncodingError,
)
from seg_perception.conversions.image import image_to_numpy, numpy_to_image
from seg_perception.conversions.pointcloud2 import (
    array_to_pointcloud2,
    pack_rgb,
    pointcloud2_to_array,
    PointCloudConversionError,
    unpack_rgb,
    xyz_from_pointcloud2,
)

__all__ = [
    'ENCODINGS', 'EncodingInfo', 'ImageConversionError', 'PointCloudConversionError',
    'UnknownEncodingError', 'array_to_pointcloud2', 'compressed_to_numpy', 'encoding_info',
    'image_to_numpy', 'numpy_to_compressed', 'numpy_to_image', 'pack_rgb', 'pointcloud2_to_array',
    'unpack_rgb', 'xyz_from_pointcloud2',
]
