"""segmentation_node: semantic segmentation of one or several camera topics.

Callbacks only keep the newest frame of each camera (older unprocessed frames are dropped and
counted); one worker thread converts, batches all cameras through the engine and publishes
labels, masks, overlay, confidence and LabelInfo under `<camera>/segmentation/`. Images come and
go in their serialized form (`raw=True`, see `conversions.image_cdr`): rclpy's message
conversion would copy every frame's pixels four times more.
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import ColorRGBA
import torch

from seg_interfaces.msg import LabelInfo
from seg_perception.conversions import compressed_to_numpy, image_to_numpy, ImageConversionError
from seg_perception.conversions.camera_info import CameraInfoScaleError, scaled_intrinsics
from seg_perception.conversions.color import as_rgb8
from seg_perception.conversions.image_cdr import decode_image, encode_image
from seg_perception.frame_mailbox import LatestMailbox
from seg_perception.monitoring import LatencyStats, ProblemCounter, RateMeter, StampGaps
from seg_perception.nodes.diagnostics import DiagnosticsPublisher, reason_of
from seg_perception.nodes.parameters import declare_parameters, non_finite_parameters, \
    parameter_dict, ParamSpec
from seg_perception.nodes.qos import FollowingSubscription, latched_qos, sensor_qos
from seg_perception.nodes.runner import run_node
from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
from seg_perception.segmentation.node_settings import (
    camera_prefix,
    RUNTIME_PARAMETERS,
    SegmentationNodeSettings,
    SettingsError,
)

#: a best-effort camera losing more than this share of its frames gets a transport warning
LOSS_WARN_SHARE = 0.02
#: frames this large travel over UDP in fragments with stock Fast DDS (64 kB datagrams)
LARGE_FRAME_BYTES = 64_000

PARAMETERS = (
    ParamSpec('image_topics', ['camera/color/image_raw'],
              'Image topics to segment (sensor_msgs/Image, or CompressedImage when the topic '
              'ends in /compressed); outputs go to <topic without /image_raw>/segmentation/'),
    ParamSpec('model', 'default', "Model: 'default' (shipped), a registry name such as "
              "'lraspp_mobilenet_v3_large', or a .pt/.ts/.onnx file with a .json sidecar"),
    ParamSpec('model_spec', '', 'Sidecar JSON for the model when it does not sit beside it'),
    ParamSpec('backend', 'auto', "Runtime of the network: 'auto' (every installed runtime timed "
              "on the model at start-up, the fastest kept), 'torch', 'onnxruntime' or "
              "'openvino'"),
    ParamSpec('openvino_device', 'CPU', "OpenVINO device for backend openvino: 'CPU' or 'GPU' "
              '(an Intel GPU)'),
    ParamSpec('device', 'auto', "Inference device: 'auto' (cuda if present), 'cpu', 'cuda:N'"),
    ParamSpec('precision', 'fp16', 'fp32, fp16 or bf16 (fp16: GPU only; bf16: GPU, or CPUs '
              'with AVX512-BF16/AMX; not fp32 on a CPU: backend auto may take the shipped '
              'INT8 default model)'),
    ParamSpec('input_size', [0, 0], "Network input [height, width]; [0, 0] = the model's own"),
    ParamSpec('upsample', 'nearest', "Labels at input resolution by 'nearest' upsampling of "
              "labels or 'bilinear' upsampling of logits"),
    ParamSpec('classes_to_mask', ['box', 'polybag', 'envelope', 'cylinder'],
              'Classes that get a masks/<class> topic', runtime=True),
    ParamSpec('publish_overlay', True, 'Publish the colour overlay (rgb8)', runtime=True),
    ParamSpec('publish_confidence', False, 'Publish max softmax confidence (mono8 0-255)',
              runtime=True),
    ParamSpec('overlay_alpha', 0.5, 'Overlay blend weight of the class colours, 0..1',
              runtime=True),
    ParamSpec('min_region_pixels', 0, 'Relabel connected regions smaller than this (0 = off)',
              runtime=True),
    ParamSpec('refine', 'none', "Move class boundaries to colour edges before the argmax: 'none', "
              "'crf' (mean-field CRF, sharpest) or 'guided' (guided filter)", runtime=True),
    ParamSpec('morph', 'none', "Per-class 'open' (drop specks and spurs) or 'close' (fill "
              "gaps) of the label map, or 'none'", runtime=True),
    ParamSpec('morph_kernel_px', 3, 'Square kernel of morph, label-map pixels (1..63)',
              runtime=True),
    ParamSpec('qos_reliability', 'auto',
              "Input QoS reliability: 'auto' follows each camera's publishers (a reliable "
              "camera delivers every frame even over UDP), or 'best_effort' / 'reliable'"),
    ParamSpec('output_qos_reliability', 'reliable', 'Output QoS reliability'),
    ParamSpec('qos_depth', 3, 'DDS reader history per camera: bridges a late executor (the node '
              'keeps the newest frame and counts the skipped ones as dropped)'),
    ParamSpec('max_rate_hz', 0.0, 'Upper bound on processed frames/s per node (0 = unlimited)',
              runtime=True),
    ParamSpec('torch_threads', 0, 'CPU threads for inference (0 = torch default)'),
    ParamSpec('warmup_iterations', 2, 'Forward passes run at start-up before frames arrive'),
    ParamSpec('diagnostics_period_s', 1.0, 'Period of /diagnostics messages, seconds'),
    ParamSpec('stale_after_s', 3.0, 'A camera with no frame for this long is reported stale'),
    ParamSpec('max_input_pixels', 4096 * 4096,
              'Larger images, including compressed ones whose header announces more, are '
              'refused before decoding (a decompression bomb stalls every camera)'),
    ParamSpec('camera_info_topics', [],
              "CameraInfo topic of each image topic, in the same order ('' = none); [] = the "
              'one beside each image (<camera folder>/camera_info). The latest is republished '
              'as <prefix>/segmentation/camera_info with every label image',
              type_=Parameter.Type.STRING_ARRAY),
)


class _Camera:
    """Per-camera state: subscription, newest pending frame, publishers and statistics."""

    def __init__(self, topic: str, camera_info_topic: str = '') -> None:
        self.topic = topic
        self.prefix, self.compressed = camera_prefix(topic)
        self.camera_info_topic = camera_info_topic
        self.camera_info: CameraInfo | None = None  # the latest, set by the executor thread
        self.received = RateMeter()
        self.stamp_gaps = StampGaps()  # frames lost before they reached the node
        self.frame_bytes = 0  # size of the latest frame message
        self.published = RateMeter()
        self.end_to_end_ms = LatencyStats()
        self.problems = ProblemCounter()
        self.last_problem = ''
        self.publishers: dict[str, Any] = {}
        self.mask_publishers: dict[int, Any] = {}

    def report(self, reason: str, message: str) -> bool:
        """Count a problem of this camera; return True the first time its reason is seen."""
        self.last_problem = reason
        return self.problems.report(reason, message)

    def out(self, name: str) -> str:
        return f'{self.prefix}/segmentation/{name}' if self.prefix else f'segmentation/{name}'


class SegmentationWork:
    """The segmentation node's work, mixed into an rclpy Node or a LifecycleNode.

    `_set_up()` reads the parameters, loads the model and creates subscriptions, publishers and
    the diagnostics timer; `_tear_down()` removes them again. `SegmentationNode` sets up when it
    is constructed; `SegmentationLifecycleNode` on configure (and tears down on cleanup).
    """

    def _declare(self) -> dict[str, Any]:
        self.configured = False
        self.processing = threading.Lock()  # held by the worker while it handles a batch
        self.mailbox: LatestMailbox[tuple[Any, int]] = LatestMailbox()  # (msg, receive ns)
        self.mailbox.close()  # opened by _set_up()
        self._entities: list[Any] = []  # subscriptions, publishers, timers to destroy
        values = declare_parameters(self, PARAMETERS)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        return values

    def _set_up(self, values: dict[str, Any]) -> None:
        """Validate `values`, load the model and create the ROS entities (errors: raise)."""
        self.settings = SegmentationNodeSettings.from_mapping(values)
        s = self.settings
        self.engine = SegmentationEngine(EngineConfig(
            model=s.model, spec_path=s.model_spec or None, device=s.device,
            precision=s.precision, input_size=s.input_size, upsample=s.upsample,
            min_region_pixels=s.min_region_pixels, warmup_iterations=s.warmup_iterations,
            overlay_alpha=s.overlay_alpha, backend=s.backend,
            openvino_device=s.openvino_device, refine=s.refine, morph=s.morph,
            morph_kernel_px=s.morph_kernel_px))
        self.class_set = self.engine.class_set
        s.validate(self.class_set)  # classes_to_mask must exist in the model
        self.inference_ms = LatencyStats()
        self.mailbox = LatestMailbox()
        self._out_qos = sensor_qos(s.output_qos_reliability, 5)
        self.cameras = [_Camera(t, i) for t, i in zip(s.image_topics, s.camera_info_inputs())]
        instances = bool(getattr(self.engine.segmenter, 'produces_instances', False))
        for cam in self.cameras:
            msg_type = CompressedImage if cam.compressed else Image
            cam.input = FollowingSubscription(
                self, msg_type, cam.topic, lambda msg, c=cam: self._on_image(c, msg),
                reliability=s.qos_reliability, depth=s.qos_depth, raw=not cam.compressed,
                on_change=lambda old, new, t=cam.topic: self.get_logger().info(
                    f'{t}: input reliability {old} -> {new} (following its publishers)'))
            self._entities.append(cam.input)
            for name in ('labels', 'overlay', 'confidence') + (('instances',) * instances):
                cam.publishers[name] = self.create_publisher(Image, cam.out(name), self._out_qos)
            if cam.camera_info_topic:
                self._entities.append(FollowingSubscription(
                    self, CameraInfo, cam.camera_info_topic,
                    lambda msg, c=cam: setattr(c, 'camera_info', msg),
                    reliability=s.qos_reliability, depth=1))
                cam.publishers['camera_info'] = self.create_publisher(
                    CameraInfo, cam.out('camera_info'), self._out_qos)
            cam.publishers['label_info'] = self.create_publisher(
                LabelInfo, cam.out('label_info'), latched_qos())
            self._entities.extend(cam.publishers.values())
        self._mask_ids: tuple[int, ...] = ()
        self._update_mask_publishers(s.classes_to_mask)
        self._publish_label_info()
        self.diagnostics = DiagnosticsPublisher(self)
        self._entities.append(self.diagnostics.publisher)
        self._entities.append(self.create_timer(s.diagnostics_period_s,
                                                self._publish_diagnostics))
        self.configured = True
        for note in self.engine.notes:
            self.get_logger().info(note)
        self.get_logger().info(
            f'model {self.engine.model_name!r} on {self.engine.device} with backend '
            f'{self.engine.backend} '
            f'({len(self.class_set)} classes, input {self.engine.input_size}); '
            f'cameras: {", ".join(c.topic for c in self.cameras)}')

    def _tear_down(self) -> None:
        """Stop taking frames and destroy what `_set_up()` created (the model goes, too)."""
        self.mailbox.close()
        self.configured = False
        for cam in getattr(self, 'cameras', []):
            self._entities.extend(cam.mask_publishers.values())
            cam.mask_publishers.clear()
        for entity in self._entities:
            if isinstance(entity, FollowingSubscription):
                entity.destroy()
            elif isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            elif isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_publisher(entity)
        self._entities = []
        self.cameras = []
        self.engine = None

    # --- callbacks (executor thread): keep only the newest frame per camera
    def _on_image(self, cam: _Camera, msg: Any) -> None:
        if self.mailbox.closed:  # not processing (a lifecycle node that is not active)
            return
        cam.received.tick()
        stamp_ns = _stamp_ns(msg)
        if stamp_ns is not None:
            cam.stamp_gaps.add(stamp_ns)
        cam.frame_bytes = len(msg) if isinstance(msg, (bytes, bytearray, memoryview)) \
            else len(getattr(msg, 'data', b''))
        self.mailbox.put(cam.topic, (msg, time.monotonic_ns()))

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        if not self.configured:  # read (and checked) when the node is configured
            return SetParametersResult(successful=True)
        changes = parameter_dict(params)
        fixed = [name for name in changes if name not in RUNTIME_PARAMETERS]
        if fixed:
            return SetParametersResult(successful=False, reason=(
                f'{", ".join(fixed)} cannot change while running; restart the node (a '
                'lifecycle node: cleanup, then configure)'))
        bad = non_finite_parameters(changes)
        if bad:
            return SetParametersResult(successful=False, reason=(
                f'{", ".join(bad)} must be finite, got '
                + ', '.join(f'{name}={changes[name]!r}' for name in bad)))
        values = {**{f: getattr(self.settings, f) for f in self.settings.__dataclass_fields__},
                  **changes}
        values['input_size'] = list(self.settings.input_size or (0, 0))
        try:
            candidate = SegmentationNodeSettings.from_mapping(values)
            candidate.validate(self.class_set)
        except (SettingsError, TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        # The worker reads these between frames; each assignment is atomic.
        self._update_mask_publishers(candidate.classes_to_mask)
        self.engine.set_min_region_pixels(candidate.min_region_pixels)
        self.engine.set_refine(candidate.refine)
        self.engine.set_morph(candidate.morph, candidate.morph_kernel_px)
        self.settings = candidate
        return SetParametersResult(successful=True)

    def _update_mask_publishers(self, class_names: tuple[str, ...]) -> None:
        wanted = {self.class_set.by_name(n).id for n in class_names}
        for cam in self.cameras:
            for cid in set(cam.mask_publishers) - wanted:
                self.destroy_publisher(cam.mask_publishers.pop(cid))
            for cid in wanted - set(cam.mask_publishers):
                name = self.class_set.by_id(cid).name
                cam.mask_publishers[cid] = self.create_publisher(
                    Image, cam.out(f'masks/{name}'), self._out_qos)
        self._mask_ids = tuple(sorted(wanted))

    def _publish_label_info(self) -> None:
        msg = LabelInfo(unlabeled_id=255, model_name=self.engine.model_name)
        msg.input_height, msg.input_width = (int(v) for v in self.engine.input_size)
        for c in self.class_set:
            msg.class_ids.append(c.id)
            msg.class_names.append(c.name)
            r, g, b = (v / 255.0 for v in c.color)
            msg.colors.append(ColorRGBA(r=r, g=g, b=b, a=1.0))
        msg.header.stamp = self.get_clock().now().to_msg()
        for cam in self.cameras:
            cam.publishers['label_info'].publish(msg)

    # --- worker thread: convert, batch, infer, publish
    def run_worker(self) -> None:
        """Process frames until the node is destroyed (or stop_worker() is called)."""
        if self.settings.torch_threads > 0:
            # Set here: the thread count of torch's intra-op pool is taken per calling thread.
            torch.set_num_threads(self.settings.torch_threads)
        next_allowed = 0.0
        while not self.mailbox.closed:
            # Rate limit: frames keep arriving (and replacing each other) while we wait.
            if self.mailbox.wait_closed(max(0.0, next_allowed - time.monotonic())):
                return
            pending = self.mailbox.take(timeout_s=0.5)
            if not pending:
                continue
            rate = self.settings.max_rate_hz
            next_allowed = time.monotonic() + (1.0 / rate if rate > 0 else 0.0)
            batch = [(c, pending[c.topic]) for c in self.cameras if c.topic in pending]
            try:
                with self.processing:
                    if not self.mailbox.closed:  # closed meanwhile: stopping, publish nothing
                        self._process(batch)
            except Exception as exc:  # noqa: B902 - a worker must survive any frame
                first = [cam.report('processing_error', str(exc)) for cam, _ in batch]
                if any(first):
                    self.get_logger().error(f'frame processing failed: {exc!r}')

    def _decode(self, cam: _Camera, msg: Any) -> tuple[Any, Any]:
        """Return (rgb8 frame, header) of a CompressedImage or a serialized Image."""
        limit = self.settings.max_input_pixels
        if cam.compressed:
            return compressed_to_numpy(msg, desired='rgb8', max_pixels=limit), msg.header
        image = decode_image(msg)
        if image.width * image.height > limit:
            raise ImageConversionError(f'too_many_pixels: image is {image.width}x{image.height}'
                                       f' = {image.width * image.height} pixels, over '
                                       f'max_input_pixels {limit}', reason='too_many_pixels')
        return as_rgb8(image_to_numpy(image), image.encoding), image.header

    def _process(self, batch: list[tuple[_Camera, tuple[Any, int]]]) -> None:
        frames, valid = [], []
        for cam, (msg, received_ns) in batch:
            try:
                frame, header = self._decode(cam, msg)
                frames.append(frame)
                valid.append((cam, header, received_ns))
            except (ImageConversionError, ValueError) as exc:
                reason = f'bad_input:{reason_of(exc)}'
                if cam.report(reason, str(exc)):
                    self.get_logger().warning(
                        f'{cam.topic}: frame refused ({exc}); counted in diagnostics, '
                        'further ones are not logged')
        if not frames:
            return
        s = self.settings
        cams = [cam for cam, _, _ in valid]
        # Lazy outputs: masks, overlay and confidence cost full-resolution work; compute them
        # only while someone subscribes (labels always go out).
        results = self.engine.segment(
            frames, masks_for=[cid for cid in self._mask_ids
                               if _subscribed(c.mask_publishers.get(cid) for c in cams)],
            confidence=s.publish_confidence and _subscribed(
                c.publishers['confidence'] for c in cams),
            overlay=s.publish_overlay and _subscribed(c.publishers['overlay'] for c in cams),
            overlay_alpha=s.overlay_alpha)
        self.inference_ms.add(results[0].inference_ms)
        for (cam, header, received_ns), result in zip(valid, results):
            pubs = cam.publishers
            # Counted first: whoever got these labels sees them in the next /diagnostics.
            cam.published.tick()
            pubs['labels'].publish(encode_image(result.labels, 'mono8', header))
            for cid, mask in result.masks.items():
                pub = cam.mask_publishers.get(cid)
                if pub is not None:
                    pub.publish(encode_image(mask, 'mono8', header))
            if result.overlay is not None:
                pubs['overlay'].publish(encode_image(result.overlay, 'rgb8', header))
            if result.confidence is not None:
                pubs['confidence'].publish(encode_image(result.confidence, 'mono8', header))
            if result.instances is not None and 'instances' in pubs:
                pubs['instances'].publish(encode_image(result.instances, 'mono16', header))
            if 'camera_info' in pubs:
                self._publish_camera_info(cam, header, result.labels.shape)
            cam.end_to_end_ms.add((time.monotonic_ns() - received_ns) / 1e6)

    def _publish_camera_info(self, cam: _Camera, header: Any, shape: tuple[int, ...]) -> None:
        """Republish the camera's latest CameraInfo with the labels' stamp and size."""
        info = cam.camera_info
        if info is None:
            return
        height, width = int(shape[0]), int(shape[1])
        k, p = info.k, info.p
        if _binned_or_cropped(info):  # K/P and the size are the full sensor's: keep them
            height, width = info.height, info.width
        else:
            try:
                k, p = scaled_intrinsics(k, p, (int(info.width), int(info.height)),
                                         (width, height))
            except CameraInfoScaleError as exc:
                if cam.report(f'bad_camera_info:{exc.reason}', str(exc)):
                    self.get_logger().warning(f'{cam.camera_info_topic}: {exc}; not '
                                              'republished, counted in diagnostics')
                return
        out = CameraInfo(height=height, width=width, distortion_model=info.distortion_model,
                         d=info.d, k=k, r=info.r, p=p, binning_x=info.binning_x,
                         binning_y=info.binning_y, roi=info.roi)
        out.header.stamp.sec, out.header.stamp.nanosec = header.stamp.sec, header.stamp.nanosec
        out.header.frame_id = header.frame_id
        cam.publishers['camera_info'].publish(out)

    # --- diagnostics
    def _publish_diagnostics(self) -> None:
        statuses = []
        for cam in self.cameras:
            problems = cam.problems.snapshot()
            since = cam.received.seconds_since_last()
            transport_loss = _transport_loss(cam)
            level, message = 'ok', 'running'
            if since is None:
                level, message = 'warn', 'no frame received yet'
            elif since > self.settings.stale_after_s:
                level, message = 'stale', f'no frame for {since:.1f} s'
            elif transport_loss:
                level, message = 'warn', transport_loss
            elif problems:
                level, message = 'warn', 'refused frames: ' + ', '.join(
                    f'{k} x{v}' for k, v in problems.items())
            statuses.append((cam.topic, level, message, {
                'input_rate_hz': cam.received.rate_hz(),
                'output_rate_hz': cam.published.rate_hz(),
                'frames_received': cam.received.total,
                'frames_published': cam.published.total,
                'frames_dropped': self.mailbox.dropped.get(cam.topic, 0),
                'input_reliability': cam.input.current,
                'frames_lost_before_arrival': cam.stamp_gaps.lost,
                'end_to_end_ms_p50': cam.end_to_end_ms.percentile(50),
                'end_to_end_ms_p95': cam.end_to_end_ms.percentile(95),
                'inference_ms_p50': self.inference_ms.percentile(50),
                'device': str(self.engine.device),
                'backend': self.engine.backend,
                'model': self.engine.model_name,
                'problems_total': sum(problems.values()),
                'last_problem': cam.last_problem,
                **{f'problem:{k}': v for k, v in problems.items()},
            }))
        self.diagnostics.publish(statuses)

    def stop_worker(self) -> None:
        """Make run_worker() return after the frame in progress."""
        self.mailbox.close()


class SegmentationNode(SegmentationWork, Node):
    """Segment camera images and publish labels, per-class masks, overlay and class info."""

    def __init__(self, *, worker_thread: bool = True, **kwargs: Any) -> None:
        """Load the model and subscribe; inference runs in `run_worker()`.

        worker_thread: start `run_worker()` in a thread of its own. `main()` passes False and
        runs it in the main thread instead, with the executor spinning in a thread: PyTorch's
        CPU kernels measured ~35% slower here when called from a non-main thread.
        """
        super().__init__('segmentation_node', **kwargs)
        self._set_up(self._declare())
        self._worker = threading.Thread(target=self.run_worker, name='segmentation_worker',
                                        daemon=True)
        if worker_thread:
            self._worker.start()

    def destroy_node(self) -> None:
        """Stop the worker thread before the node goes."""
        self.stop_worker()
        worker = getattr(self, '_worker', None)  # absent when set-up failed
        if worker is not None and worker.is_alive():
            worker.join(timeout=5.0)
        super().destroy_node()


def _binned_or_cropped(info: CameraInfo) -> bool:
    """Return True when binning or an ROI is set: K/P are then the full sensor's (REP 104)."""
    return (info.binning_x > 1 or info.binning_y > 1 or info.roi.width > 0
            or info.roi.height > 0)


def _stamp_ns(msg: Any) -> int | None:
    """Return a frame's header stamp in ns (serialized little-endian CDR or a message)."""
    if isinstance(msg, (bytes, bytearray, memoryview)):
        if len(msg) < 12 or bytes(msg[:2]) != b'\x00\x01':
            return None
        sec, nanosec = struct.unpack_from('<iI', msg, 4)
        return sec * 1_000_000_000 + nanosec
    stamp = getattr(getattr(msg, 'header', None), 'stamp', None)
    return None if stamp is None else stamp.sec * 1_000_000_000 + stamp.nanosec


def _transport_loss(cam: _Camera) -> str | None:
    """Return a warning when a best-effort camera's large frames are being lost in transport."""
    share = cam.stamp_gaps.lost_share()
    if cam.input.current != 'best_effort' or share < LOSS_WARN_SHARE \
            or cam.frame_bytes < LARGE_FRAME_BYTES:
        return None
    return (f'best-effort camera: ~{cam.stamp_gaps.lost} of '
            f'{cam.stamp_gaps.lost + cam.stamp_gaps.seen} frames lost before they arrived '
            f'({share:.0%}; {cam.frame_bytes / 1e6:.1f} MB frames over UDP lose fragments): '
            'make the camera publish reliable, or set FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA '
            '(or config/fastdds_shm.xml) in both processes; see seg_perception doctor --topic '
            f'{cam.topic}')


def _subscribed(publishers: Any) -> bool:
    """Return True when any of the publishers has a subscriber."""
    return any(p is not None and p.get_subscription_count() > 0 for p in publishers)


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C; exit 1 with a one-line reason when it cannot start."""
    return run_node(lambda: SegmentationNode(worker_thread=False), 'segmentation_node', args,
                    main_thread_work=lambda node: node.run_worker())


if __name__ == '__main__':
    sys.exit(main())
