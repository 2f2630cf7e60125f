"""The segmentation engine: numpy RGB frames in, labels/masks/confidence/overlay out.

Everything between the frames and the results runs on the engine's device: uint8 frames go over
(pinned, non-blocking on CUDA), are converted, resized and normalised there, run through the
network as one batch, and are postprocessed there (argmax, upsampling, masks, confidence,
overlay, pixel counts). On CUDA all outputs of a call are packed into one buffer and brought back
with a single device->host copy. The optional small-region cleanup uses OpenCV on the host.

Thread safety: an engine holds reusable buffers and mutable settings; use one engine from one
worker thread (a node owns its engine and calls it from a single callback group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import time
from typing import Any, Sequence

import numpy as np
import torch

from seg_perception.classes import ClassSet
from seg_perception.host_memory import retain_freed_memory
from seg_perception.segmentation import backends
from seg_perception.segmentation import postprocess as post
from seg_perception.segmentation import refine as refinement
from seg_perception.segmentation.device import cpu_has_native_bf16, DeviceError, resolve_device
from seg_perception.segmentation.loader import load_segmenter
from seg_perception.segmentation.model_spec import ModelLoadError, ModelSpec, parse_input_size
from seg_perception.segmentation.preprocess import InputError, Normaliser, validate_images

__all__ = ['EngineConfig', 'EngineConfigError', 'InputError', 'SegmentationEngine',
           'SegmentationResult', 'cpu_has_native_bf16', 'resolve_device']

LOG = logging.getLogger(__name__)
PRECISIONS = ('fp32', 'fp16', 'bf16')
UPSAMPLE_MODES = ('nearest', 'bilinear')
_AUTOCAST_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


class EngineConfigError(ValueError):
    """Raised when an EngineConfig holds an invalid value."""


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """How to load and run a segmentation model (validated on construction).

    min_region_pixels: connected regions (per class, 8-connected, in output pixels) smaller than
    this take the label of the nearest kept region (0/1 = off); see
    :func:`postprocess.remove_small_regions`. morph / morph_kernel_px: per-class opening or
    closing of the output label map (see :func:`postprocess.morph_labels`).
    refine: 'none' | 'crf' | 'guided': edge-aware refinement of the logits with the frame's
    colours before the argmax (see :mod:`.refine`; boundary F 0.40 -> 0.58 on the synthetic
    cell, at a cost per frame measured in docs/benchmarks.md).
    precision: fp16/bf16 use autocast on CUDA; on the CPU bf16 uses autocast when the CPU has
    native bf16 (AVX512-BF16/AMX), and otherwise the engine runs fp32 and says so in
    `engine.notes`.
    channels_last: NHWC weights and inputs for torch backends (None = on where supported). On
    this project's CPU the default model runs 1.45x faster (16.9 vs 24.7 ms), and NHWC logits
    make the argmax over classes a contiguous reduction.
    retain_host_memory: on the CPU, keep freed activation memory mapped (process-wide glibc
    setting, see :mod:`seg_perception.host_memory`); the default model's forward pass then stops
    page-faulting ~10 MB per frame (about 19 -> 16 ms here, and no drift).
    backend: the runtime of the network, 'torch' | 'onnxruntime' | 'openvino', 'auto' (each
    installed one timed on the model at start-up, the fastest kept; see :mod:`.backends`), or
    None: the model's own (torch for torch models, onnxruntime for .onnx, openvino for .xml).
    openvino_device: where OpenVINO runs ('CPU', or 'GPU' for an Intel GPU).
    """

    model: str = 'default'
    spec_path: str | None = None
    device: str = 'auto'
    precision: str = 'fp32'
    input_size: tuple[int, int] | None = None
    upsample: str = 'nearest'
    channels_last: bool | None = None  # None: on wherever the backend supports it
    compile: bool = False  # noqa: A003 (the option's name in the team contract)
    min_region_pixels: int = 0
    morph: str = 'none'
    morph_kernel_px: int = 3
    refine: str = 'none'
    warmup_iterations: int = 1
    overlay_alpha: float = 0.5
    retain_host_memory: bool = True
    backend: str | None = None
    openvino_device: str = 'CPU'

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise EngineConfigError(f'model must be a non-empty string, got {self.model!r}')
        try:
            resolve_device(self.device, check_available=False)
        except DeviceError as exc:
            raise EngineConfigError(str(exc)) from exc
        if self.backend is not None and self.backend not in backends.BACKENDS:
            raise EngineConfigError(f'backend must be one of {backends.BACKENDS}, got '
                                    f'{self.backend!r}')
        if not isinstance(self.openvino_device, str) or not self.openvino_device:
            raise EngineConfigError(f'openvino_device must be an OpenVINO device name such as '
                                    f"'CPU' or 'GPU', got {self.openvino_device!r}")
        if self.precision not in PRECISIONS:
            raise EngineConfigError(f'precision must be one of {PRECISIONS}, got '
                                    f'{self.precision!r}')
        if self.input_size is not None:
            object.__setattr__(self, 'input_size',
                               parse_input_size(self.input_size, EngineConfigError))
        if self.upsample not in UPSAMPLE_MODES:
            raise EngineConfigError(f'upsample must be one of {UPSAMPLE_MODES}, got '
                                    f'{self.upsample!r}')
        _check_min_region(self.min_region_pixels)
        _check_morph(self.morph, self.morph_kernel_px)
        _check_refine(self.refine)
        if not isinstance(self.warmup_iterations, int) or self.warmup_iterations < 0:
            raise EngineConfigError(f'warmup_iterations must be an int >= 0, got '
                                    f'{self.warmup_iterations!r}')
        _check_alpha(self.overlay_alpha)


def _check_refine(value: object) -> None:
    try:
        refinement.check_mode(value)
    except refinement.RefineConfigError as exc:
        raise EngineConfigError(str(exc)) from exc


def _check_morph(op: object, kernel_px: object) -> None:
    if op not in post.MORPH_OPS:
        raise EngineConfigError(f'morph must be one of {post.MORPH_OPS}, got {op!r}')
    if not isinstance(kernel_px, int) or isinstance(kernel_px, bool) or not 1 <= kernel_px <= 63:
        raise EngineConfigError(f'morph_kernel_px must be an int in 1..63, got {kernel_px!r}')


def _check_min_region(value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise EngineConfigError(f'min_region_pixels must be an int >= 0, got {value!r}')


def _check_alpha(value: object) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise EngineConfigError(f'overlay alpha must be in [0, 1], got {value!r}')


@dataclass
class SegmentationResult:
    """The outputs for one frame (arrays at the frame's own resolution)."""

    labels: np.ndarray  # (H, W) uint8 class ids, UNLABELED_ID where no class
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # id -> (H, W) uint8 0/255
    confidence: np.ndarray | None = None  # (H, W) uint8, max softmax probability * 255
    overlay: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    class_pixel_counts: np.ndarray | None = None  # (num_outputs,) int64, when asked for
    instances: np.ndarray | None = None  # (H, W) uint16 instance ids (Mask R-CNN only)
    preprocess_ms: float = 0.0  # of the whole batch this frame was part of
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0


class SegmentationEngine:
    """Load a model once and segment batches of frames on its device (one worker thread)."""

    def __init__(self, config: EngineConfig, *,
                 loaded: tuple[Any, ModelSpec] | None = None) -> None:
        """Load `config.model` (or take `loaded`: a segmenter and its spec already in memory)."""
        if not isinstance(config, EngineConfig):
            raise TypeError(f'config must be an EngineConfig, got {type(config).__name__}')
        self.config = config
        try:
            self.device = resolve_device(config.device)
        except DeviceError as exc:
            raise EngineConfigError(str(exc)) from exc
        self.notes: list[str] = []
        self.backend_timings_ms: dict[str, float] = {}  # what backend 'auto' measured
        if self.device.type == 'cpu' and config.retain_host_memory \
                and not retain_freed_memory():
            self._note('retain_host_memory: not a glibc system; freed memory is returned to the '
                       'kernel as usual')
        self.spec: ModelSpec
        self.segmenter, self.spec = loaded if loaded is not None else self._open_backend(config)
        self.backend: str = getattr(self.segmenter, 'backend', 'torch')
        self.model_name: str = self.spec.model_name
        self.class_set: ClassSet = self.spec.class_set
        self.input_size: tuple[int, int] = config.input_size or tuple(self.spec.input_size)
        if config.input_size is not None and getattr(self.segmenter, 'fixed_input_size', False) \
                and tuple(config.input_size) != tuple(self.spec.input_size):
            raise EngineConfigError(f'input_size {config.input_size} differs from the fixed '
                                    f'{self.backend} graph input {tuple(self.spec.input_size)}')
        self._autocast = self._autocast_dtype(self.segmenter, notes=True)
        supported = hasattr(self.segmenter, 'to_channels_last')
        if config.channels_last and not supported:
            self._note(f'channels_last ignored for backend {self.backend}')
        channels_last = supported and config.channels_last is not False
        if channels_last:
            self.segmenter.to_channels_last()
        if config.compile:
            if hasattr(self.segmenter, 'compile_module'):
                self.segmenter.compile_module()
            else:
                self._note(f'compile ignored for backend {self.backend}')
        self._normaliser = Normaliser(mean=self.spec.mean, std=self.spec.std, device=self.device,
                                      channels_last=channels_last)
        self._num_outputs = self.class_set.num_outputs
        self._palette = torch.from_numpy(self.class_set.palette()).to(self.device)
        self._min_region_pixels = config.min_region_pixels
        self._refine = config.refine
        self._morph = (config.morph, config.morph_kernel_px)
        self.set_overlay_alpha(config.overlay_alpha)
        self.warmup(config.warmup_iterations)

    # -- backend ----------------------------------------------------------------------------
    def _open_backend(self, config: EngineConfig) -> tuple[Any, ModelSpec]:
        """Load the model in the configured runtime, or in the fastest installed one (auto)."""
        common = {'device': self.device, 'spec_path': config.spec_path,
                  'input_size': config.input_size, 'openvino_device': config.openvino_device}
        if config.backend is None:
            return load_segmenter(config.model, device=self.device, spec_path=config.spec_path,
                                  input_size=config.input_size)
        if config.backend != 'auto':
            return backends.load_backend(config.backend, config.model, **common)
        runtimes = backends.runtimes_for(config.model, self.device)
        if config.compile and 'torch' in runtimes:
            self._note('backend auto: compile asks for PyTorch')
            runtimes = ('torch',)
        if not runtimes:
            raise ModelLoadError(f'no installed runtime runs {config.model!r} on {self.device} '
                                 '(pip install onnxruntime or openvino)')
        torch_model = backends.load_backend('torch', config.model, **common) \
            if 'torch' in runtimes else None
        loaded = {'torch': torch_model} if torch_model is not None else {}
        for runtime in runtimes:
            if runtime == 'torch':
                continue
            try:
                loaded[runtime] = backends.load_backend(runtime, config.model,
                                                        torch_model=torch_model, **common)
            except ModelLoadError as exc:
                self._note(f'backend auto: {runtime} skipped ({exc})')
        int8, why_not = backends.shipped_int8(config.model, self.device, config.precision)
        if int8 is not None:
            try:
                loaded['openvino_int8'] = backends.load_backend('openvino', str(int8),
                                                                device=self.device)
                loaded['openvino_int8'][0].backend = 'openvino_int8'
            except ModelLoadError as exc:
                self._note(f'backend auto: the shipped INT8 model skipped ({exc})')
        elif why_not != 'not asked for':
            self._note(f'backend auto: no INT8 candidate ({why_not})')
        if len(loaded) == 1:
            return next(iter(loaded.values()))
        spec = next(iter(loaded.values()))[1]
        timings = self._time_backends({r: seg for r, (seg, _) in loaded.items()},
                                      config.input_size or tuple(spec.input_size))
        best = min(timings, key=timings.get)
        self.backend_timings_ms = timings
        self._note('backend auto: ' + ', '.join(f'{r} {ms:.1f} ms' for r, ms in timings.items())
                   + f' per batch of 1 -> {best}')
        return loaded[best]

    def _time_backends(self, segmenters: dict[str, Any], size_hw: tuple[int, int], *,
                       rounds: int = 5) -> dict[str, float]:
        """Return each segmenter's median network time (ms) on one frame, runs interleaved."""
        h, w = size_hw
        batch = torch.zeros((1, 3, h, w), device=self.device)
        calls = {}
        for runtime, segmenter in segmenters.items():
            x = batch
            if hasattr(segmenter, 'to_channels_last') and self.config.channels_last is not False:
                segmenter.to_channels_last()
                x = batch.contiguous(memory_format=torch.channels_last)
            calls[runtime] = (segmenter, x, self._autocast_dtype(segmenter, notes=False))
        times: dict[str, list[float]] = {r: [] for r in calls}
        for i in range(rounds + 2):  # two warm-up rounds: allocations, kernel selection
            for runtime, (segmenter, x, autocast) in calls.items():
                t0 = time.perf_counter()
                with torch.inference_mode(), torch.autocast(
                        device_type=self.device.type, dtype=autocast or torch.float32,
                        enabled=autocast is not None):
                    segmenter(x)
                self.synchronize()
                if i >= 2:
                    times[runtime].append((time.perf_counter() - t0) * 1e3)
        return {r: round(float(np.median(t)), 2) for r, t in times.items()}

    def _autocast_dtype(self, segmenter: Any, *, notes: bool) -> torch.dtype | None:
        """Return the autocast dtype of the precision for this segmenter (None: fp32)."""
        precision = self.config.precision
        note = self._note if notes else (lambda text: None)
        if precision == 'fp32':
            return None
        backend = getattr(segmenter, 'backend', 'torch')
        if backend == 'openvino_int8':
            return None  # the reduced precision asked for, quantised
        if backend != 'torch':
            note(f'precision {precision} ignored for backend {backend} (quantise the model for '
                 'int8: seg_perception quantize)')
            return None
        if self.device.type == 'cuda':
            return _AUTOCAST_DTYPES[precision]
        if precision == 'fp16':
            note('precision fp16 needs CUDA; running fp32 on the CPU (bf16 runs on CPUs with '
                 'AVX512-BF16 or AMX)')
            return None
        if cpu_has_native_bf16():
            return torch.bfloat16
        note('precision bf16: this CPU has no native bf16 (AVX512-BF16/AMX); running fp32')
        return None

    # -- runtime settings -------------------------------------------------------------------
    @property
    def overlay_alpha(self) -> float:
        """Return the default overlay blend weight of the class colours."""
        return self._overlay_alpha

    def set_overlay_alpha(self, alpha: float) -> None:
        """Set the default overlay alpha (0 = input only, 1 = class colours only)."""
        _check_alpha(alpha)
        self._overlay_alpha = float(alpha)
        self._alpha_lut = post.make_alpha_lut(self.class_set.ids, self._overlay_alpha,
                                              self.device)

    @property
    def min_region_pixels(self) -> int:
        """Return the current small-region threshold (0 = off)."""
        return self._min_region_pixels

    def set_min_region_pixels(self, pixels: int) -> None:
        """Set the small-region threshold without reloading the model."""
        _check_min_region(pixels)
        self._min_region_pixels = pixels

    @property
    def refine(self) -> str:
        """Return the current logit refinement ('none', 'crf' or 'guided')."""
        return self._refine

    def set_refine(self, mode: str) -> None:
        """Switch the logit refinement between frames (it holds no state across frames)."""
        _check_refine(mode)
        self._refine = mode

    @property
    def morph(self) -> tuple[str, int]:
        """Return the current label-map morphology (op, kernel_px)."""
        return self._morph

    def set_morph(self, op: str, kernel_px: int) -> None:
        """Set the label-map opening/closing between frames (one atomic assignment)."""
        _check_morph(op, kernel_px)
        self._morph = (op, kernel_px)

    def _note(self, text: str) -> None:
        LOG.info('%s', text)
        self.notes.append(text)

    # -- running ----------------------------------------------------------------------------
    def warmup(self, iterations: int = 1) -> None:
        """Run the network on a blank batch `iterations` times (allocations, kernels, compile)."""
        if iterations <= 0:
            return
        h, w = self.input_size
        frame = np.zeros((h, w, 3), dtype=np.uint8)
        for _ in range(iterations):
            self.segment([frame])

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the network on a normalised device batch; return (logits, instance ids or None)."""
        with torch.inference_mode():
            if self._autocast is not None:
                with torch.autocast(device_type=self.device.type, dtype=self._autocast):
                    return self._forward(batch)
            return self._forward(batch)

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if getattr(self.segmenter, 'produces_instances', False):
            return self.segmenter.forward_with_instances(batch)
        return self.segmenter(batch), None

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[list[torch.Tensor],
                                                                torch.Tensor]:
        """Validate frames, move them to the device, return (uint8 frames, normalised batch)."""
        images = validate_images(images)
        with torch.inference_mode():
            frames = self._normaliser.to_device(images)
            return frames, self._normaliser.batch(frames, self.input_size)

    def segment(self, images: Sequence[np.ndarray], *, masks_for: Sequence[int] = (),
                confidence: bool = False, overlay: bool = False,
                overlay_alpha: float | None = None,
                counts: bool = False) -> list[SegmentationResult]:
        """Segment frames of any sizes in one batch; return one result per frame.

        masks_for: class ids whose 0/255 masks are wanted; confidence / overlay / counts: produce
        those outputs (each costs full-resolution work; counts ~0.4 ms at 640x480 on this CPU);
        overlay_alpha: blend weight for this call (None = the engine's setting).
        """
        mask_ids = self._check_mask_ids(masks_for)
        alpha_lut = self._alpha_lut
        if overlay_alpha is not None and overlay_alpha != self._overlay_alpha:
            _check_alpha(overlay_alpha)
            alpha_lut = post.make_alpha_lut(self.class_set.ids, float(overlay_alpha), self.device)
        t0 = time.perf_counter()
        frames, batch = self.preprocess(images)
        self.synchronize()
        t1 = time.perf_counter()
        logits, instances = self.forward(batch)
        self.synchronize()
        t2 = time.perf_counter()
        with torch.inference_mode():
            outputs = [self._postprocess(frames[i], logits[i],
                                         None if instances is None else instances[i],
                                         mask_ids, confidence, overlay, alpha_lut, counts)
                       for i in range(len(frames))]
            host = self._to_host(outputs)
        t3 = time.perf_counter()
        timing = {'preprocess_ms': (t1 - t0) * 1e3, 'inference_ms': (t2 - t1) * 1e3,
                  'postprocess_ms': (t3 - t2) * 1e3}
        results = []
        for out in host:
            masks = {} if not mask_ids else dict(zip(mask_ids, out['masks']))
            results.append(SegmentationResult(
                labels=out['labels'], masks=masks, confidence=out.get('confidence'),
                overlay=out.get('overlay'), class_pixel_counts=out.get('counts'),
                instances=out.get('instances'), **timing))
        return results

    def _check_mask_ids(self, masks_for: Sequence[int]) -> tuple[int, ...]:
        ids = tuple(int(c) for c in masks_for)
        unknown = [c for c in ids if c not in self.class_set.ids]
        if unknown:
            raise InputError(f'masks_for has class ids {unknown} that are not among the model '
                             f'classes {list(self.class_set.ids)}')
        return ids

    def _postprocess(self, frame: torch.Tensor, logits: torch.Tensor,
                     instances: torch.Tensor | None, mask_ids: tuple[int, ...], confidence: bool,
                     overlay: bool, alpha_lut: torch.Tensor,
                     counts: bool = False) -> dict[str, torch.Tensor]:
        size = (int(frame.shape[0]), int(frame.shape[1]))
        logits = refinement.refine_logits(logits, frame, self._refine)
        labels, conf = post.labels_and_confidence(logits, size, upsample=self.config.upsample,
                                                  confidence=confidence)
        morph_op, morph_px = self._morph
        labels = post.morph_labels(labels, morph_op, morph_px)
        if self._min_region_pixels > 1:
            cleaned = post.remove_small_regions(labels.cpu().numpy(), self._min_region_pixels)
            labels = torch.from_numpy(cleaned).to(self.device, non_blocking=True)
        out = {'labels': labels}
        if counts:
            out['counts'] = post.pixel_counts(labels, self._num_outputs)
        if mask_ids:
            out['masks'] = post.class_masks(labels, mask_ids)
        if conf is not None:
            out['confidence'] = conf
        if overlay:
            out['overlay'] = post.overlay_image(frame, labels, self._palette, alpha_lut)
        if instances is not None:
            out['instances'] = post.resize_nearest(instances, size).to(torch.int32)
        return out

    def _to_host(self, outputs: list[dict[str, torch.Tensor]]) -> list[dict[str, np.ndarray]]:
        """Bring all outputs to numpy: views on CPU, one packed device->host copy on CUDA."""
        if self.device.type != 'cuda':
            return [{k: _host_array(k, v) for k, v in out.items()} for out in outputs]
        flat, layout = [], []
        for out in outputs:
            for key, value in out.items():
                value = value.contiguous()
                as_bytes = value.view(torch.uint8).reshape(-1) if value.dtype != torch.uint8 \
                    else value.reshape(-1)
                flat.append(as_bytes)
                pad = -as_bytes.numel() % 8  # keep every chunk 8-byte aligned for .view(dtype)
                if pad:
                    flat.append(as_bytes.new_zeros(pad))
                layout.append((key, value.dtype, tuple(value.shape), as_bytes.numel(), pad))
        host = torch.cat(flat).cpu()  # one copy; synchronises the stream
        results, offset, index = [], 0, 0
        for out in outputs:
            item = {}
            for _ in out:
                key, dtype, shape, size, pad = layout[index]
                item[key] = _host_array(key, host[offset:offset + size].view(dtype).view(shape))
                offset += size + pad
                index += 1
            results.append(item)
        return results

    def synchronize(self) -> None:
        """Wait for the device to finish queued work (no-op on CPU)."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)


def _host_array(key: str, value: torch.Tensor) -> np.ndarray:
    array = value.cpu().numpy() if value.device.type != 'cpu' else value.numpy()
    if key == 'instances':
        return array.astype(np.uint16)
    return array
