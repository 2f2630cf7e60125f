"""synthetic_camera_node: an RGB-D camera over the synthetic logistics cell, no hardware needed.

Publishes, with one stamp per frame, `color/image_raw` (rgb8), `depth/image_rect` (32FC1 metres
or 16UC1 millimetres, registered to colour), `color/camera_info`, `depth/camera_info`, and the
ground truth `ground_truth/labels` (mono8) and `ground_truth/instances` (16UC1).
Put it in a namespace (e.g. `camera`) with `--ros-args -r __ns:=/camera`.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from seg_perception.conversions import numpy_to_image
from seg_perception.monitoring import RateMeter
from seg_perception.nodes.diagnostics import DiagnosticsPublisher
from seg_perception.nodes.parameters import declare_parameters, merged_parameter_change, \
    non_finite_parameters, ParamSpec
from seg_perception.nodes.qos import sensor_qos
from seg_perception.nodes.runner import run_node
from seg_perception.synthetic import SyntheticCell, SyntheticConfig

DEPTH_ENCODINGS = ('32FC1', '16UC1')
PARAMETERS = (
    ParamSpec('rate_hz', 10.0, 'Frames per second to publish'),
    ParamSpec('width', 640, 'Image width in pixels'),
    ParamSpec('height', 480, 'Image height in pixels'),
    ParamSpec('seed', 0, 'Seed of the first frame; frame i uses seed + i (deterministic)'),
    ParamSpec('max_frames', 0, 'Stop publishing after this many frames (0 = never)'),
    ParamSpec('depth_encoding', '32FC1', "'32FC1' (metres, NaN invalid) or '16UC1' (mm, 0 "
              'invalid), REP 118'),
    ParamSpec('publish_ground_truth', True, 'Publish ground_truth/labels and instances'),
    ParamSpec('frame_id', 'camera_color_optical_frame', 'Optical frame of colour and depth'),
    ParamSpec('qos_reliability', 'reliable', 'Publisher reliability (reliable reaches both '
              'reliable and best-effort subscribers)'),
    ParamSpec('depth_noise', True, 'Simulate depth noise and invalid holes'),
)
#: Applied by a running camera from the next frame (the cell or the timer rebuilt when needed);
#: qos_reliability would need new publishers: refused, restart the node.
RUNTIME_PARAMETERS = frozenset(spec.name for spec in PARAMETERS) - {'qos_reliability'}
PARAMETERS = tuple(dataclasses.replace(spec, runtime=spec.name in RUNTIME_PARAMETERS)
                   for spec in PARAMETERS)


def cell_config_from_parameters(p: dict[str, Any]) -> SyntheticConfig:
    """Validate the camera's parameter values; return the cell's configuration.

    Raises ValueError (SyntheticConfigError included) naming the bad parameter.
    """
    non_finite = non_finite_parameters(p)
    if non_finite:
        raise ValueError(f'{", ".join(non_finite)} must be finite')
    if p['depth_encoding'] not in DEPTH_ENCODINGS:
        raise ValueError(f'depth_encoding must be one of {DEPTH_ENCODINGS}, '
                         f'got {p["depth_encoding"]!r}')
    if not p['rate_hz'] > 0:            # NaN fails too
        raise ValueError(f'rate_hz must be positive, got {p["rate_hz"]}')
    if p['max_frames'] < 0:
        raise ValueError(f'max_frames must be >= 0 (0 = never stop), got {p["max_frames"]}')
    frame_id = str(p['frame_id'])
    if not frame_id or frame_id != frame_id.strip() or frame_id.startswith('/'):
        raise ValueError(f'frame_id must be a tf2 frame id (not empty, no leading / or '
                         f'spaces), got {frame_id!r}')
    return SyntheticConfig(width=int(p['width']), height=int(p['height']),
                           depth_noise=bool(p['depth_noise']))


def camera_info_msg(K: np.ndarray, width: int, height: int, header: Header) -> CameraInfo:
    """Return a CameraInfo for an undistorted pinhole camera with intrinsics K (P = [K | 0])."""
    msg = CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in K.reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(K[0, 0]), 0.0, float(K[0, 2]), 0.0,
             0.0, float(K[1, 1]), float(K[1, 2]), 0.0,
             0.0, 0.0, 1.0, 0.0]
    return msg


def depth_message(depth_m: np.ndarray, encoding: str, header: Header) -> Image:
    """Encode metric depth as 32FC1 (NaN invalid) or 16UC1 millimetres (0 invalid)."""
    if encoding == '16UC1':
        mm = np.nan_to_num(depth_m * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
        return numpy_to_image(np.clip(np.rint(mm), 0, 65535).astype(np.uint16), '16UC1', header)
    return numpy_to_image(depth_m.astype(np.float32, copy=False), '32FC1', header)


class SyntheticCameraNode(Node):
    """Publish synthetic RGB-D frames with exact ground truth at a fixed rate."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('synthetic_camera', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self.cell = SyntheticCell(cell_config_from_parameters(p))
        self.params = p
        qos = sensor_qos(p['qos_reliability'], 5)
        self.pubs = {name: self.create_publisher(msg_type, name, qos) for name, msg_type in (
            ('color/image_raw', Image), ('depth/image_rect', Image),
            ('color/camera_info', CameraInfo), ('depth/camera_info', CameraInfo),
            ('ground_truth/labels', Image), ('ground_truth/instances', Image))}
        self.frame_index = 0
        self.published = RateMeter()
        self.diagnostics = DiagnosticsPublisher(self)
        self.create_timer(1.0, self._publish_diagnostics)
        self._timer = self.create_timer(1.0 / p['rate_hz'], self._publish_frame)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f'synthetic cell {p["width"]}x{p["height"]} at {p["rate_hz"]} Hz, seed {p["seed"]}')

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Apply a change from the next frame through the start-up validation, or refuse it."""
        values, reason = merged_parameter_change(self.params, params, RUNTIME_PARAMETERS)
        if values is None:
            return SetParametersResult(successful=False, reason=reason)
        try:
            config = cell_config_from_parameters(values)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if config != self.cell.config:
            self.cell = SyntheticCell(config)
        old, self.params = self.params, values
        if (values['rate_hz'], values['max_frames']) != (old['rate_hz'], old['max_frames']):
            # A new period, or frames again after max_frames stopped the timer.
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / values['rate_hz'], self._publish_frame)
        self.get_logger().info(f'parameters changed: {", ".join(p.name for p in params)}')
        return SetParametersResult(successful=True)

    def _publish_frame(self) -> None:
        p = self.params
        if p['max_frames'] and self.frame_index >= p['max_frames']:
            self._timer.cancel()
            return
        frame = self.cell.render(seed=int(p['seed']) + self.frame_index)
        self.frame_index += 1
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=p['frame_id'])
        height, width = frame.labels.shape
        info = camera_info_msg(frame.K, width, height, header)
        self.pubs['color/camera_info'].publish(info)
        self.pubs['depth/camera_info'].publish(info)
        self.pubs['depth/image_rect'].publish(depth_message(frame.depth_m, p['depth_encoding'],
                                                            header))
        if p['publish_ground_truth']:
            self.pubs['ground_truth/labels'].publish(numpy_to_image(frame.labels, 'mono8', header))
            self.pubs['ground_truth/instances'].publish(
                numpy_to_image(frame.instances, '16UC1', header))
        # Colour last: a consumer that syncs on colour finds depth and truth already sent.
        self.pubs['color/image_raw'].publish(numpy_to_image(frame.rgb, 'rgb8', header))
        self.published.tick()

    def _publish_diagnostics(self) -> None:
        self.diagnostics.publish([('frames', 'ok', 'publishing', {
            'rate_hz': self.published.rate_hz(), 'frames_published': self.published.total,
            'next_seed': int(self.params['seed']) + self.frame_index})])


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C; exit 1 with a one-line reason when it cannot start."""
    return run_node(SyntheticCameraNode, 'synthetic_camera_node', args)


if __name__ == '__main__':
    sys.exit(main())
