"""synthetic_camera_node publishes consistent RGB-D frames with ground truth over DDS."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ros_harness import NodeProcess
from seg_perception.conversions import image_to_numpy
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

pytestmark = pytest.mark.ros
NODE = 'seg_perception.nodes.synthetic_camera_node'
QOS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)


@pytest.mark.parametrize('depth_encoding', ['32FC1', '16UC1'])
def test_frames_share_one_stamp_and_match_the_generator(ros_probe, depth_encoding) -> None:
    topics = {'color': ('cam/color/image_raw', Image), 'depth': ('cam/depth/image_rect', Image),
              'info': ('cam/depth/camera_info', CameraInfo),
              'labels': ('cam/ground_truth/labels', Image)}
    got = {k: ros_probe.subscribe(t, name, QOS) for k, (name, t) in topics.items()}
    params = {'width': 160, 'height': 120, 'rate_hz': 10.0, 'seed': 5,
              'depth_encoding': depth_encoding}
    # The camera starts publishing at once; frames sent before discovery finishes are lost
    # (volatile, like a real camera), so match frames by stamp and find each one's seed.
    with NodeProcess(NODE, params=params, remaps={'__ns': '/cam'}):
        for collector in got.values():
            collector.wait_for(3, timeout_s=60.0)
    by_stamp = {k: {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in c.messages}
                for k, c in got.items()}
    common = sorted(set.intersection(*(set(v) for v in by_stamp.values())))
    assert len(common) >= 2, 'colour, depth, info and labels never shared a stamp'
    stamp = common[0]
    info = by_stamp['info'][stamp]
    assert (info.width, info.height) == (160, 120)
    assert info.p[0] == info.k[0] > 0 and info.p[5] == info.k[4] > 0
    cell = SyntheticCell(SyntheticConfig(width=160, height=120))
    rgb = image_to_numpy(by_stamp['color'][stamp])
    matches = [seed for seed in range(5, 5 + 60) if np.array_equal(cell.render(seed=seed).rgb,
                                                                   rgb)]
    assert len(matches) == 1, 'the colour frame is not a frame of seed 5 + i'
    expected = cell.render(seed=matches[0])
    assert np.array_equal(image_to_numpy(by_stamp['labels'][stamp]), expected.labels)
    depth_msg = by_stamp['depth'][stamp]
    depth = image_to_numpy(depth_msg)
    assert depth_msg.encoding == depth_encoding
    valid = np.isfinite(expected.depth_m)
    if depth_encoding == '16UC1':
        assert np.all(depth[~valid] == 0)
        assert np.abs(depth[valid] / 1000.0 - expected.depth_m[valid]).max() <= 0.0005 + 1e-6
    else:
        assert np.array_equal(np.isnan(depth), ~valid)
        assert np.array_equal(depth[valid], expected.depth_m[valid])
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), expected.K)


def test_bad_depth_encoding_exits_with_a_reason() -> None:
    with NodeProcess(NODE, params={'depth_encoding': 'mono8'}) as proc:
        assert proc.wait(timeout_s=60.0) != 0
        assert 'depth_encoding' in proc.output and 'Traceback' not in proc.output
