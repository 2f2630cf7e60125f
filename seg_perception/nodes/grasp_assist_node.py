"""grasp_assist_node: segmentation labels + registered depth -> item clouds and grasp candidates.

Labels, depth, its CameraInfo (and optionally colour) are matched by an approximate-time
synchronizer (like depth_image_proc, which pairs each depth image with its CameraInfo); the newest
matched set waits in a one-slot mailbox (older ones are dropped and counted) for a worker thread
that runs the ROS-free GraspPipeline and publishes with the depth image's header.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any

from geometry_msgs.msg import PoseArray
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from seg_interfaces.msg import GraspCandidateArray, LabelInfo
from seg_interfaces.srv import GetGraspCandidates
from seg_perception.classes import class_set_from_label_info, ClassSet, ClassSetError, \
    parse_grasp_modes
from seg_perception.conversions import array_to_pointcloud2, image_to_numpy, ImageConversionError
from seg_perception.conversions.color import as_rgb8
from seg_perception.frame_mailbox import LatestMailbox
from seg_perception.grasp import (depth_to_metres, GraspConfig, GraspPipeline, GraspResult,
                                  InvalidCameraInfoError, PinholeCamera,
                                  UnsupportedDepthEncodingError)
from seg_perception.grasp.backprojection import BackProjector
from seg_perception.grasp.container import (Container, ContainerConfig, ContainerError,
                                            ContainerStatus)
from seg_perception.grasp.depth import load_depth_file
from seg_perception.monitoring import LatencyStats, ProblemCounter, RateMeter
from seg_perception.nodes.diagnostics import DiagnosticsPublisher
from seg_perception.nodes.grasp_messages import candidate_array, marker_array, pose_array
from seg_perception.nodes.parameters import declare_parameters, ParamSpec
from seg_perception.nodes.qos import FollowingSubscription, latched_qos, sensor_qos
from seg_perception.nodes.runner import run_node
from seg_perception.time_sync import ApproximateTimeSynchronizer, stamp_ns

LABEL_ENCODINGS = ('mono8', '8UC1')
#: Smallest label image side scaled up to the depth image (a 1x1 label image is not labels).
MIN_LABEL_SIDE_PX = 16
_DEFAULTS = GraspConfig()
_CONTAINER = ContainerConfig()
PARAMETERS = (
    ParamSpec('labels_topic', 'color/segmentation/labels', 'Label image (mono8 class ids)'),
    ParamSpec('depth_topic', 'depth/image_rect', 'Registered depth (16UC1 mm or 32FC1 m)'),
    ParamSpec('camera_info_topic', 'depth/camera_info', 'CameraInfo of the depth image'),
    ParamSpec('color_topic', '', "Colour image registered to depth, for an XYZRGB cloud ('' = "
              'none: points are coloured by class)'),
    ParamSpec('output_namespace', 'grasp', 'Outputs go to <output_namespace>/{graspable_points,'
              'candidates,candidate_poses,markers} and the get_grasp_candidates service'),
    ParamSpec('sync_slop_s', 0.02, 'Largest stamp difference of a matched labels/depth set'),
    ParamSpec('scale_camera_info', False,
              'Scale a CameraInfo whose size differs from the depth image but has its aspect '
              'ratio (false: such frames are refused)'),
    ParamSpec('queue_size', 10, 'Messages kept per input while waiting for a match'),
    ParamSpec('max_stamp_jump_s', 5.0,
              'A stamp jumping further than this from the newest one (clock jump, looping bag, '
              'a frame from the far future) resets the synchronizer and is counted'),
    ParamSpec('qos_reliability', 'auto',
              "Input QoS reliability: 'auto' follows each input's publishers (a reliable camera "
              "delivers every frame even over UDP), or 'best_effort' / 'reliable'"),
    ParamSpec('output_qos_reliability', 'reliable', 'Output QoS reliability'),
    ParamSpec('label_info_topic', '',
              "LabelInfo of the labels, latched ('' = <labels_topic folder>/label_info): the "
              'class ids and names; the built-in class set only when no LabelInfo is published'),
    ParamSpec('graspable_classes', list(_DEFAULTS.graspable_classes),
              "Classes whose pixels are pickable items (names from the labels' class set)"),
    ParamSpec('grasp_modes', [],
              "Grasp modes per class, 'name=suction,parallel' entries ([] = the built-in "
              "class's modes, else suction)", type_=Parameter.Type.STRING_ARRAY),
    ParamSpec('erosion_px', _DEFAULTS.erosion_px, 'Erode class masks by this many pixels'),
    ParamSpec('discontinuity_m', _DEFAULTS.discontinuity_m,
              'Drop pixels whose depth jumps more than this to a neighbour'),
    ParamSpec('min_depth_m', _DEFAULTS.min_depth_m, 'Nearest valid depth, metres'),
    ParamSpec('max_depth_m', _DEFAULTS.max_depth_m, 'Farthest valid depth, metres'),
    ParamSpec('workspace_min', [], 'Workspace box min corner [x, y, z] ([] = no crop)',
              type_=Parameter.Type.DOUBLE_ARRAY),
    ParamSpec('workspace_max', [], 'Workspace box max corner [x, y, z] ([] = no crop)',
              type_=Parameter.Type.DOUBLE_ARRAY),
    ParamSpec('base_from_camera', [], 'Static extrinsic, row-major 4x4, for a workspace box in a '
              'base frame ([] = box in the camera frame)', type_=Parameter.Type.DOUBLE_ARRAY),
    ParamSpec('voxel_size_m', _DEFAULTS.voxel_size_m, 'Voxel size for plane fits (0 = off)'),
    ParamSpec('plane_fit', _DEFAULTS.plane_fit, "Region plane fit: 'pca' or 'ransac'"),
    ParamSpec('min_region_pixels', _DEFAULTS.min_region_pixels, 'Smallest item region, pixels'),
    ParamSpec('cup_radius_m', _DEFAULTS.cup_radius_m, 'Suction cup radius, metres'),
    ParamSpec('gripper_max_opening_m', _DEFAULTS.gripper_max_opening_m,
              'Parallel gripper opening; narrower regions get parallel candidates'),
    ParamSpec('max_approach_angle_deg', _DEFAULTS.max_approach_angle_deg,
              'Largest approach angle to gravity (or the camera axis) that scores > 0'),
    ParamSpec('gravity_direction', [], 'Gravity in the camera frame ([] = camera z axis)',
              type_=Parameter.Type.DOUBLE_ARRAY),
    ParamSpec('max_candidates', _DEFAULTS.max_candidates, 'Candidates per frame, best first'),
    ParamSpec('nms_distance_m', _DEFAULTS.nms_distance_m, 'Suppress candidates closer than this'),
    ParamSpec('min_score', _DEFAULTS.min_score, 'Drop candidates scoring below this'),
    ParamSpec('organized_cloud', _DEFAULTS.organized_cloud,
              'Publish an organized H x W cloud (NaN outside items) instead of a dense one'),
    ParamSpec('container_mode', _CONTAINER.mode,
              "Container (bin) step: 'auto' (detect in each depth frame, tracked), 'reference' "
              '(an empty-container depth frame: container_reference_file or the '
              "capture_container_reference service) or 'none'"),
    ParamSpec('container_reference_file', '',
              "Empty-container depth for 'reference': uint16 PNG (container_reference_units_per_m)"
              " or .npy metres, same camera and size as the depth ('' = capture it by service)"),
    ParamSpec('container_reference_units_per_m', 1000.0,
              'Units of a uint16 PNG reference file per metre (1000 = mm)'),
    ParamSpec('container_surface_margin_m', _CONTAINER.surface_margin_m,
              'Label pixels closer than this to a container surface are not graspable'),
    ParamSpec('container_wall_clearance_m', _CONTAINER.wall_clearance_m,
              'Room between a wall and the cup rim or a finger, beyond the cup radius or half '
              'the gripper opening'),
    ParamSpec('diagnostics_period_s', 1.0, 'Period of /diagnostics messages, seconds'),
    ParamSpec('stale_after_s', 3.0,
              'An input (labels, depth, camera_info) silent for this long after it has been '
              'seen is reported STALE in /diagnostics'),
)
_CONFIG_FIELDS = ('graspable_classes', 'erosion_px', 'discontinuity_m', 'min_depth_m',
                  'max_depth_m', 'voxel_size_m', 'plane_fit', 'min_region_pixels',
                  'cup_radius_m', 'gripper_max_opening_m', 'max_approach_angle_deg',
                  'max_candidates', 'nms_distance_m', 'min_score', 'organized_cloud')


def grasp_config_from_parameters(p: dict[str, Any]) -> GraspConfig:
    """Build the pipeline configuration from parameter values (GraspConfig validates them)."""
    kwargs = {name: p[name] for name in _CONFIG_FIELDS}
    kwargs['graspable_classes'] = tuple(p['graspable_classes'])
    for name in ('workspace_min', 'workspace_max', 'gravity_direction', 'base_from_camera'):
        kwargs[name] = tuple(p[name]) if len(p[name]) else None
    return GraspConfig(**kwargs)


def label_info_topic_for(labels_topic: str) -> str:
    """Return segmentation_node's LabelInfo topic beside a labels topic."""
    folder, _, _ = labels_topic.rpartition('/')
    return f'{folder}/label_info' if folder else 'label_info'


def same_aspect(size_a: tuple[int, int], size_b: tuple[int, int]) -> bool:
    """Return True when two (width, height) sizes have the same aspect ratio within 2 %."""
    (wa, ha), (wb, hb) = size_a, size_b
    return abs((wa / ha) / (wb / hb) - 1.0) < 0.02


def candidate_is_finite(candidate: Any) -> bool:
    """Return True when a candidate's position, orientation and score are all finite."""
    return bool(np.all(np.isfinite(candidate.position)) and np.all(np.isfinite(
        candidate.quaternion)) and np.isfinite(candidate.score))


def container_config_from_parameters(p: dict[str, Any]) -> ContainerConfig:
    """Build the container step's configuration (ContainerConfig validates it)."""
    return ContainerConfig(mode=p['container_mode'],
                           surface_margin_m=float(p['container_surface_margin_m']),
                           wall_clearance_m=float(p['container_wall_clearance_m']))


class GraspAssistNode(Node):
    """Publish graspable item clouds and suction/parallel candidates from labels and depth."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('grasp_assist_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self.params = p
        self._grasp_modes = parse_grasp_modes(p['grasp_modes'])
        builtin = ClassSet.default()
        container = container_config_from_parameters(p)
        # Until a LabelInfo says otherwise, the built-in classes (names it lacks may come with
        # the LabelInfo of another model, e.g. VOC's 'bottle').
        config = grasp_config_from_parameters(p)
        self._wanted_classes = tuple(config.graspable_classes)
        known = tuple(n for n in self._wanted_classes if n in builtin.names)
        self.pipeline = GraspPipeline(dataclasses.replace(config, graspable_classes=known),
                                      builtin, container=container)
        self.class_source = 'built-in (no LabelInfo yet)'
        self._label_info_topic = p['label_info_topic'] or label_info_topic_for(p['labels_topic'])
        self._reference_depth: np.ndarray | None = None   # loaded, set on the first frame
        if p['container_reference_file']:
            if container.mode != 'reference':
                raise ValueError('container_reference_file is set but container_mode is '
                                 f"{container.mode!r}, not 'reference'")
            self._reference_depth = load_depth_file(
                p['container_reference_file'],
                units_per_m=float(p['container_reference_units_per_m']))
        self._capture = threading.Event()          # capture_container_reference requested
        self._captured = threading.Condition()     # guards _capture_result
        self._capture_result: tuple[bool, str] | None = None
        self.container_status: ContainerStatus | None = None
        self.container_totals = {'frames_without': 0, 'removed_pixels': 0,
                                 'removed_candidates': 0}
        self._last_container: Container | None = None
        if not p['stale_after_s'] > 0:
            raise ValueError(f'stale_after_s must be > 0, got {p["stale_after_s"]}')
        if p['sync_slop_s'] < 0 or p['queue_size'] < 1:
            raise ValueError('sync_slop_s must be >= 0 and queue_size >= 1, got '
                             f'{p["sync_slop_s"]} and {p["queue_size"]}')
        if not p['max_stamp_jump_s'] > p['sync_slop_s']:     # NaN fails too
            raise ValueError(f'max_stamp_jump_s must be > sync_slop_s, got '
                             f'{p["max_stamp_jump_s"]}')
        self.problems = ProblemCounter()
        self.frame_ms = LatencyStats()
        self.candidates_per_frame = LatencyStats()
        self.rates = {name: RateMeter() for name in ('labels', 'depth', 'camera_info', 'color',
                                                     'processed')}
        self.mailbox: LatestMailbox[tuple] = LatestMailbox()
        self._results = threading.Condition()  # guards `latest`; the service waits on it
        self.latest: tuple[Any, GraspResult] | None = None  # (header, result)

        inputs = [('labels', p['labels_topic'], Image), ('depth', p['depth_topic'], Image),
                  ('camera_info', p['camera_info_topic'], CameraInfo)]
        if p['color_topic']:
            inputs.append(('color', p['color_topic'], Image))
        self._input_names = [name for name, _, _ in inputs]
        self.sync = ApproximateTimeSynchronizer(
            num_inputs=len(inputs), queue_size=int(p['queue_size']),
            slop_ns=int(p['sync_slop_s'] * 1e9), callback=self._on_synchronized,
            max_jump_ns=int(p['max_stamp_jump_s'] * 1e9))
        self._stamp_jumps_seen = 0
        self.inputs = [FollowingSubscription(
            self, msg_type, topic, lambda msg, i=index, n=name: self._on_input(i, n, msg),
            reliability=p['qos_reliability'], depth=int(p['queue_size']),
            on_change=lambda old, new, t=topic: self.get_logger().info(
                f'{t}: input reliability {old} -> {new} (following its publishers)'))
            for index, (name, topic, msg_type) in enumerate(inputs)]
        out_qos = sensor_qos(p['output_qos_reliability'], 5)
        ns = p['output_namespace'].rstrip('/')
        topic = (lambda name: f'{ns}/{name}' if ns else name)
        self.pub_points = self.create_publisher(PointCloud2, topic('graspable_points'), out_qos)
        self.pub_candidates = self.create_publisher(GraspCandidateArray, topic('candidates'),
                                                    out_qos)
        self.pub_poses = self.create_publisher(PoseArray, topic('candidate_poses'), out_qos)
        self.pub_markers = self.create_publisher(MarkerArray, topic('markers'), out_qos)
        self.create_subscription(LabelInfo, self._label_info_topic, self._on_label_info,
                                 latched_qos())
        self.create_service(GetGraspCandidates, topic('get_grasp_candidates'), self._on_service,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_service(Trigger, topic('capture_container_reference'), self._on_capture,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.diagnostics = DiagnosticsPublisher(self)
        self.create_timer(p['diagnostics_period_s'], self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='grasp_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'graspable classes {list(self.pipeline.config.graspable_classes)}; inputs '
            f'{", ".join(t for _, t, _ in inputs)}')

    # --- callbacks (executor thread): cheap bookkeeping only
    def _on_input(self, index: int, name: str, msg: Image | CameraInfo) -> None:
        self.rates[name].tick()
        self.sync.add(index, stamp_ns(msg), msg)
        if self.sync.stamp_jumps != self._stamp_jumps_seen:
            self._stamp_jumps_seen = self.sync.stamp_jumps
            self._problem('stamp_jump', f'{name} stamp {stamp_ns(msg) / 1e9:.3f} s jumped more '
                          f'than max_stamp_jump_s from the newest one; synchronizer reset')

    def _on_label_info(self, msg: LabelInfo) -> None:
        """Take the class ids and names of the labels from their LabelInfo (and follow it)."""
        colours = [(c.r, c.g, c.b) for c in msg.colors]
        try:
            classes = class_set_from_label_info(list(msg.class_ids), list(msg.class_names),
                                                colours, self._wanted_classes, self._grasp_modes)
        except ClassSetError as exc:
            self._problem('label_info_refused', f'LabelInfo of model {msg.model_name!r} '
                          f'refused: {exc}')
            if self.class_source.startswith('built-in'):    # do not wait for it any longer
                self.class_source = 'built-in (LabelInfo refused)'
            return
        config = dataclasses.replace(self.pipeline.config,
                                     graspable_classes=self._wanted_classes)
        self.pipeline = GraspPipeline(config, classes, container=self.pipeline.container)
        self.class_source = f'LabelInfo of model {msg.model_name!r}'
        self.get_logger().info(f'classes from {self.class_source}: graspable '
                               f'{[c.name for c in classes.graspable()]}')

    def _on_synchronized(self, *msgs: Image) -> None:
        self.mailbox.put('frame', msgs)

    def _problem(self, reason: str, message: str) -> None:
        if self.problems.report(reason, message):
            self.get_logger().warning(f'{message} (counted in diagnostics as {reason!r}; '
                                      'further ones are not logged)')

    # --- worker thread
    def _work(self) -> None:
        while not self.mailbox.closed:
            msgs = self.mailbox.take(timeout_s=0.5).get('frame')
            if msgs is None:
                continue
            try:
                self._process(dict(zip(self._input_names, msgs)))
            except Exception as exc:  # noqa: B902 - a worker must survive any frame
                self._problem('processing_error', f'frame processing failed: {exc!r}')

    def _process(self, msgs: dict[str, Any]) -> None:
        if self.class_source.startswith('built-in'):
            if (self.class_source == 'built-in (no LabelInfo yet)'
                    and self.count_publishers(self._label_info_topic)):
                self._problem('waiting_for_label_info', f'a LabelInfo publisher is on '
                              f'{self._label_info_topic} but no LabelInfo arrived yet: frames '
                              'wait for the class set')
                return
            missing = [n for n in self._wanted_classes if n not in self.pipeline.class_set.names]
            if missing:
                self._problem('graspable_class_unknown', f'graspable classes {missing} are not '
                              'in the built-in class set and no LabelInfo is published on '
                              f'{self._label_info_topic}')
        info, depth_msg = msgs['camera_info'], msgs['depth']
        try:
            camera = PinholeCamera.from_camera_info(info.k, info.p, info.width or depth_msg.width,
                                                    info.height or depth_msg.height)
        except InvalidCameraInfoError as exc:
            self._problem('invalid_camera_info', f'CameraInfo refused: {exc}')
            return
        try:
            depth_m = depth_to_metres(image_to_numpy(depth_msg), depth_msg.encoding)
            labels_msg = msgs['labels']
            if labels_msg.encoding not in LABEL_ENCODINGS:
                raise ImageConversionError(f'labels must be mono8 class ids, got encoding '
                                           f'{labels_msg.encoding!r}')
            labels = image_to_numpy(labels_msg)
            rgb = None
            if 'color' in msgs:
                rgb = as_rgb8(image_to_numpy(msgs['color']), msgs['color'].encoding)
        except (ImageConversionError, UnsupportedDepthEncodingError, ValueError) as exc:
            self._problem(f'bad_input:{type(exc).__name__}', f'frame refused: {exc}')
            return
        height, width = depth_m.shape
        if info.width and info.height and (info.width, info.height) != (width, height):
            if not (self.params['scale_camera_info']
                    and same_aspect((info.width, info.height), (width, height))):
                self._problem('bad_input:camera_info_size', f'CameraInfo is {info.width}x'
                              f'{info.height} but the depth image is {width}x{height}: frame '
                              'refused (scale_camera_info: true scales a CameraInfo of the '
                              'same aspect ratio)')
                return
            self._problem('camera_info_scaled', f'CameraInfo {info.width}x{info.height} scaled '
                          f'to the {width}x{height} depth image')
        if labels.shape != depth_m.shape:
            if not (min(labels.shape) >= MIN_LABEL_SIDE_PX
                    and same_aspect(labels.shape[::-1], (width, height))):
                self._problem('bad_input:labels_size', f'labels {labels.shape[1]}x'
                              f'{labels.shape[0]} cannot be scaled to the {width}x{height} '
                              f'depth image (another aspect ratio, or under '
                              f'{MIN_LABEL_SIDE_PX} px): frame refused')
                return
            self._problem('size_mismatch', f'labels {labels.shape[1]}x{labels.shape[0]} and '
                          f'depth {width}x{height} differ; labels are scaled to the depth '
                          'image (nearest)')
        self._update_reference(depth_m, camera)
        result = self.pipeline.process(labels, depth_m, camera, rgb=rgb)
        self._account_container(result)
        header = depth_msg.header
        self._publish(header, result)
        self.frame_ms.add(result.timings_ms['total'])
        self.candidates_per_frame.add(len(result.candidates))
        self.rates['processed'].tick()
        with self._results:
            self.latest = (header, result)
            self._results.notify_all()

    def _update_reference(self, depth_m: np.ndarray, camera: PinholeCamera) -> None:
        """Set the reference container from the file (first frame) or a requested capture."""
        detector = self.pipeline.container
        capture = self._capture.is_set()
        if self._reference_depth is None and not capture:
            return
        source = depth_m if capture else self._reference_depth
        self._reference_depth = None
        self._capture.clear()
        ok, message = True, ''
        if source.shape != depth_m.shape:
            ok, message = False, (f'reference depth is {source.shape[1]}x{source.shape[0]}, the '
                                  f'depth images are {depth_m.shape[1]}x{depth_m.shape[0]}')
        else:
            try:
                xyz = BackProjector(camera).organized(source)
                reference = detector.set_reference(source, xyz)
                message = (f'reference container: floor {"seen" if reference.floor else "hidden"}'
                           f', {len(reference.walls)} walls')
            except ContainerError as exc:
                ok, message = False, str(exc)
        if not ok:
            self._problem('container_reference_refused', f'container reference refused: {message}')
        else:
            self.get_logger().info(message)
        with self._captured:
            self._capture_result = (ok, message)
            self._captured.notify_all()

    def _account_container(self, result: GraspResult) -> None:
        status = result.container_status
        self.container_status = status
        self._last_container = result.container
        if status is None:
            return
        self.container_totals['removed_pixels'] += status.removed_pixels
        self.container_totals['removed_candidates'] += status.removed_candidates
        if not status.found:
            self.container_totals['frames_without'] += 1
            self._problem('no_container', f'no container in this depth frame ({status.reason}); '
                          'label pixels are used without the container step')

    def _on_capture(self, request: Any, response: Any) -> Any:
        """Use the next depth frame as the empty-container reference (waits up to 5 s)."""
        if self.pipeline.container is None or self.pipeline.container.config.mode != 'reference':
            response.success = False
            response.message = "container_mode is not 'reference'"
            return response
        with self._captured:
            self._capture_result = None
            self._capture.set()
            self._captured.wait_for(lambda: self._capture_result is not None, timeout=5.0)
            result = self._capture_result
        if result is None:
            self._capture.clear()
            response.success, response.message = False, 'no depth frame processed within 5 s'
        else:
            response.success, response.message = result
        return response

    def _publish(self, header: Any, result: GraspResult) -> None:
        """Publish the frame's outputs; nothing non-finite leaves the node (checked, counted)."""
        finite = [c for c in result.candidates if candidate_is_finite(c)]
        if len(finite) != len(result.candidates):
            self._problem('non_finite_output', f'{len(result.candidates) - len(finite)} '
                          'candidates with a non-finite pose or score were not published')
            result.candidates[:] = finite
        points = result.points
        shape = points.shape if result.organized else None
        if shape is None and points.size:     # organized clouds mark invalid points NaN (PCL)
            ok = np.isfinite(points['x']) & np.isfinite(points['y']) & np.isfinite(points['z'])
            if not ok.all():
                self._problem('non_finite_output', f'{int((~ok).sum())} non-finite cloud '
                              'points were not published')
                points = points[ok]
        self.pub_points.publish(array_to_pointcloud2(points.reshape(-1), header,
                                                     organized_shape=shape))
        self.pub_candidates.publish(candidate_array(result.candidates, header))
        self.pub_poses.publish(pose_array(result.candidates, header))
        self.pub_markers.publish(marker_array(result.candidates, header,
                                              self.pipeline.class_set, result.container))

    # --- service: the latest frame, or the next one within the timeout
    def _on_service(self, request: Any, response: Any) -> Any:
        graspable = self.pipeline.config.graspable_classes
        unknown = [n for n in request.class_names if n not in graspable]
        if unknown:
            response.success = False
            response.message = f'not graspable classes: {unknown}; graspable: {list(graspable)}'
            return response
        with self._results:
            if self.latest is None and request.timeout_s > 0:
                self._results.wait_for(lambda: self.latest is not None,
                                       timeout=float(request.timeout_s))
            latest = self.latest
        if latest is None:
            response.success = False
            response.message = 'no synchronized labels/depth frame processed yet'
            return response
        header, result = latest
        wanted = set(request.class_names)
        chosen = [c for c in result.candidates if not wanted or c.class_name in wanted]
        limit = request.max_candidates or self.pipeline.config.max_candidates
        response.candidates = candidate_array(chosen[:limit], header)
        response.success = True
        response.message = f'{len(response.candidates.candidates)} candidates'
        return response

    def _publish_diagnostics(self) -> None:
        if self.rates['depth'].total and not self.rates['camera_info'].total:
            self._problem('missing_camera_info', f'depth arrives but no CameraInfo on '
                          f'{self.params["camera_info_topic"]}; nothing can be processed')
        problems = self.problems.snapshot()
        level, message = 'ok', 'running'
        stale = self._stale_inputs()
        if stale:
            # A silent upstream (segmentation_node killed, a camera unplugged) is not "running".
            level, message = 'stale', '; '.join(f'no {name} for {since:.1f} s'
                                                for name, since in stale)
        elif self.rates['processed'].total == 0:
            level, message = 'warn', 'no synchronized frame processed yet'
        elif problems:
            level, message = 'warn', ', '.join(f'{k} x{v}' for k, v in problems.items())
        values: dict[str, object] = {f'{k}_rate_hz': m.rate_hz() for k, m in self.rates.items()}
        values.update({f'{name}_age_s': self.rates[name].seconds_since_last() or 0.0
                       for name in self._input_names})
        values.update({f'{name}_reliability': sub.current
                       for name, sub in zip(self._input_names, self.inputs)})
        values.update({
            'frames_processed': self.rates['processed'].total,
            'sync_emitted': self.sync.emitted, 'sync_dropped': sum(self.sync.dropped),
            'stamp_jumps': self.sync.stamp_jumps, 'class_source': self.class_source,
            'graspable_classes': ' '.join(self.pipeline.config.graspable_classes),
            'mailbox_dropped': self.mailbox.total_dropped(),
            'frame_ms_p50': self.frame_ms.percentile(50),
            'frame_ms_p95': self.frame_ms.percentile(95),
            'candidates_per_frame_mean': self.candidates_per_frame.mean(),
            **{f'problem:{k}': v for k, v in problems.items()}})
        statuses = [('grasp', level, message, values)]
        container = self._container_diagnostics()
        if container is not None:
            statuses.append(container)
        self.diagnostics.publish(statuses)

    def _stale_inputs(self) -> list[tuple[str, float]]:
        """Return (input, seconds silent) of the synchronized inputs silent too long."""
        limit = float(self.params['stale_after_s'])
        stale = []
        for name in self._input_names:
            since = self.rates[name].seconds_since_last()
            if since is not None and since > limit:
                stale.append((name, since))
        return stale

    def _container_diagnostics(self) -> tuple[str, str, str, dict] | None:
        """Return the container step's status: found or not (why), planes, what it removed."""
        detector = self.pipeline.container
        if detector is None or detector.config.mode == 'none':
            return None
        status, container = self.container_status, self._last_container
        values: dict[str, object] = {'mode': detector.config.mode,
                                     **{f'total_{k}': v for k, v in self.container_totals.items()}}
        if status is None:
            return 'container', 'warn', 'no frame processed yet', values
        values.update(found=status.found, reason=status.reason,
                      removed_pixels=status.removed_pixels,
                      removed_candidates=status.removed_candidates)
        if container is not None:
            values['floor_residual_m'] = (container.floor.residual_m if container.floor
                                          else 'floor hidden')
            values['walls'] = len(container.walls)
            values['wall_residuals_m'] = ' '.join(f'{w.residual_m:.4f}' for w in container.walls)
        if status.found:
            return 'container', 'ok', f'container {status.reason}', values
        return 'container', 'warn', f'no container: {status.reason}', values

    def destroy_node(self) -> None:
        """Stop the worker thread before the node goes."""
        self.mailbox.close()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C; exit 1 with a one-line reason when it cannot start."""
    # Two threads: the service may wait for a frame while subscriptions keep flowing.
    return run_node(GraspAssistNode, 'grasp_assist_node', args, threads=2)


if __name__ == '__main__':
    sys.exit(main())
