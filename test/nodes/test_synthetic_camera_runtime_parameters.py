"""synthetic_camera_node's runtime parameters over DDS: applied from the next frame, or refused."""

from __future__ import annotations

import math

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ros_harness import NodeProcess, wait_until

from nodes.parameter_client import assert_refused, ParameterClient  # noqa: I100 (helper)

pytestmark = pytest.mark.ros
NODE = 'seg_perception.nodes.synthetic_camera_node'
NS = '/runtime_camera'
QOS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope='module')
def camera():
    params = {'width': 160, 'height': 120, 'rate_hz': 5.0, 'publish_ground_truth': False}
    with NodeProcess(NODE, params=params, remaps={'__ns': NS}) as proc:
        yield proc


@pytest.mark.parametrize('name, value, reason', [
    ('rate_hz', -1.0, 'rate_hz'),
    ('rate_hz', math.nan, 'finite'),
    ('rate_hz', math.inf, 'finite'),
    ('depth_encoding', 'bogus', 'depth_encoding'),
    ('width', 5, 'resolution'),
    ('max_frames', -3, 'max_frames'),
    ('frame_id', '', 'frame_id'),
    ('rate_hz', 'fast', 'type'),
    ('qos_reliability', 'best_effort', 'restart'),
])
def test_bad_or_fixed_values_are_refused(camera, ros_probe, name, value, reason) -> None:
    assert_refused(ParameterClient(ros_probe, f'{NS}/synthetic_camera'), camera, name, value,
                   reason)


def test_resolution_encoding_and_frame_change_without_restart(camera, ros_probe) -> None:
    client = ParameterClient(ros_probe, f'{NS}/synthetic_camera')
    depth = ros_probe.subscribe(Image, f'{NS}/depth/image_rect', QOS)
    depth.wait_for(1, timeout_s=60.0)
    assert (depth.messages[-1].width, depth.messages[-1].encoding) == (160, '32FC1')
    for name, value in (('width', 128), ('depth_encoding', '16UC1'), ('frame_id', 'cam2'),
                        ('rate_hz', 20.0)):
        result = client.set_value(name, value)
        assert result.successful, result.reason
    seen = len(depth)

    def changed() -> bool:
        last = depth.messages[-1]
        return (len(depth) > seen and (last.width, last.height, last.encoding,
                                       last.header.frame_id) == (128, 120, '16UC1', 'cam2'))
    assert wait_until(changed, 20.0), [(m.width, m.encoding) for m in depth.messages[-3:]]
    # The faster timer: 20 frames take 1 s at 20 Hz, 4 s at the old 5 Hz.
    start = len(depth)
    assert wait_until(lambda: len(depth) >= start + 20, 2.5), len(depth) - start
    assert camera.is_running()
