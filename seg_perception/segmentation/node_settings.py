"""Validated settings of the segmentation node (ROS-free, so they are testable without rclpy)."""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Mapping

from seg_perception.classes import ClassSet
from seg_perception.segmentation.backends import BACKENDS
from seg_perception.segmentation.postprocess import MORPH_OPS
from seg_perception.segmentation.refine import REFINE_MODES

PRECISIONS = ('fp32', 'fp16', 'bf16')
UPSAMPLING = ('nearest', 'bilinear')
RELIABILITIES = ('best_effort', 'reliable')
#: Parameters a running node accepts; the others need a restart (model, topics, device...).
RUNTIME_PARAMETERS = ('classes_to_mask', 'publish_overlay', 'publish_confidence', 'overlay_alpha',
                      'min_region_pixels', 'max_rate_hz', 'refine', 'morph', 'morph_kernel_px')


class SettingsError(ValueError):
    """Raised when a parameter value is refused; the message names the parameter."""


@dataclass(frozen=True)
class SegmentationNodeSettings:
    """Everything the segmentation node reads from its parameters."""

    image_topics: tuple[str, ...]
    model: str
    model_spec: str
    device: str
    precision: str
    input_size: tuple[int, int] | None
    upsample: str
    classes_to_mask: tuple[str, ...]
    publish_overlay: bool
    publish_confidence: bool
    overlay_alpha: float
    min_region_pixels: int
    qos_reliability: str
    output_qos_reliability: str
    qos_depth: int
    max_rate_hz: float
    torch_threads: int
    warmup_iterations: int
    diagnostics_period_s: float
    stale_after_s: float
    max_input_pixels: int = 4096 * 4096
    camera_info_topics: tuple[str, ...] = ()  # parallel to image_topics; () = derived
    backend: str = 'auto'  # see seg_perception.segmentation.backends
    openvino_device: str = 'CPU'
    refine: str = 'none'  # logit refinement, see seg_perception.segmentation.refine
    morph: str = 'none'  # label-map opening/closing, see postprocess.morph_labels
    morph_kernel_px: int = 3

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> 'SegmentationNodeSettings':
        """Build and validate settings from a {parameter: value} mapping."""
        size = tuple(int(v) for v in values['input_size'])
        if size and (len(size) != 2 or min(size) < 0):
            raise SettingsError(
                f'input_size must be [height, width] (or [0, 0]), got {list(size)}')
        settings = cls(
            image_topics=tuple(str(t) for t in values['image_topics']),
            model=str(values['model']), model_spec=str(values['model_spec']),
            device=str(values['device']), precision=str(values['precision']),
            input_size=None if not size or 0 in size else (size[0], size[1]),
            upsample=str(values['upsample']),
            classes_to_mask=tuple(str(c) for c in values['classes_to_mask']),
            publish_overlay=bool(values['publish_overlay']),
            publish_confidence=bool(values['publish_confidence']),
            overlay_alpha=float(values['overlay_alpha']),
            min_region_pixels=int(values['min_region_pixels']),
            qos_reliability=str(values['qos_reliability']),
            output_qos_reliability=str(values['output_qos_reliability']),
            qos_depth=int(values['qos_depth']), max_rate_hz=float(values['max_rate_hz']),
            torch_threads=int(values['torch_threads']),
            warmup_iterations=int(values['warmup_iterations']),
            diagnostics_period_s=float(values['diagnostics_period_s']),
            stale_after_s=float(values['stale_after_s']),
            max_input_pixels=int(values.get('max_input_pixels', 4096 * 4096)),
            camera_info_topics=tuple(str(t) for t in values.get('camera_info_topics') or ()),
            backend=str(values.get('backend', 'auto')),
            openvino_device=str(values.get('openvino_device', 'CPU')),
            refine=str(values.get('refine', 'none')), morph=str(values.get('morph', 'none')),
            morph_kernel_px=int(values.get('morph_kernel_px', 3)))
        settings.validate()
        return settings

    def camera_info_inputs(self) -> tuple[str, ...]:
        """Return each camera's CameraInfo topic ('' = none), derived when not given.

        Derived as image_transport does: the CameraInfo beside the image, '<camera folder>/
        camera_info' ('camera/color/image_raw' -> 'camera/color/camera_info').
        """
        if self.camera_info_topics:
            return self.camera_info_topics
        return tuple(_beside(camera_prefix(t)[0], 'camera_info') for t in self.image_topics)

    def validate(self, class_set: ClassSet | None = None) -> None:
        """Raise SettingsError naming the first invalid value."""
        not_finite = [f for f in ('overlay_alpha', 'max_rate_hz', 'diagnostics_period_s',
                                  'stale_after_s') if not math.isfinite(getattr(self, f))]
        if not_finite:
            raise SettingsError(f'{", ".join(not_finite)} must be finite, got '
                                + ', '.join(f'{f}={getattr(self, f)!r}' for f in not_finite))
        if not self.image_topics or any(not t.strip() for t in self.image_topics):
            raise SettingsError(f'image_topics must list at least one topic, got '
                                f'{list(self.image_topics)}')
        if len(set(self.image_topics)) != len(self.image_topics):
            raise SettingsError(f'image_topics has duplicates: {list(self.image_topics)}')
        _choice('precision', self.precision, PRECISIONS)
        _choice('backend', self.backend, BACKENDS)
        if not self.openvino_device.strip():
            raise SettingsError("openvino_device must name an OpenVINO device ('CPU', 'GPU')")
        _choice('upsample', self.upsample, UPSAMPLING)
        _choice('refine', self.refine, REFINE_MODES)
        _choice('morph', self.morph, MORPH_OPS)
        if not 1 <= self.morph_kernel_px <= 63:
            raise SettingsError(f'morph_kernel_px must be in 1..63, got {self.morph_kernel_px}')
        _choice('qos_reliability', self.qos_reliability, ('auto',) + RELIABILITIES)
        _choice('output_qos_reliability', self.output_qos_reliability, RELIABILITIES)
        if not self.device or not (self.device in ('auto', 'cpu', 'cuda')
                                   or self.device.startswith('cuda:')):
            raise SettingsError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', "
                                f'got {self.device!r}')
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise SettingsError(f'overlay_alpha must be in [0, 1], got {self.overlay_alpha}')
        if self.min_region_pixels < 0:
            raise SettingsError(f'min_region_pixels must be >= 0, got {self.min_region_pixels}')
        if self.max_rate_hz < 0:
            raise SettingsError(f'max_rate_hz must be >= 0 (0 = unlimited), got '
                                f'{self.max_rate_hz}')
        if self.torch_threads < 0:
            raise SettingsError(f'torch_threads must be >= 0 (0 = default), got '
                                f'{self.torch_threads}')
        if self.qos_depth < 1:
            raise SettingsError(f'qos_depth must be >= 1, got {self.qos_depth}')
        if self.diagnostics_period_s <= 0 or self.stale_after_s <= 0:
            raise SettingsError('diagnostics_period_s and stale_after_s must be positive')
        if self.camera_info_topics and len(self.camera_info_topics) != len(self.image_topics):
            raise SettingsError(
                f'camera_info_topics must be empty (derived) or list one topic per image topic '
                f"('' = none), got {len(self.camera_info_topics)} for "
                f'{len(self.image_topics)} image topics')
        if self.max_input_pixels < 1:
            raise SettingsError(f'max_input_pixels must be >= 1, got {self.max_input_pixels}')
        if class_set is not None:
            unknown = [c for c in self.classes_to_mask if c not in class_set.names]
            if unknown:
                raise SettingsError(f'classes_to_mask names classes the model does not have: '
                                    f'{unknown}; the model has {list(class_set.names)}')


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f'{name} must be one of {list(choices)}, got {value!r}')


def _beside(prefix: str, name: str) -> str:
    return f'{prefix}/{name}' if prefix else name


def camera_prefix(topic: str) -> tuple[str, bool]:
    """Return (camera namespace, compressed) for an image topic.

    'camera/color/image_raw' -> ('camera/color', False);
    'cam/image_raw/compressed' -> ('cam', True). Outputs go under '<prefix>/segmentation/'.
    """
    compressed = topic.endswith('/compressed')
    base = topic[:-len('/compressed')] if compressed else topic
    head, _, last = base.rpartition('/')
    if last in ('image_raw', 'image_rect_color', 'image_rect', 'image'):
        base = head
    return base, compressed
