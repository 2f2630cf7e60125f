"""Convert sensor_msgs/PointCloud2 messages to structured numpy arrays and back.

A structured dtype describes one point: field names, scalar types and byte offsets map 1:1
to PointField entries, and the dtype's itemsize is the point_step (padding included), as in
sensor_msgs_py.point_cloud2.
"""

from __future__ import annotations

import array
import sys
from typing import Any, Sequence

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from seg_perception.conversions.image import message_buffer

__all__ = ['PointCloudConversionError', 'array_to_pointcloud2', 'pointcloud2_to_array',
           'xyz_from_pointcloud2', 'pack_rgb', 'unpack_rgb', 'dtype_from_fields',
           'fields_from_dtype']

#: PointField datatype constant -> numpy scalar type
POINTFIELD_TO_DTYPE: dict[int, np.dtype] = {
    PointField.INT8: np.dtype(np.int8), PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16), PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32), PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32), PointField.FLOAT64: np.dtype(np.float64),
}
DTYPE_TO_POINTFIELD: dict[np.dtype, int] = {v: k for k, v in POINTFIELD_TO_DTYPE.items()}

_NATIVE_BIG_ENDIAN = sys.byteorder == 'big'


class PointCloudConversionError(ValueError):
    """A PointCloud2 message or structured array that cannot be converted."""


def fields_from_dtype(dtype: np.dtype) -> list[PointField]:
    """Return the PointFields describing a structured dtype (subarray fields give count > 1)."""
    if dtype.names is None:
        raise PointCloudConversionError(f'expected a structured dtype, got {dtype}')
    fields = []
    for name in dtype.names:
        field_dtype, offset = dtype.fields[name][:2]
        count = 1
        if field_dtype.subdtype is not None:
            field_dtype, shape = field_dtype.subdtype
            count = int(np.prod(shape))
        scalar = field_dtype.newbyteorder('=')
        if scalar not in DTYPE_TO_POINTFIELD:
            supported = ', '.join(str(d) for d in DTYPE_TO_POINTFIELD)
            raise PointCloudConversionError(
                f'field {name!r} has unsupported type {field_dtype}; supported: {supported}')
        fields.append(PointField(name=name, offset=int(offset),
                                 datatype=DTYPE_TO_POINTFIELD[scalar], count=count))
    return fields


def dtype_from_fields(fields: Sequence[Any], point_step: int, *,
                      big_endian: bool = False) -> np.dtype:
    """Return the structured dtype of PointFields; count > 1 gives fields name_0, name_1, ..."""
    names, formats, offsets = [], [], []
    for index, field in enumerate(fields):
        if field.datatype not in POINTFIELD_TO_DTYPE:
            raise PointCloudConversionError(
                f'field {field.name!r} has unknown PointField datatype {field.datatype}')
        scalar = POINTFIELD_TO_DTYPE[field.datatype].newbyteorder('>' if big_endian else '<')
        name = field.name or f'unnamed_field_{index}'
        count = int(field.count)
        for element in range(count):
            names.append(name if count == 1 else f'{name}_{element}')
            formats.append(scalar)
            offsets.append(int(field.offset) + element * scalar.itemsize)
        if count and offsets[-1] + scalar.itemsize > point_step:
            raise PointCloudConversionError(
                f'field {field.name!r} (offset {field.offset}, {count} x {scalar}) does not fit '
                f'in point_step {point_step}')
    try:
        return np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                         'itemsize': point_step})
    except ValueError as exc:
        raise PointCloudConversionError(f'invalid PointCloud2 fields: {exc}') from exc


def array_to_pointcloud2(points: np.ndarray, header: Header | None = None, *,
                         organized_shape: tuple[int, int] | None = None) -> PointCloud2:
    """Return a PointCloud2 of a structured array (offsets and padding kept as in its dtype).

    An (H, W) array, or `organized_shape=(H, W)`, gives an organized cloud; otherwise height 1.
    is_dense is True when no x, y or z value is NaN/inf (fields that are present).
    """
    if not isinstance(points, np.ndarray) or points.dtype.names is None:
        raise PointCloudConversionError(
            'expected a structured numpy array (dtype with named fields), got '
            f'{getattr(points, "dtype", type(points).__name__)}')
    fields = fields_from_dtype(points.dtype)
    if organized_shape is not None:
        height, width = (int(v) for v in organized_shape)
        if height * width != points.size or height <= 0 or width <= 0:
            raise PointCloudConversionError(
                f'organized_shape {organized_shape} does not hold {points.size} points')
    elif points.ndim == 2:
        height, width = points.shape
    elif points.ndim == 1:
        height, width = 1, points.shape[0]
    else:
        raise PointCloudConversionError(
            f'expected a 1-D or 2-D structured array, got shape {points.shape}')
    orders = {points.dtype.fields[n][0].base.byteorder for n in points.dtype.names} - {'|', '='}
    if len(orders) > 1:
        raise PointCloudConversionError(f'fields of {points.dtype} mix byte orders')
    big_endian = orders == {'>'} or (not orders and _NATIVE_BIG_ENDIAN)
    flat = np.ascontiguousarray(points).reshape(-1)
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(height), int(width)
    msg.fields = fields
    msg.is_bigendian = bool(big_endian)
    msg.point_step = int(points.dtype.itemsize)
    msg.row_step = int(points.dtype.itemsize * width)
    msg.is_dense = _is_dense(flat)
    data = array.array('B')
    data.frombytes(flat.view(np.uint8).data)
    msg.data = data
    return msg


def _is_dense(points: np.ndarray) -> bool:
    """Return whether every present x/y/z value is finite."""
    for name in ('x', 'y', 'z'):
        if name in points.dtype.names and points.dtype[name].kind == 'f':
            if not np.isfinite(points[name]).all():
                return False
    return True


def pointcloud2_to_array(msg: Any) -> np.ndarray:
    """Return the points as a structured array: (H, W) for organized clouds, else (W,).

    Honours field offsets, point_step padding, row_step padding and is_bigendian (swapped to
    native order). Without row padding or byte swapping the result is a view on msg.data.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    if not msg.fields:
        raise PointCloudConversionError('PointCloud2 has no fields')
    if point_step <= 0:
        raise PointCloudConversionError(f'PointCloud2 point_step is {point_step}')
    if row_step < width * point_step:
        raise PointCloudConversionError(
            f'PointCloud2 row_step {row_step} < width*point_step = {width}*{point_step}')
    dtype = dtype_from_fields(msg.fields, point_step, big_endian=bool(msg.is_bigendian))
    buffer = message_buffer(msg.data)
    needed = row_step * (height - 1) + width * point_step if height * width else 0
    if buffer.size < needed:
        raise PointCloudConversionError(
            f'PointCloud2 data has {buffer.size} bytes, fewer than the {needed} that '
            f'{height}x{width} points with row_step {row_step} need')
    if height * width == 0:
        points = np.zeros((height, width) if height > 1 else (width,), dtype=dtype)
    else:
        points = np.ndarray(shape=(height, width), dtype=dtype, buffer=buffer,
                            strides=(row_step, point_step))
        if height == 1:
            points = points[0]
    if bool(msg.is_bigendian) != _NATIVE_BIG_ENDIAN:
        points = points.astype(dtype.newbyteorder('='))
    return points


def xyz_from_pointcloud2(msg: Any, *, skip_nans: bool = True,
                         dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Return the x, y, z fields as an (N, 3) array; drop points with a non-finite coordinate."""
    points = pointcloud2_to_array(msg).reshape(-1)
    missing = [n for n in ('x', 'y', 'z') if n not in points.dtype.names]
    if missing:
        raise PointCloudConversionError(
            f'PointCloud2 lacks field(s) {missing}; it has {list(points.dtype.names)}')
    xyz = np.empty((points.size, 3), dtype=dtype)
    xyz[:, 0], xyz[:, 1], xyz[:, 2] = points['x'], points['y'], points['z']
    if skip_nans:
        xyz = xyz[np.isfinite(xyz).all(axis=1)]
    return xyz


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Return (N, 3) uint8 colours as float32 holding 0x00RRGGBB bits (PCL/RViz 'rgb' field)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1:] != (3,):
        raise PointCloudConversionError(
            f'expected (..., 3) uint8 colours, got dtype {rgb.dtype} shape {rgb.shape}')
    packed = ((rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
              | rgb[..., 2].astype(np.uint32))
    return packed.view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Return (..., 3) uint8 colours from float32 (or uint32) 0x00RRGGBB values."""
    bits = np.ascontiguousarray(packed).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF],
                    axis=-1).astype(np.uint8)
