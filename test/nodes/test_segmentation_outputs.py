"""segmentation_node over DDS: per-camera diagnostics, camera_info beside the labels, instances.

The node runs in its own process; this test process publishes cameras and reads what comes out.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ros_harness import NodeProcess, wait_until
from seg_perception.conversions import image_to_numpy, numpy_to_image

from nodes.parameter_client import stamped  # noqa: I100 (test helper)

pytestmark = pytest.mark.ros

NODE = 'seg_perception.nodes.segmentation_node'
RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
BASE = {'device': 'cpu', 'qos_reliability': 'reliable', 'warmup_iterations': 1,
        'diagnostics_period_s': 0.3, 'stale_after_s': 30.0}


def rgb_frame(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def latest_status(diagnostics, camera_topic: str) -> dict[str, str]:
    """Return the key-values of the newest status of one camera ({} before the first)."""
    for array in reversed(diagnostics.messages):
        for status in array.status:
            if status.name.endswith(': ' + camera_topic):
                return {'message': status.message, **{kv.key: kv.value for kv in status.values}}
    return {}


def _malformed() -> list[tuple[str, Image]]:
    """Return (expected reason, message) pairs, one per way a camera frame can be wrong."""
    narrow = numpy_to_image(rgb_frame(8, 8, 1), 'rgb8')
    narrow.step = 10                                    # < 8 px * 3 bytes
    short = numpy_to_image(rgb_frame(8, 8, 2), 'rgb8')
    short.data = bytes(short.data)[:50]
    yuv = Image(height=4, width=4, encoding='yuv422', step=8, data=bytes(32))
    huge = Image(height=1000, width=1000, encoding='rgb8', step=3000)   # header only
    return [('bad_input:step_too_small', narrow), ('bad_input:data_too_short', short),
            ('bad_input:unsupported_encoding:yuv422', yuv), ('bad_input:too_many_pixels', huge)]


def test_problems_are_counted_per_camera_and_camera_info_follows_the_labels(ros_probe) -> None:
    params = {**BASE, 'model': 'default', 'max_input_pixels': 500_000,
              'image_topics': ['left/color/image_raw', 'right/color/image_raw']}
    node = ros_probe.node
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 50)
    labels = ros_probe.subscribe(Image, 'left/color/segmentation/labels', RELIABLE)
    infos = ros_probe.subscribe(CameraInfo, 'left/color/segmentation/camera_info', RELIABLE)
    with NodeProcess(NODE, params=params) as proc:
        left = node.create_publisher(Image, 'left/color/image_raw', RELIABLE)
        right = node.create_publisher(Image, 'right/color/image_raw', RELIABLE)
        left_info = node.create_publisher(CameraInfo, 'left/color/camera_info', RELIABLE)
        for pub in (left, right, left_info):
            ros_probe.wait_for_subscribers(pub, timeout_s=90.0)
        ros_probe.wait_for_publishers('left/color/segmentation/labels', timeout_s=30.0)
        # The default model is not Mask R-CNN: no instances topic is advertised.
        assert node.count_publishers('left/color/segmentation/instances') == 0

        # Calibrated at 640x480; the camera sends 320x240 frames (an image_proc resize in
        # between): the republished intrinsics are those of the 320x240 labels.
        info = CameraInfo(width=640, height=480, distortion_model='plumb_bob', d=[0.0] * 5)
        info.k = [600.0, 0.0, 319.5, 0.0, 610.0, 239.5, 0.0, 0.0, 1.0]
        info.p = [600.0, 0.0, 319.5, -30.0, 0.0, 610.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
        info.header.frame_id = 'left_optical_frame'
        for i in range(3):
            frame = numpy_to_image(rgb_frame(240, 320, i), 'rgb8')
            frame.header.frame_id = 'left_optical_frame'
            frame.header.stamp.sec, frame.header.stamp.nanosec = 300 + i, 777
            info.header.stamp = frame.header.stamp
            left_info.publish(info)   # as drivers do: one CameraInfo per frame
            left.publish(frame)
            labels.wait_for(i + 1, timeout_s=60.0)
        # The info goes out right after its labels, on another topic: wait for the last one.
        stamped(infos, 302, timeout_s=10.0)
        got = list(infos.messages)
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in labels.messages}
        for m in got:
            assert (m.header.stamp.sec, m.header.stamp.nanosec) in stamps
            assert (m.width, m.height) == (320, 240)
            assert m.header.frame_id == 'left_optical_frame'
            np.testing.assert_allclose(m.k, [300.0, 0.0, 159.5, 0.0, 305.0, 119.5, 0, 0, 1])
            np.testing.assert_allclose(m.p[3], -15.0)   # Tx scales with fx
        assert (got[-1].header.stamp.sec, got[-1].header.stamp.nanosec) == (302, 777)   # in order

        # Malformed frames on the right camera only, one at a time (newest-frame mailbox).
        for count, (reason, msg) in enumerate(_malformed(), start=1):
            right.publish(msg)
            assert wait_until(lambda: latest_status(diagnostics, 'right/color/image_raw').get(
                'problems_total') == str(count), 20.0), (
                reason, latest_status(diagnostics, 'right/color/image_raw'), proc.output)
            status = latest_status(diagnostics, 'right/color/image_raw')
            assert status[f'problem:{reason}'] == '1' and status['last_problem'] == reason
        right_status = latest_status(diagnostics, 'right/color/image_raw')
        assert 'refused frames' in right_status['message'], right_status
        left_status = latest_status(diagnostics, 'left/color/image_raw')
        assert left_status['problems_total'] == '0' and left_status['last_problem'] == ''
        assert not [k for k in left_status if k.startswith('problem:')], left_status
        assert left_status['frames_published'] == '3' and proc.is_running()


def test_mask_rcnn_publishes_instance_ids_beside_the_labels(ros_probe) -> None:
    params = {**BASE, 'model': 'maskrcnn_resnet50_fpn', 'input_size': [64, 64],
              'classes_to_mask': [], 'image_topics': ['mrcnn/image_raw']}
    node = ros_probe.node
    labels = ros_probe.subscribe(Image, 'mrcnn/segmentation/labels', RELIABLE)
    instances = ros_probe.subscribe(Image, 'mrcnn/segmentation/instances', RELIABLE)
    with NodeProcess(NODE, params=params) as proc:
        camera = node.create_publisher(Image, 'mrcnn/image_raw', RELIABLE)
        ros_probe.wait_for_subscribers(camera, timeout_s=120.0)
        ros_probe.wait_for_publishers('mrcnn/segmentation/instances', timeout_s=30.0)
        frame = numpy_to_image(rgb_frame(48, 80, 3), 'rgb8')
        frame.header.stamp.sec, frame.header.frame_id = 42, 'mrcnn_optical_frame'
        camera.publish(frame)
        out = instances.wait_for(1, timeout_s=60.0)[0]
        label = labels.wait_for(1, timeout_s=10.0)[0]
        assert proc.is_running()
    assert (out.encoding, out.height, out.width) == ('mono16', 48, 80)
    assert out.header.stamp.sec == label.header.stamp.sec == 42
    assert out.header.frame_id == 'mrcnn_optical_frame'
    ids = image_to_numpy(out)
    assert ids.dtype == np.uint16 and ids.shape == (48, 80)
