"""Load any supported model as a `Segmenter` plus its `ModelSpec`.

Sources, in the order they are recognised:

* ``'default'``: the shipped checkpoint (``default_model_path()``); the other names of
  ``SHIPPED_MODELS`` (``'pretrained_mnv2'``) are shipped beside it.
* ``'maskrcnn_resnet50_fpn'`` / ``'maskrcnn_resnet50_fpn_v2'`` (optionally ``':DEFAULT'``):
  torchvision's COCO Mask R-CNN as semantic labels + instance ids (see :mod:`.maskrcnn`).
* a registry architecture name, optionally with ``':DEFAULT'`` (torchvision pretrained weights):
  classes from `spec_path` when given, else ``ClassSet.default()``.
* ``*.pt`` / ``*.pth``: a checkpoint with its ``<stem>.json`` sidecar (``load_checkpoint``).
* ``*.ts`` / ``*.torchscript``: a TorchScript file with a sidecar.
* ``*.onnx``: onnxruntime (CUDA provider when the device is CUDA and it is available).
* ``*.xml``: an OpenVINO IR (with its ``.bin``), run by OpenVINO on the CPU.

This picks each source's own runtime; :mod:`.backends` runs a source in another one (a torch
model in ONNX Runtime or OpenVINO through a cached export, an .onnx file in OpenVINO).

For TorchScript and ONNX the sidecar is `spec_path` when given, else ``<stem>.json`` beside the
model file. A `spec_path` given with a checkpoint replaces the checkpoint's own sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import torch

from seg_perception.classes import ClassSet
from seg_perception.segmentation.model_spec import (
    default_model_path,
    IMAGENET_MEAN,
    IMAGENET_STD,
    load_checkpoint,
    ModelLoadError,
    ModelSpec,
    ModelSpecError,
    SHIPPED_MODELS,
)

__all__ = ['ModelLoadError', 'Segmenter', 'load_segmenter', 'known_sources', 'read_spec',
           'sidecar_for']

CHECKPOINT_SUFFIXES = ('.pt', '.pth')
TORCHSCRIPT_SUFFIXES = ('.ts', '.torchscript')
ONNX_SUFFIXES = ('.onnx',)
OPENVINO_SUFFIXES = ('.xml',)
FILE_SUFFIXES = CHECKPOINT_SUFFIXES + TORCHSCRIPT_SUFFIXES + ONNX_SUFFIXES + OPENVINO_SUFFIXES
#: network input size (height, width) for registry architectures without a sidecar
DEFAULT_INPUT_SIZE = (480, 640)


class Segmenter(Protocol):
    """A network on a device: normalised NCHW float batch in, (N, C, h, w) logits out."""

    device: torch.device

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Return the logits of `batch`."""


def known_sources() -> tuple[str, ...]:
    """Return the model names `load_segmenter` accepts besides file paths."""
    from seg_perception.segmentation.maskrcnn import ARCHITECTURES as MASKRCNN
    from seg_perception.segmentation.registry import ARCHITECTURES
    return SHIPPED_MODELS + tuple(ARCHITECTURES) + tuple(MASKRCNN)


def read_spec(path: str | Path) -> ModelSpec:
    """Read a ModelSpec JSON sidecar; raise ModelLoadError when missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f'model sidecar {str(path)!r} does not exist')
    try:
        doc = json.loads(path.read_text(encoding='utf-8'))
        return ModelSpec.from_dict(doc)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ModelSpecError) as exc:
        raise ModelLoadError(f'model sidecar {str(path)!r} is not a valid spec: {exc}') from exc


def sidecar_for(model_path: Path, spec_path: str | Path | None) -> ModelSpec:
    """Return `spec_path`'s spec when given, else the `<stem>.json` beside the model file."""
    if spec_path is not None:
        return read_spec(spec_path)
    side = model_path.with_suffix('.json')
    if not side.is_file():
        raise ModelLoadError(f'{str(model_path)!r} needs a ModelSpec sidecar: put '
                             f'{side.name!r} beside it or pass spec_path')
    return read_spec(side)


def load_segmenter(source: str, *, device: str | torch.device = 'cpu',
                   spec_path: str | Path | None = None,
                   input_size: tuple[int, int] | None = None) -> tuple[Segmenter, ModelSpec]:
    """Load `source` (see the module docstring) onto `device`; return (segmenter, spec).

    input_size (optional) sets the network size of a Mask R-CNN built here (its internal resize).
    """
    from seg_perception.segmentation.torchscript_backend import TorchSegmenter
    device = torch.device(device)
    source = str(source)
    name, _, weights = source.partition(':')
    if source in SHIPPED_MODELS:
        path = default_model_path(source)
        if not path.is_file():
            raise ModelLoadError(f'the {source} model {str(path)!r} is not installed; train one '
                                 '(seg_perception train) or pass a model path or name')
        return _load_checkpoint(path, device, spec_path)
    from seg_perception.segmentation.maskrcnn import ARCHITECTURES as MASKRCNN
    from seg_perception.segmentation.registry import ARCHITECTURES
    if name in MASKRCNN and not Path(source).suffix:
        return _load_maskrcnn(name, weights or None, device, spec_path, input_size)
    if name in ARCHITECTURES and not Path(source).suffix:
        return _load_registry(name, weights or None, device, spec_path)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in FILE_SUFFIXES:
        if not path.is_file():
            raise ModelLoadError(f'model file {source!r} does not exist')
    else:
        raise ModelLoadError(
            f'unknown model {source!r}: give a file ending in '
            f'{", ".join(FILE_SUFFIXES)} or one of: '
            f'{", ".join(known_sources())} (append ":DEFAULT" for pretrained weights)')
    if suffix in CHECKPOINT_SUFFIXES:
        return _load_checkpoint(path, device, spec_path)
    if suffix in TORCHSCRIPT_SUFFIXES:
        from seg_perception.segmentation.torchscript_backend import load_torchscript
        spec = sidecar_for(path, spec_path)
        return TorchSegmenter(load_torchscript(path, device=device), device=device), spec
    from seg_perception.segmentation.backends import graph_segmenter
    runtime = 'openvino' if suffix in OPENVINO_SUFFIXES else 'onnxruntime'
    return graph_segmenter(runtime, path, sidecar_for(path, spec_path), device=device)


def _load_checkpoint(path: Path, device: torch.device, spec_path: str | Path | None):
    from seg_perception.segmentation.torchscript_backend import TorchSegmenter
    model, spec = load_checkpoint(path, map_location=device)
    if spec_path is not None:
        spec = read_spec(spec_path)
    return TorchSegmenter(model, device=device), spec


def _load_registry(arch: str, weights: str | None, device: torch.device,
                   spec_path: str | Path | None):
    from seg_perception.segmentation.registry import build_model
    from seg_perception.segmentation.torchscript_backend import TorchSegmenter
    if spec_path is not None:
        spec = read_spec(spec_path)
        kwargs = dict(spec.arch_kwargs)
        class_set = spec.class_set
    else:
        class_set = ClassSet.default()
        kwargs = {}
        spec = ModelSpec(arch=arch, class_set=class_set, input_size=DEFAULT_INPUT_SIZE,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD,
                         model_name=f'{arch}:{weights}' if weights else arch)
    try:
        model = build_model(arch, num_classes=class_set.num_outputs, weights=weights, **kwargs)
    except ValueError as exc:
        raise ModelLoadError(f'cannot build {arch!r} (weights={weights!r}): {exc}') from exc
    return TorchSegmenter(model, device=device), spec


def _load_maskrcnn(arch: str, weights: str | None, device: torch.device,
                   spec_path: str | Path | None, input_size: tuple[int, int] | None):
    from seg_perception.segmentation import maskrcnn
    from seg_perception.segmentation.torchscript_backend import TorchSegmenter
    if spec_path is not None:
        base = read_spec(spec_path)
        input_size, kwargs = input_size or base.input_size, dict(base.arch_kwargs)
    else:
        input_size, kwargs = input_size or DEFAULT_INPUT_SIZE, {}
    spec = ModelSpec(arch=arch, class_set=maskrcnn.coco_class_set(), input_size=input_size,
                     mean=maskrcnn.MEAN, std=maskrcnn.STD,
                     model_name=f'{arch}:{weights}' if weights else arch, arch_kwargs=kwargs)
    try:
        module = maskrcnn.build_maskrcnn(arch, weights=weights, input_size=input_size, **kwargs)
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        raise ModelLoadError(f'cannot build {arch!r} (weights={weights!r}): {exc}') from exc
    return TorchSegmenter(module, device=device), spec
