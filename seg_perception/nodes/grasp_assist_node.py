"""grasp_assist_node: segmentation labels + registered depth -> item clouds and grasp candidates.

Labels, depth, its CameraInfo (and optionally colour) are matched by an approximate-time
synchronizer (like depth_image_proc, which pairs each depth image with its CameraInfo); the newest
matched set waits in a one-slot mailbox (older ones are dropped and counted) for a worker thread
that runs the ROS-free GraspPipeline and publishes with the depth image's header.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import sys
import threading
from typing import Any

from geometry_msgs.msg import PoseArray
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from threadpoolctl import threadpool_limits
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
from seg_perception.grasp.frames import RigidTransform, transform_result, TransformError
from seg_perception.monitoring import LatencyStats, ProblemCounter, RateMeter
from seg_perception.nodes.diagnostics import DiagnosticsPublisher, reason_of
from seg_perception.nodes.grasp_messages import candidate_array, marker_array, pose_array
from seg_perception.nodes.parameters import declare_parameters, merged_parameter_change, \
    non_finite_parameters, ParamSpec
from seg_perception.nodes.qos import FollowingSubscription, latched_qos, sensor_qos
from seg_perception.nodes.runner import run_node
from seg_perception.time_sync import ApproximateTimeSynchronizer, stamp_ns

try:  # a ROS install has tf2; the PyPI wheels of this machine do not
    import tf2_ros
    TF2_MISSING = ''
except ImportError as _exc:
    tf2_ros = None
    TF2_MISSING = f'tf2_ros is not importable here ({_exc})'

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
    ParamSpec('base_from_camera', [],
              'Pose of the camera optical frame in the base frame (hand-eye calibration): 7 '
              'values x y z qx qy qz qw (metres; a quaternion within 1e-3 of unit norm is '
              'normalised, others refused) or 16 (row-major 4x4). The workspace box is in '
              'that frame, and it is the transform into target_frame ([] = none)',
              type_=Parameter.Type.DOUBLE_ARRAY),
    ParamSpec('target_frame', '',
              "Frame of every output (cloud, candidates, poses, markers), e.g. base_link ('' = "
              "the depth image's optical frame): from base_from_camera when given, else tf2 at "
              "each frame's stamp"),
    ParamSpec('tf_timeout_s', 0.05,
              "Longest wait for the tf2 transform at a frame's stamp; a frame without one is "
              'not published and counted as tf_unavailable'),
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
    ParamSpec('container_floor_bend', _CONTAINER.floor_bend,
              "In 'auto', fit the bin's floor as a smooth surface (its plane plus a quadratic "
              'bend: plastic bins sag and bulge by 1-3 cm) instead of a plane'),
    ParamSpec('diagnostics_period_s', 1.0, 'Period of /diagnostics messages, seconds'),
    ParamSpec('stale_after_s', 3.0,
              'An input (labels, depth, camera_info) silent for this long after it has been '
              'seen is reported STALE in /diagnostics'),
)
_CONFIG_FIELDS = ('graspable_classes', 'erosion_px', 'discontinuity_m', 'min_depth_m',
                  'max_depth_m', 'voxel_size_m', 'plane_fit', 'min_region_pixels',
                  'cup_radius_m', 'gripper_max_opening_m', 'max_approach_angle_deg',
                  'max_candidates', 'nms_distance_m', 'min_score', 'organized_cloud')
#: Parameters a running node applies: validated like at start-up, the pipeline rebuilt and
#: swapped between frames. The others (topics, QoS, queue depth, files read once, the
#: diagnostics timer) need new subscriptions or a new start: refused with the reason.
RUNTIME_PARAMETERS = frozenset(_CONFIG_FIELDS + (
    'grasp_modes', 'workspace_min', 'workspace_max', 'base_from_camera', 'gravity_direction',
    'target_frame', 'tf_timeout_s', 'container_mode', 'container_surface_margin_m',
    'container_wall_clearance_m', 'container_floor_bend', 'scale_camera_info', 'sync_slop_s',
    'max_stamp_jump_s', 'stale_after_s'))
PARAMETERS = tuple(dataclasses.replace(spec, runtime=spec.name in RUNTIME_PARAMETERS)
                   for spec in PARAMETERS)


def grasp_config_from_parameters(p: dict[str, Any]) -> GraspConfig:
    """Build the pipeline configuration from parameter values (GraspConfig validates them)."""
    kwargs = {name: p[name] for name in _CONFIG_FIELDS}
    kwargs['graspable_classes'] = tuple(p['graspable_classes'])
    for name in ('workspace_min', 'workspace_max', 'gravity_direction'):
        kwargs[name] = tuple(p[name]) if len(p[name]) else None
    extrinsic = base_from_camera_from_parameters(p)
    if extrinsic is not None:
        kwargs['base_from_camera'] = tuple(extrinsic.matrix.reshape(-1))
    return GraspConfig(**kwargs)


def base_from_camera_from_parameters(p: dict[str, Any]) -> RigidTransform | None:
    """Return the static extrinsic (7 or 16 values; TransformError says why not), or None."""
    values = list(p['base_from_camera'])
    return RigidTransform.from_parameter(values) if values else None


@dataclass(frozen=True)
class GraspNodeSettings:
    """What the node reads per frame, validated by the same code at start-up and at runtime."""

    config: GraspConfig                 # graspable_classes: all wanted names
    grasp_modes: dict[str, tuple[str, ...]]
    container: ContainerConfig
    target_frame: str                   # '' = the depth image's frame
    base_from_camera: RigidTransform | None
    tf_timeout_s: float


def settings_from_parameters(p: dict[str, Any], *, tf_available: bool) -> GraspNodeSettings:
    """Validate every parameter value the node uses; raise ValueError naming the bad one."""
    non_finite = non_finite_parameters(p)
    if non_finite:
        raise ValueError(f'{", ".join(non_finite)} must be finite')
    names = list(p['graspable_classes'])
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'graspable_classes names {duplicates} more than once')
    if not p['stale_after_s'] > 0:
        raise ValueError(f'stale_after_s must be > 0, got {p["stale_after_s"]}')
    if not (p['sync_slop_s'] >= 0 and p['queue_size'] >= 1):
        raise ValueError('sync_slop_s must be >= 0 and queue_size >= 1, got '
                         f'{p["sync_slop_s"]} and {p["queue_size"]}')
    if not p['max_stamp_jump_s'] > p['sync_slop_s']:     # NaN fails too
        raise ValueError(f'max_stamp_jump_s must be > sync_slop_s, got {p["max_stamp_jump_s"]}')
    if not 0 < p['tf_timeout_s'] <= 1.0:
        raise ValueError(f'tf_timeout_s must be in (0, 1] s, got {p["tf_timeout_s"]}')
    container = container_config_from_parameters(p)
    if p['container_reference_file'] and container.mode != 'reference':
        raise ValueError('container_reference_file is set but container_mode is '
                         f"{container.mode!r}, not 'reference'")
    target = str(p['target_frame'])
    if target != target.strip() or target.startswith('/'):
        raise ValueError(f'target_frame must be a tf2 frame id without a leading / or '
                         f'spaces, got {target!r}')
    extrinsic = base_from_camera_from_parameters(p)
    if target and extrinsic is None and not tf_available:
        raise ValueError(f'target_frame {target!r} needs base_from_camera (x y z qx qy qz qw, '
                         f'the camera optical frame in {target!r}): {TF2_MISSING}')
    return GraspNodeSettings(config=grasp_config_from_parameters(p),
                             grasp_modes=parse_grasp_modes(p['grasp_modes']),
                             container=container, target_frame=target,
                             base_from_camera=extrinsic, tf_timeout_s=float(p['tf_timeout_s']))


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
                           wall_clearance_m=float(p['container_wall_clearance_m']),
                           floor_bend=p['container_floor_bend'])


class GraspAssistNode(Node):
    """Publish graspable item clouds and suction/parallel candidates from labels and depth."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('grasp_assist_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self.params = p
        self.settings = settings_from_parameters(p, tf_available=tf2_ros is not None)
        # (ids, names, colours) of the last LabelInfo accepted; None: the built-in classes.
        self._label_classes: tuple[list, list, list] | None = None
        self.class_source = 'built-in (no LabelInfo yet)'
        self.pipeline = self._build_pipeline(self.settings, None, self.settings.container,
                                             strict=False)
        self._label_info_topic = p['label_info_topic'] or label_info_topic_for(p['labels_topic'])
        self._reference_file_depth: np.ndarray | None = None
        if p['container_reference_file']:
            self._reference_file_depth = load_depth_file(
                p['container_reference_file'],
                units_per_m=float(p['container_reference_units_per_m']))
        # The reference file's depth, set on the next frame (again after a container change).
        self._reference_depth = self._reference_file_depth
        self._tf_buffer: Any = None
        self._ensure_tf(self.settings)
        self._capture = threading.Event()          # capture_container_reference requested
        self._captured = threading.Condition()     # guards _capture_result
        self._capture_result: tuple[bool, str] | None = None
        self.container_status: ContainerStatus | None = None
        self.container_totals = {'frames_without': 0, 'removed_pixels': 0,
                                 'removed_candidates': 0}
        self._last_container: Container | None = None
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
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f'graspable classes {list(self.pipeline.config.graspable_classes)}; inputs '
            f'{", ".join(t for _, t, _ in inputs)}; outputs in {self._frame_description()}')

    def _build_pipeline(self, settings: GraspNodeSettings,
                        label_classes: tuple[list, list, list] | None,
                        container: ContainerConfig | Any, *, strict: bool) -> GraspPipeline:
        """Return a pipeline for `settings` over the LabelInfo classes or the built-in set.

        Graspable names missing from the LabelInfo raise ClassSetError. With the built-in set
        they are left out at start-up (the LabelInfo of another model may bring them, e.g.
        VOC's 'bottle') and refused at runtime (`strict`): a change names the current classes.
        """
        wanted = settings.config.graspable_classes
        if label_classes is not None:
            classes = class_set_from_label_info(*label_classes, wanted, settings.grasp_modes)
            return GraspPipeline(settings.config, classes, container=container)
        builtin = ClassSet.default()
        missing = [n for n in wanted if n not in builtin.names]
        if strict and missing:
            raise ClassSetError(f'graspable classes {missing} are not in the current class set '
                                f'({self.class_source}): {list(builtin.names)}')
        known = tuple(n for n in wanted if n in builtin.names)
        return GraspPipeline(dataclasses.replace(settings.config, graspable_classes=known),
                             builtin, container=container)

    def _ensure_tf(self, settings: GraspNodeSettings) -> None:
        """Start listening to tf2 when outputs go to a target_frame without a static extrinsic."""
        if (settings.target_frame and settings.base_from_camera is None
                and self._tf_buffer is None and tf2_ros is not None):
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)

    def _frame_description(self) -> str:
        s = self.settings
        if not s.target_frame:
            return "the depth image's optical frame"
        source = 'base_from_camera' if s.base_from_camera is not None else 'tf2'
        return f'{s.target_frame!r} (transform from {source})'

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Apply a change through the start-up validation, or refuse it with the reason."""
        values, reason = merged_parameter_change(self.params, params, RUNTIME_PARAMETERS)
        if values is None:
            return SetParametersResult(successful=False, reason=reason)
        try:
            settings = settings_from_parameters(values, tf_available=tf2_ros is not None)
            detector = self.pipeline.container
            keep = detector is not None and detector.config == settings.container
            pipeline = self._build_pipeline(settings, self._label_classes,
                                            detector if keep else settings.container,
                                            strict=True)
        except (ValueError, KeyError) as exc:   # ClassSetError, TransformError, ContainerError
            return SetParametersResult(successful=False, reason=str(exc))
        self.sync.slop_ns = int(values['sync_slop_s'] * 1e9)
        self.sync.max_jump_ns = int(values['max_stamp_jump_s'] * 1e9)
        if not keep:   # a new container step: the reference file applies to it again
            self._reference_depth = self._reference_file_depth
        self._ensure_tf(settings)
        # The worker reads each of these once per frame; every assignment is atomic.
        self.params, self.settings, self.pipeline = values, settings, pipeline
        self.get_logger().info(f'parameters changed: {", ".join(p.name for p in params)}; '
                               f'outputs in {self._frame_description()}')
        return SetParametersResult(successful=True)

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
        label_classes = (list(msg.class_ids), list(msg.class_names),
                         [(c.r, c.g, c.b) for c in msg.colors])
        try:
            pipeline = self._build_pipeline(self.settings, label_classes,
                                            self.pipeline.container, strict=True)
        except ClassSetError as exc:
            self._problem('label_info_refused', f'LabelInfo of model {msg.model_name!r} '
                          f'refused: {exc}')
            if self.class_source.startswith('built-in'):    # do not wait for it any longer
                self.class_source = 'built-in (LabelInfo refused)'
            return
        self._label_classes, self.pipeline = label_classes, pipeline
        self.class_source = f'LabelInfo of model {msg.model_name!r}'
        self.get_logger().info(f'classes from {self.class_source}: graspable '
                               f'{[c.name for c in pipeline.class_set.graspable()]}')

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
        # One read of each per frame: a parameter change swaps them between frames.
        pipeline, settings = self.pipeline, self.settings
        if self.class_source.startswith('built-in'):
            if (self.class_source == 'built-in (no LabelInfo yet)'
                    and self.count_publishers(self._label_info_topic)):
                self._problem('waiting_for_label_info', f'a LabelInfo publisher is on '
                              f'{self._label_info_topic} but no LabelInfo arrived yet: frames '
                              'wait for the class set')
                return
            missing = [n for n in settings.config.graspable_classes
                       if n not in pipeline.class_set.names]
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
                                           f'{labels_msg.encoding!r}',
                                           reason=f'labels_encoding:{labels_msg.encoding}')
            labels = image_to_numpy(labels_msg)
            rgb = None
            if 'color' in msgs:
                rgb = as_rgb8(image_to_numpy(msgs['color']), msgs['color'].encoding)
        except (ImageConversionError, UnsupportedDepthEncodingError, ValueError) as exc:
            self._problem(f'bad_input:{reason_of(exc)}', f'frame refused: {exc}')
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
        self._update_reference(depth_m, camera, pipeline)
        result = pipeline.process(labels, depth_m, camera, rgb=rgb)
        self._account_container(result)
        framed = self._in_target_frame(settings, depth_msg.header, result)
        if framed is None:
            return
        header, result = framed
        self._publish(header, result, pipeline.class_set)
        self.frame_ms.add(result.timings_ms['total'])
        self.candidates_per_frame.add(len(result.candidates))
        self.rates['processed'].tick()
        with self._results:
            self.latest = (header, result)
            self._results.notify_all()

    def _in_target_frame(self, settings: GraspNodeSettings, header: Header,
                         result: GraspResult) -> tuple[Header, GraspResult] | None:
        """Return the frame's header and result in target_frame; None (counted) without tf."""
        target = settings.target_frame
        if not target or target == header.frame_id:
            return header, result
        transform = settings.base_from_camera
        if transform is None:
            transform = self._lookup_transform(target, header, settings.tf_timeout_s)
            if transform is None:
                return None
        return Header(stamp=header.stamp, frame_id=target), transform_result(result, transform)

    def _lookup_transform(self, target: str, header: Header,
                          timeout_s: float) -> RigidTransform | None:
        """Return tf2's target <- depth frame transform at the frame's stamp, or None (counted)."""
        stamp = f'{header.stamp.sec}.{header.stamp.nanosec:09d}'
        try:
            if self._tf_buffer is None:
                raise TransformError(TF2_MISSING or 'no tf2 listener')
            msg = self._tf_buffer.lookup_transform(target, header.frame_id,
                                                   Time.from_msg(header.stamp),
                                                   timeout=Duration(seconds=timeout_s))
            t, q = msg.transform.translation, msg.transform.rotation
            return RigidTransform.from_pose((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
        except Exception as exc:  # noqa: B902 - tf2's exceptions; TransformError
            self._problem('tf_unavailable', f'no transform {header.frame_id!r} -> {target!r} at '
                          f'{stamp} s within {timeout_s} s: {exc}; frame not published')
            return None

    def _update_reference(self, depth_m: np.ndarray, camera: PinholeCamera,
                          pipeline: GraspPipeline) -> None:
        """Set the reference container from the file (first frame) or a requested capture."""
        detector = pipeline.container
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

    def _publish(self, header: Any, result: GraspResult, class_set: ClassSet) -> None:
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
        self.pub_markers.publish(marker_array(result.candidates, header, class_set,
                                              result.container))

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
            'output_frame': self._frame_description(),
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
            bend = container.floor_bend
            values['floor_bend_m'] = (f'{bend.low_m:+.4f}..{bend.high_m:+.4f} (residual '
                                      f'{bend.residual_m:.4f})' if bend is not None else 'none')
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
    # The pipeline's matrix products are small ((K, 3) x (3, N)): a multi-threaded BLAS only
    # adds hand-offs, and on a loaded robot computer (a segmentation network on the same
    # cores) its threads wait for each other: 1.7x slower frames measured under load
    # (docs/benchmarks.md). One BLAS thread for this process.
    threadpool_limits(limits=1, user_api='blas')
    # Two threads: the service may wait for a frame while subscriptions keep flowing.
    return run_node(GraspAssistNode, 'grasp_assist_node', args, threads=2)


if __name__ == '__main__':
    sys.exit(main())
