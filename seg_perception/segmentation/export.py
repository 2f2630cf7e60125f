"""Export a torch model to ONNX or TorchScript with its sidecar, and check it against PyTorch.

An exported file is only useful if it computes what the checkpoint computes, so every export is
checked before it is kept: the same normalised frames (synthetic cell frames and noise) go
through PyTorch and through the exported file in its runtime, and the largest logit difference
and the share of pixels with the same label are measured. Files are written under a temporary
name and renamed only when the check passes, so a failed export leaves nothing behind.

`cached_onnx` serves the runtime backends: a torch model run with onnxruntime or OpenVINO is
exported once per (weights, spec, torch version) into the cache folder and reused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import datetime, timezone
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence
import warnings

import numpy as np
import torch
from torch import nn

from seg_perception.segmentation.model_spec import ModelLoadError, ModelSpec

__all__ = ['ExportError', 'FORMATS', 'Parity', 'cache_dir', 'cached_onnx', 'compare',
           'export_model', 'parity_batches']

LOG = logging.getLogger(__name__)
#: format -> file suffix
FORMATS: dict[str, str] = {'onnx': '.onnx', 'torchscript': '.ts'}
#: ONNX opset of exported graphs (onnxruntime >= 1.14 and OpenVINO >= 2023 read it)
OPSET = 17
#: first seed of the synthetic frames used for parity checks and INT8 calibration: inside the
#: training range (< 100000), never the held-out evaluation seeds
CHECK_SEED_START = 90_000
#: exported graphs kept in the cache folder (oldest removed first)
CACHE_ENTRIES = 16


class ExportError(RuntimeError):
    """Raised when a model cannot be exported or the exported file disagrees with PyTorch."""


@dataclass(frozen=True)
class Parity:
    """How closely an exported model follows the PyTorch one on the same frames."""

    frames: int
    max_abs_logit_diff: float
    label_agreement: float  # share of pixels whose argmax label is the same, 0..1

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form written into sidecars and reports."""
        return {'frames': self.frames, 'max_abs_logit_diff': float(self.max_abs_logit_diff),
                'label_agreement': float(self.label_agreement)}


class _LogitsOnly(nn.Module):
    """Return the logits tensor of a module that returns {'out': logits} (ONNX wants tensors)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, C, h, w) logits."""
        out = self.module(x)
        return out['out'] if isinstance(out, dict) else out


def on_cpu(module: nn.Module) -> nn.Module:
    """Return `module` if it is on the CPU, else a CPU copy (the caller's stays on its device)."""
    if all(p.device.type == 'cpu' for p in module.parameters()):
        return module.eval()
    return copy.deepcopy(module).cpu().eval()


def cache_dir() -> Path:
    """Return the exported graphs' folder: $SEG_PERCEPTION_CACHE or ~/.cache/seg_perception."""
    root = os.environ.get('SEG_PERCEPTION_CACHE')
    if root:
        return Path(root) / 'onnx'
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'seg_perception' / 'onnx'


def parity_batches(spec: ModelSpec, *, synthetic: int = 6, noise: int = 2,
                   seed_start: int = CHECK_SEED_START) -> list[torch.Tensor]:
    """Return normalised (1, 3, h, w) CPU batches at the spec's input size.

    Synthetic cell frames (what the model is for) rendered at the input size, then uniform noise
    (inputs far from the training data, where exported graphs tend to diverge first).
    """
    from seg_perception.segmentation.preprocess import Normaliser
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    h, w = spec.input_size
    normaliser = Normaliser(mean=spec.mean, std=spec.std, device=torch.device('cpu'))
    frames = []
    if synthetic:
        cell = SyntheticCell(SyntheticConfig(width=w, height=h))
        frames += [cell.render(seed=seed_start + i).rgb for i in range(synthetic)]
    rng = np.random.default_rng(seed_start)
    frames += [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(noise)]
    return [normaliser.batch(normaliser.to_device([f]), (h, w)).contiguous() for f in frames]


@torch.inference_mode()
def compare(reference: Callable[[torch.Tensor], torch.Tensor],
            candidate: Callable[[torch.Tensor], torch.Tensor],
            batches: Sequence[torch.Tensor]) -> Parity:
    """Run both segmenters on the same batches; return their largest logit gap and agreement."""
    diff, same, total = 0.0, 0, 0
    for batch in batches:
        ref = reference(batch).float().cpu()
        got = candidate(batch).float().cpu()
        if ref.shape != got.shape:
            raise ExportError(f"output shape {tuple(got.shape)} differs from PyTorch's "
                              f'{tuple(ref.shape)}')
        diff = max(diff, float((ref - got).abs().max()))
        same += int((ref.argmax(1) == got.argmax(1)).sum())
        total += ref.shape[0] * ref.shape[2] * ref.shape[3]
    return Parity(frames=len(batches), max_abs_logit_diff=diff,
                  label_agreement=same / max(1, total))


def write_onnx(module: nn.Module, spec: ModelSpec, path: Path, *, dynamic_batch: bool) -> None:
    """Write `module` at the spec's input size as an ONNX graph to `path` (opset OPSET)."""
    try:
        import onnx  # noqa: F401 - torch's exporter needs it; say so before it fails deep inside
    except ImportError as exc:
        raise ExportError('ONNX export needs the onnx package (pip install onnx)') from exc
    h, w = spec.input_size
    example = torch.zeros(1, 3, h, w)
    if spec.input_layout != 'NCHW':
        raise ExportError(f'export writes NCHW graphs; the spec says {spec.input_layout}')
    axes = {'input': {0: 'batch'}, 'logits': {0: 'batch'}} if dynamic_batch else None
    wrapped = _LogitsOnly(module).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript-based exporter's deprecation notice
        try:
            torch.onnx.export(wrapped, (example,), str(path), dynamo=False, opset_version=OPSET,
                              input_names=['input'], output_names=['logits'],
                              dynamic_axes=axes, do_constant_folding=True)
        except Exception as exc:  # noqa: B902 - torch raises many types for unexportable ops
            raise ExportError(f'torch.onnx.export failed for {spec.arch!r}: '
                              f'{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}'
                              ) from exc


def _export_torchscript_file(module: nn.Module, spec: ModelSpec, path: Path) -> None:
    h, w = spec.input_size
    with torch.inference_mode(False), torch.no_grad():
        try:
            traced = torch.jit.trace(module.eval(), torch.zeros(1, 3, h, w), strict=False)
        except Exception as exc:  # noqa: B902 - tracing raises many types
            raise ExportError(f'torch.jit.trace failed for {spec.arch!r}: {exc}') from exc
    traced.save(str(path))


def sidecar_doc(spec: ModelSpec, **export: Any) -> dict[str, Any]:
    doc = spec.to_dict()
    doc['export'] = {'exported_utc': datetime.now(timezone.utc).isoformat(timespec='seconds'),
                     'torch_version': torch.__version__, **export}
    return doc


def load_torch_module(source: str, spec_path: str | Path | None) -> tuple[nn.Module, ModelSpec]:
    """Load `source` as an eager torch module on the CPU; refuse models that cannot export."""
    from seg_perception.segmentation.loader import load_segmenter
    segmenter, spec = load_segmenter(source, device='cpu', spec_path=spec_path)
    module = getattr(segmenter, 'module', None)
    if module is None or getattr(segmenter, 'backend', 'torch') != 'torch':
        raise ExportError(f'{source!r} is not a PyTorch model; export takes checkpoints, the '
                          'default model and registry architectures')
    if getattr(segmenter, 'produces_instances', False):
        raise ExportError(f'{source!r}: Mask R-CNN has data-dependent detection steps that '
                          'do not export; run it with backend torch')
    return module, spec


def export_model(source: str, *, fmt: str, out: str | Path,
                 input_size: tuple[int, int] | None = None, dynamic_batch: bool = False,
                 spec_path: str | Path | None = None, check_frames: int = 8,
                 min_agreement: float = 0.999) -> tuple[Path, Parity]:
    """Export `source` to `out` (+ `<stem>.json`) after checking it against PyTorch.

    input_size: (height, width) of the exported graph (default: the sidecar's). Returns the
    written path and the parity measured on `check_frames` frames. Raises ExportError (nothing
    written) when the export fails or labels agree on less than `min_agreement` of the pixels.
    """
    if fmt not in FORMATS:
        raise ExportError(f'format must be one of {", ".join(FORMATS)}, got {fmt!r}')
    out = Path(out)
    if out.suffix.lower() != FORMATS[fmt]:
        raise ExportError(f'--out for {fmt} must end in {FORMATS[fmt]}, got {str(out)!r}')
    if fmt == 'torchscript' and dynamic_batch:
        LOG.info('TorchScript graphs take any batch size; --dynamic-batch changes nothing')
    module, spec = load_torch_module(source, spec_path)
    module = on_cpu(module)
    if input_size is not None:
        spec = replace(spec, input_size=tuple(input_size))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f'.{out.stem}.tmp{out.suffix}')
    tmp_side = out.with_name(f'.{out.stem}.tmp.json')
    try:
        if fmt == 'onnx':
            write_onnx(module, spec, tmp, dynamic_batch=dynamic_batch)
        else:
            _export_torchscript_file(module, spec, tmp)
        parity = check_export(module, spec, tmp, fmt, frames=check_frames)
        if parity.label_agreement < min_agreement:
            raise ExportError(f'the exported model agrees with PyTorch on only '
                              f'{parity.label_agreement:.4%} of the pixels (needs '
                              f'{min_agreement:.2%}); max logit difference '
                              f'{parity.max_abs_logit_diff:.3g}')
        doc = sidecar_doc(spec, format=fmt, source=str(source),
                          opset=OPSET if fmt == 'onnx' else None,
                          dynamic_batch=bool(dynamic_batch), parity=parity.to_dict())
        tmp_side.write_text(json.dumps(doc, indent=2) + '\n', encoding='utf-8')
        tmp.replace(out)
        tmp_side.replace(out.with_suffix('.json'))
    finally:
        tmp.unlink(missing_ok=True)
        tmp_side.unlink(missing_ok=True)
    return out, parity


def check_export(module: nn.Module, spec: ModelSpec, path: Path, fmt: str, *,
                 frames: int = 8, runtime: str = 'onnxruntime') -> Parity:
    """Compare `module` with the exported file at `path` run in `runtime` (ONNX) or torch."""
    from seg_perception.segmentation.torchscript_backend import load_torchscript, TorchSegmenter
    cpu = torch.device('cpu')
    reference = TorchSegmenter(module, device=cpu)
    if fmt == 'onnx':
        from seg_perception.segmentation.backends import graph_segmenter
        candidate, _ = graph_segmenter(runtime, path, spec, device=cpu)
    else:
        candidate = TorchSegmenter(load_torchscript(path, device=cpu), device=cpu)
    synthetic = max(0, frames - max(1, frames // 4))
    return compare(reference, candidate,
                   parity_batches(spec, synthetic=synthetic, noise=frames - synthetic))


def _weights_digest(module: nn.Module, spec: ModelSpec) -> str:
    """Return a digest of the weights, the spec and the exporter (the cache key)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    digest.update(f'{torch.__version__}/{OPSET}'.encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def cached_onnx(module: nn.Module, spec: ModelSpec, *, runtime: str = 'onnxruntime') -> Path:
    """Return an ONNX export of `module` at the spec's input size, exported once and cached.

    The file is checked against PyTorch in `runtime` when it is first written (labels on
    >= 99.9 % of the pixels); a failed check raises ModelLoadError and caches nothing.
    """
    module = on_cpu(module)
    folder = cache_dir()
    path = folder / f'{spec.arch}-{spec.input_size[0]}x{spec.input_size[1]}-' \
                    f'{_weights_digest(module, spec)}.onnx'
    if path.is_file():
        os.utime(path)  # most recently used
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.stem}.{os.getpid()}.tmp.onnx')
    try:
        write_onnx(module, spec, tmp, dynamic_batch=False)
        parity = check_export(module, spec, tmp, 'onnx', frames=2, runtime=runtime)
        if parity.label_agreement < 0.999:
            raise ExportError(f'the ONNX export agrees with PyTorch on only '
                              f'{parity.label_agreement:.4%} of the pixels')
        tmp.replace(path)
    except ExportError as exc:
        raise ModelLoadError(f'cannot run {spec.arch!r} outside PyTorch: {exc}') from exc
    finally:
        tmp.unlink(missing_ok=True)
    _trim_cache(folder)
    LOG.info('exported %s to %s for the runtime backends', spec.model_name, path)
    return path


def _trim_cache(folder: Path) -> None:
    entries = sorted(folder.glob('*.onnx'), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[CACHE_ENTRIES:]:
        old.unlink(missing_ok=True)
