"""segmentation_node with each runtime backend: the default (auto) and an explicit one."""

from __future__ import annotations

import re

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
import torch

from ros_harness import NodeProcess, wait_until
from seg_perception.conversions import image_to_numpy, numpy_to_image
from seg_perception.segmentation.backends import runtimes_for

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.segmentation_node'
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
INSTALLED = runtimes_for('default', torch.device('cpu'))


def _diagnostic(messages: list, key: str) -> str | None:
    for array in reversed(messages):
        for status in array.status:
            for kv in status.values:
                if kv.key == key:
                    return kv.value
    return None


@pytest.mark.parametrize('backend', ['auto'] + [r for r in INSTALLED if r != 'torch'])
def test_the_node_segments_with_the_backend_it_reports(ros_probe, backend) -> None:
    params = {'image_topics': ['cam/image_raw'], 'model': 'default', 'device': 'cpu',
              'backend': backend, 'qos_reliability': 'reliable', 'warmup_iterations': 1,
              'diagnostics_period_s': 0.5}
    node = ros_probe.node
    labels = ros_probe.subscribe(Image, 'cam/segmentation/labels', RELIABLE)
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 10)
    pub = node.create_publisher(Image, 'cam/image_raw', RELIABLE)
    with NodeProcess(NODE, params=params) as proc:
        ros_probe.wait_for_subscribers(pub, timeout_s=90.0)
        frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        assert wait_until(lambda: (pub.publish(numpy_to_image(frame, 'rgb8')), len(labels))[1]
                          > 0, 60.0, interval_s=0.5), proc.output
        assert image_to_numpy(labels.messages[-1]).shape == (480, 640)
        assert wait_until(lambda: _diagnostic(diagnostics.messages, 'backend'), 10.0)
        reported = _diagnostic(diagnostics.messages, 'backend')
        if backend == 'auto' and len(INSTALLED) > 1:
            chosen = re.search(r'backend auto: .* -> (\w+)', proc.output)
            assert chosen, proc.output
            # the node's precision default (fp16) lets auto take the shipped INT8 model too
            assert reported == chosen.group(1) and reported in INSTALLED + ('openvino_int8',)
        elif backend != 'auto':
            assert reported == backend
        assert f'with backend {reported}' in proc.output
