"""Tests for sensor_msgs/PointCloud2 <-> structured numpy conversion."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from seg_perception.conversions.pointcloud2 import (
    array_to_pointcloud2,
    pack_rgb,
    pointcloud2_to_array,
    PointCloudConversionError,
    unpack_rgb,
    xyz_from_pointcloud2,
)

MIXED = np.dtype({
    'names': ['x', 'y', 'z', 'rgb', 'label', 'instance', 'score', 'flags', 'ring', 'id', 'rng'],
    'formats': [np.float32, np.float32, np.float32, np.float32, np.uint8, np.uint16, np.float64,
                np.int8, np.int16, np.uint32, np.int32],
    'offsets': [0, 4, 8, 16, 20, 22, 24, 32, 34, 36, 40],
    'itemsize': 48,  # padding after y..z (12..16) and at the end (44..48), like PCL's PointXYZRGB
})


def _points(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = np.zeros(count, dtype=MIXED)
    for name in MIXED.names:
        kind = MIXED[name]
        if kind.kind == 'f':
            points[name] = rng.normal(size=count)
        else:
            info = np.iinfo(kind)
            points[name] = rng.integers(info.min, info.max, size=count, endpoint=True)
    return points


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Compare field by field bit-exactly (padding bytes are undefined)."""
    return a.shape == b.shape and all(
        np.ascontiguousarray(a[n]).tobytes() == np.ascontiguousarray(b[n]).tobytes()
        for n in a.dtype.names)


def test_unorganized_round_trip_mixed_fields_with_padding():
    points = _points(50)
    msg = array_to_pointcloud2(points, Header(frame_id='camera'))
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 50, 48, 48 * 50)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields][:5] == [
        ('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
        ('z', 8, PointField.FLOAT32, 1), ('rgb', 16, PointField.FLOAT32, 1),
        ('label', 20, PointField.UINT8, 1)]
    assert msg.is_dense and msg.header.frame_id == 'camera'
    back = pointcloud2_to_array(msg)
    assert back.dtype == MIXED and _equal(back, points)


def test_organized_round_trip_with_nans():
    points = _points(12, seed=1).reshape(3, 4)
    points['z'][1, 2] = np.nan
    msg = array_to_pointcloud2(points)
    assert (msg.height, msg.width, msg.row_step) == (3, 4, 4 * 48) and not msg.is_dense
    back = pointcloud2_to_array(msg)
    assert back.shape == (3, 4) and _equal(back, points)
    flat = array_to_pointcloud2(points.reshape(-1), organized_shape=(3, 4))
    assert (flat.height, flat.width) == (3, 4) and bytes(flat.data) == bytes(msg.data)


def test_row_step_padding_and_big_endian_are_honoured():
    dtype = np.dtype({'names': ['x', 'y', 'z', 'intensity'],
                      'formats': ['>f4', '>f4', '>f4', '>u2'], 'offsets': [0, 4, 8, 14],
                      'itemsize': 16})
    points = np.zeros((2, 3), dtype=dtype)
    points['x'] = np.arange(6).reshape(2, 3)
    points['intensity'] = np.arange(6).reshape(2, 3) * 1000 + 7
    rows = np.full((2, 3 * 16 + 8), 0xEE, np.uint8)  # 8 bytes of padding per row
    rows[:, :48] = points.view(np.uint8).reshape(2, 48)
    fields = [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in
              [('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('intensity', 14, 4)]]
    msg = PointCloud2(height=2, width=3, fields=fields, is_bigendian=True, point_step=16,
                      row_step=56, is_dense=True)
    msg.data = rows.tobytes()
    back = pointcloud2_to_array(msg)
    assert back.dtype['x'].isnative
    np.testing.assert_array_equal(back['x'], points['x'])
    np.testing.assert_array_equal(back['intensity'], points['intensity'])
    out = array_to_pointcloud2(points)
    assert out.is_bigendian
    np.testing.assert_array_equal(pointcloud2_to_array(out)['intensity'], points['intensity'])


def test_count_greater_than_one_is_split_like_sensor_msgs_py():
    dtype = np.dtype([('xyz', np.float32, (3,)), ('label', np.uint8)])
    points = np.zeros(2, dtype=dtype)
    points['xyz'] = [[1, 2, 3], [4, 5, 6]]
    msg = array_to_pointcloud2(points)
    assert msg.fields[0].count == 3
    back = pointcloud2_to_array(msg)
    assert back.dtype.names == ('xyz_0', 'xyz_1', 'xyz_2', 'label')
    np.testing.assert_array_equal(back['xyz_2'], [3, 6])


def test_xyz_from_pointcloud2_skips_nans():
    points = _points(5, seed=2)
    points['y'][3] = np.nan
    xyz = xyz_from_pointcloud2(array_to_pointcloud2(points))
    assert xyz.shape == (4, 3) and xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz[:, 2], np.delete(points['z'], 3))
    assert xyz_from_pointcloud2(array_to_pointcloud2(points), skip_nans=False).shape == (5, 3)


def test_pack_rgb_matches_pcl_bits():
    rgb = np.array([[255, 0, 0], [0, 128, 0], [1, 2, 3]], np.uint8)
    packed = pack_rgb(rgb)
    assert packed.dtype == np.float32
    np.testing.assert_array_equal(packed.view(np.uint32), [0xFF0000, 0x008000, 0x010203])
    np.testing.assert_array_equal(unpack_rgb(packed), rgb)


def test_errors_name_the_problem():
    with pytest.raises(PointCloudConversionError, match='structured'):
        array_to_pointcloud2(np.zeros((4, 3), np.float32))
    with pytest.raises(PointCloudConversionError, match="'c'.*complex"):
        array_to_pointcloud2(np.zeros(2, dtype=[('x', np.float32), ('c', np.complex64)]))
    with pytest.raises(PointCloudConversionError, match='organized_shape'):
        array_to_pointcloud2(_points(5), organized_shape=(2, 3))
    msg = array_to_pointcloud2(_points(4))
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(PointCloudConversionError, match='fewer than the 192'):
        pointcloud2_to_array(msg)
    msg = array_to_pointcloud2(_points(4))
    msg.fields[0].datatype = 42
    with pytest.raises(PointCloudConversionError, match='datatype 42'):
        pointcloud2_to_array(msg)
    msg = array_to_pointcloud2(_points(4))
    msg.point_step = 40
    msg.row_step = 160
    with pytest.raises(PointCloudConversionError, match='point_step 40'):
        pointcloud2_to_array(msg)
    with pytest.raises(PointCloudConversionError, match=r"lacks field\(s\) \['z'\]"):
        xyz_from_pointcloud2(array_to_pointcloud2(
            np.zeros(2, dtype=[('x', np.float32), ('y', np.float32)])))


def test_matches_sensor_msgs_py():
    point_cloud2 = pytest.importorskip(
        'sensor_msgs_py.point_cloud2',
        reason='sensor_msgs_py is not installable without a ROS distribution')
    points = _points(20, seed=3)
    theirs = point_cloud2.create_cloud(Header(), array_to_pointcloud2(points).fields, points)
    assert _equal(pointcloud2_to_array(theirs), points)
    assert _equal(point_cloud2.read_points(array_to_pointcloud2(points)), points)
