"""Test helper: publish grasp_assist_node's inputs the way a camera and segmentation_node do."""

from __future__ import annotations

from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from seg_perception.conversions import numpy_to_image
from seg_perception.nodes.synthetic_camera_node import camera_info_msg, depth_message

#: Reliable QoS of the test's publishers and subscribers.
RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)


class GraspFeeder:
    """Publish labels, depth, colour and CameraInfo the way the camera and segmentation do."""

    def __init__(self, probe, ns: str = '', *, with_color: bool = True) -> None:
        node = probe.node
        self.labels = node.create_publisher(Image, ns + 'color/segmentation/labels', RELIABLE)
        self.depth = node.create_publisher(Image, ns + 'depth/image_rect', RELIABLE)
        self.color = node.create_publisher(Image, ns + 'color/image_raw', RELIABLE)
        self.info = node.create_publisher(CameraInfo, ns + 'depth/camera_info', RELIABLE)
        for pub in (self.labels, self.depth, self.info) + ((self.color,) if with_color else ()):
            probe.wait_for_subscribers(pub, timeout_s=60.0)

    def send(self, frame, sec: int, *, labels=None, depth_encoding='32FC1', info=None,
             label_sec=None, depth=None, labels_msg=None) -> None:
        header = numpy_to_image(frame.labels, 'mono8').header
        header.stamp.sec, header.frame_id = sec, 'camera_color_optical_frame'
        if info is not None:
            info.header = header
        self.info.publish(info or camera_info_msg(frame.K, 640, 480, header))
        label_header = type(header)(frame_id=header.frame_id)
        label_header.stamp.sec = sec if label_sec is None else label_sec
        if labels_msg is not None:
            labels_msg.header = label_header
        self.labels.publish(labels_msg or numpy_to_image(
            frame.labels if labels is None else labels, 'mono8', label_header))
        self.color.publish(numpy_to_image(frame.rgb, 'rgb8', header))
        if depth is not None:
            depth.header = header
        self.depth.publish(depth or depth_message(frame.depth_m, depth_encoding, header))


def problem_total(diagnostics, key: str) -> int:
    """Return the largest value of a diagnostics key seen in any status (counters only grow)."""
    best = 0
    for array in diagnostics.messages:
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            best = max(best, int(float(values.get(key, 0))))
    return best
