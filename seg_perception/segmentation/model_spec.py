"""Model specification and checkpoints: weights `<stem>.pt` + JSON sidecar `<stem>.json`.

Why a sidecar: the weights alone do not say which architecture, class set, input size and
normalisation they need; the sidecar keeps that next to them in a human-readable form, so a node,
the evaluator and a fine-tuning run all rebuild exactly the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
import json
import math
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from seg_perception.classes import ClassSet, ClassSetError

#: version of the sidecar layout; bump on incompatible changes
FORMAT_VERSION = 1
#: ImageNet statistics on the 0..1 pixel scale (what torchvision's pretrained weights expect)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
INPUT_LAYOUTS = ('NCHW', 'NHWC')
DEFAULT_MODEL_NAME = 'default'
#: checkpoints shipped in seg_perception/resources/models/<name>.pt: the default model, and the
#: MobileNetV2 U-Net with a pretrained encoder (better recall on real bins, see docs/training.md)
SHIPPED_MODELS: tuple[str, ...] = (DEFAULT_MODEL_NAME, 'pretrained_mnv2')


class ModelLoadError(RuntimeError):
    """Raised when a checkpoint or its sidecar is missing, corrupt or does not fit the model."""


class ModelSpecError(ValueError):
    """Raised when a ModelSpec is built with invalid values."""


def parse_input_size(value: Any, error: type[ValueError] = ModelSpecError) -> tuple[int, int]:
    """Return (height, width) of a network input, at least 8x8; raise `error` otherwise."""
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise error(f'input_size must be (height, width), got {value!r}') from exc
    if h < 8 or w < 8:
        raise error(f'input_size must be at least 8x8, got {value!r}')
    return h, w


def _triple(name: str, value: Any) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in value)
    except TypeError as exc:
        raise ModelSpecError(f'{name} must be three numbers, got {value!r}') from exc
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise ModelSpecError(f'{name} must be three finite numbers, got {value!r}')
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model and feed it: architecture, classes, input format."""

    arch: str
    class_set: ClassSet
    input_size: tuple[int, int]  # (height, width) the network is fed at
    mean: tuple[float, float, float] = IMAGENET_MEAN  # RGB, 0..1 pixel scale
    std: tuple[float, float, float] = IMAGENET_STD
    model_name: str = DEFAULT_MODEL_NAME
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    input_layout: str = 'NCHW'

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not self.arch:
            raise ModelSpecError(f'arch must be a non-empty string, got {self.arch!r}')
        if not isinstance(self.class_set, ClassSet):
            raise ModelSpecError(f'class_set must be a ClassSet, got {type(self.class_set)}')
        object.__setattr__(self, 'input_size', parse_input_size(self.input_size))
        object.__setattr__(self, 'mean', _triple('mean', self.mean))
        std = _triple('std', self.std)
        if min(std) <= 0:
            raise ModelSpecError(f'std must be positive, got {std}')
        object.__setattr__(self, 'std', std)
        if self.input_layout not in INPUT_LAYOUTS:
            raise ModelSpecError(f'input_layout must be one of {INPUT_LAYOUTS}, got '
                                 f'{self.input_layout!r}')
        if not isinstance(self.model_name, str) or not self.model_name:
            raise ModelSpecError(f'model_name must be a non-empty string, got '
                                 f'{self.model_name!r}')
        object.__setattr__(self, 'arch_kwargs', dict(self.arch_kwargs))

    @property
    def num_classes(self) -> int:
        """Return the number of network outputs (max class id + 1)."""
        return self.class_set.num_outputs

    def build(self, *, weights: str | Path | None = None) -> nn.Module:
        """Build the (untrained unless `weights`) network this spec describes."""
        from seg_perception.segmentation.registry import build_model
        return build_model(self.arch, num_classes=self.num_classes, weights=weights,
                           **self.arch_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly form written into sidecars."""
        return {
            'format_version': FORMAT_VERSION,
            'arch': self.arch,
            'arch_kwargs': dict(self.arch_kwargs),
            'model_name': self.model_name,
            'input_size': list(self.input_size),
            'input_layout': self.input_layout,
            'mean': list(self.mean),
            'std': list(self.std),
            'class_set': self.class_set.to_list(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'ModelSpec':
        """Rebuild a spec from :meth:`to_dict` output; raise ModelSpecError when malformed."""
        if not isinstance(data, Mapping):
            raise ModelSpecError(f'a model spec must be a mapping, got {type(data).__name__}')
        version = data.get('format_version', FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelSpecError(f'unsupported sidecar format_version {version!r} '
                                 f'(this version reads <= {FORMAT_VERSION})')
        missing = [k for k in ('arch', 'class_set', 'input_size') if k not in data]
        if missing:
            raise ModelSpecError(f'model spec lacks {", ".join(missing)}')
        try:
            class_set = ClassSet.from_list(data['class_set'])
        except ClassSetError as exc:
            raise ModelSpecError(f'bad class_set in model spec: {exc}') from exc
        arch_kwargs = data.get('arch_kwargs') or {}
        if not isinstance(arch_kwargs, Mapping):
            raise ModelSpecError(f'arch_kwargs must be a mapping, got {arch_kwargs!r}')
        return cls(arch=data['arch'], class_set=class_set,
                   input_size=tuple(data['input_size']),
                   mean=tuple(data.get('mean', IMAGENET_MEAN)),
                   std=tuple(data.get('std', IMAGENET_STD)),
                   model_name=data.get('model_name', DEFAULT_MODEL_NAME),
                   arch_kwargs=arch_kwargs,
                   input_layout=data.get('input_layout', 'NCHW'))


def sidecar_path(path_pt: str | Path) -> Path:
    """Return the JSON sidecar path that belongs to a weights file."""
    return Path(path_pt).with_suffix('.json')


def save_checkpoint(path_pt: str | Path, model: nn.Module, spec: ModelSpec,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write the state_dict (fp32, CPU) to `<stem>.pt` and the spec + `extra` to `<stem>.json`.

    Returns the weights path. Both files are written to a temporary name first and renamed, so
    a crash never leaves a half-written checkpoint behind.
    """
    path_pt = Path(path_pt)
    if path_pt.suffix not in ('.pt', '.pth'):
        raise ValueError(f'checkpoint path must end in .pt or .pth, got {str(path_pt)!r}')
    path_pt.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().to('cpu', torch.float32) if v.is_floating_point() else
                 v.detach().to('cpu')).contiguous()
             for k, v in model.state_dict().items()}
    doc = spec.to_dict()
    doc['saved_utc'] = datetime.now(timezone.utc).isoformat(timespec='seconds')
    doc['weights_file'] = path_pt.name
    doc['extra'] = dict(extra or {})
    tmp_pt = path_pt.with_name(path_pt.name + '.tmp')
    side = sidecar_path(path_pt)
    tmp_side = side.with_name(side.name + '.tmp')
    torch.save(state, tmp_pt)
    tmp_side.write_text(json.dumps(doc, indent=2, default=_json_default) + '\n',
                        encoding='utf-8')
    tmp_pt.replace(path_pt)
    tmp_side.replace(side)
    return path_pt


def _json_default(obj: Any) -> Any:
    if hasattr(obj, 'tolist'):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f'{type(obj).__name__} is not JSON serialisable')


def read_sidecar(path_pt: str | Path) -> dict[str, Any]:
    """Return the parsed sidecar of `path_pt`; raise ModelLoadError when missing or corrupt."""
    side = sidecar_path(path_pt)
    if not side.is_file():
        raise ModelLoadError(f'sidecar {str(side)!r} is missing; a checkpoint needs its .json '
                             'beside the .pt (written by save_checkpoint)')
    try:
        doc = json.loads(side.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f'sidecar {str(side)!r} is not valid JSON: {exc}') from exc
    if not isinstance(doc, dict):
        raise ModelLoadError(f'sidecar {str(side)!r} must hold a JSON object')
    return doc


def load_spec(path_pt: str | Path) -> ModelSpec:
    """Return the ModelSpec stored in the sidecar of `path_pt`."""
    doc = read_sidecar(path_pt)
    try:
        return ModelSpec.from_dict(doc)
    except ModelSpecError as exc:
        raise ModelLoadError(f'sidecar {str(sidecar_path(path_pt))!r}: {exc}') from exc


def load_checkpoint(path_pt: str | Path, *,
                    map_location: str | torch.device = 'cpu') -> tuple[nn.Module, ModelSpec]:
    """Rebuild the model of a checkpoint, load its weights and return (model.eval(), spec)."""
    path_pt = Path(path_pt)
    if not path_pt.is_file():
        raise ModelLoadError(f'checkpoint {str(path_pt)!r} does not exist')
    spec = load_spec(path_pt)
    try:
        model = spec.build()
    except ValueError as exc:
        raise ModelLoadError(f'cannot build {spec.arch!r} for {str(path_pt)!r}: {exc}') from exc
    try:
        state = torch.load(path_pt, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt file
        raise ModelLoadError(f'weights {str(path_pt)!r} are corrupt or unreadable: {exc}') from exc
    if not isinstance(state, dict):
        raise ModelLoadError(f'{str(path_pt)!r} does not hold a state_dict '
                             f'(got {type(state).__name__})')
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelLoadError(
            f'weights {str(path_pt)!r} do not match {spec.arch!r} {spec.arch_kwargs}: '
            f'missing keys {missing[:5]}{"..." if len(missing) > 5 else ""}, unexpected keys '
            f'{unexpected[:5]}{"..." if len(unexpected) > 5 else ""}')
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatch
        raise ModelLoadError(f'weights {str(path_pt)!r} do not fit {spec.arch!r}: {exc}') from exc
    model.to(map_location)
    return model.eval(), spec


def default_model_path(name: str = DEFAULT_MODEL_NAME, suffix: str = '.pt') -> Path:
    """Return the path of a model shipped in seg_perception/resources/models/<name><suffix>."""
    ref = resources.files('seg_perception.resources') / 'models' / f'{name}{suffix}'
    return Path(str(ref))


def model_file(source: str | Path) -> Path:
    """Return the checkpoint a model argument names: a shipped model's file, else the path.

    Every CLI that reads a checkpoint (train --init, quantize, evaluate, adapt) takes the shipped
    names as `load_segmenter` does.
    """
    return default_model_path(str(source)) if str(source) in SHIPPED_MODELS else Path(source)
