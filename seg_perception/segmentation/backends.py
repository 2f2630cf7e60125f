"""Which runtime executes the network: PyTorch, ONNX Runtime or OpenVINO, chosen by name or speed.

On a CPU the network is most of a frame, and the runtime decides its cost more than anything
else: on this project's 2-core AMD EPYC the shipped model took 59 ms in PyTorch, 31 ms in ONNX
Runtime and 47 ms in OpenVINO (fp32, same labels). Which runtime wins depends on the CPU, so
`auto` measures the installed ones on the model at start-up and keeps the fastest.

A torch model (the default model, a checkpoint, a registry architecture) runs in the graph
runtimes through an ONNX export made once and cached (:func:`.export.cached_onnx`); exported
files (.onnx, OpenVINO .xml) run only in the graph runtimes.
"""

from __future__ import annotations

from dataclasses import replace
import importlib.util
from pathlib import Path
import sys
from typing import Any

import torch

from seg_perception.segmentation.model_spec import ModelLoadError, ModelSpec

__all__ = ['BACKENDS', 'RUNTIMES', 'graph_segmenter', 'import_runtime', 'is_installed',
           'load_backend', 'runtimes_for', 'shipped_int8']

#: runtimes that execute a network
RUNTIMES: tuple[str, ...] = ('torch', 'onnxruntime', 'openvino')
#: values of the `backend` option: a runtime, or 'auto' (the fastest installed one)
BACKENDS: tuple[str, ...] = ('auto',) + RUNTIMES
#: exported file suffix -> the runtimes that read it
GRAPH_RUNTIMES: dict[str, tuple[str, ...]] = {'.onnx': ('onnxruntime', 'openvino'),
                                              '.xml': ('openvino',)}
#: the package each runtime needs (named in errors); torch models also need `onnx` to export
PACKAGES: dict[str, str] = {'torch': 'torch', 'onnxruntime': 'onnxruntime',
                            'openvino': 'openvino'}
INSTALL_NOTES: dict[str, str] = {'onnxruntime': '; onnxruntime-gpu for CUDA'}


def import_runtime(runtime: str) -> Any:
    """Return the runtime's Python module; raise ModelLoadError naming the package if missing."""
    try:
        return importlib.import_module(PACKAGES[runtime])
    except ImportError as exc:
        raise ModelLoadError(f'backend {runtime!r} needs the {PACKAGES[runtime]!r} package '
                             f'(pip install {PACKAGES[runtime]}{INSTALL_NOTES.get(runtime, "")})'
                             ) from exc


def is_installed(runtime: str) -> bool:
    """Return True when the runtime's Python package can be imported here.

    A None entry in sys.modules blocks an import (Python's own convention), so it counts as
    not installed.
    """
    name = PACKAGES[runtime]
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def _graph_suffix(source: str) -> str | None:
    suffix = Path(source).suffix.lower()
    return suffix if suffix in GRAPH_RUNTIMES else None


def _runs_on(runtime: str, device: torch.device) -> bool:
    """Return True when `runtime` can run on the torch `device` (CUDA needs its providers)."""
    if device.type == 'cpu' or runtime == 'torch':
        return True
    if runtime == 'onnxruntime':
        import onnxruntime
        providers = onnxruntime.get_available_providers()
        return 'CUDAExecutionProvider' in providers or 'TensorrtExecutionProvider' in providers
    return False  # OpenVINO does not drive NVIDIA GPUs


def runtimes_for(source: str, device: torch.device) -> tuple[str, ...]:
    """Return the installed runtimes that can run `source` on `device`, torch first."""
    from seg_perception.segmentation.maskrcnn import ARCHITECTURES as MASKRCNN
    suffix = _graph_suffix(source)
    if suffix is not None:
        possible = GRAPH_RUNTIMES[suffix]
    elif source.partition(':')[0] in MASKRCNN \
            or Path(source).suffix.lower() in ('.ts', '.torchscript'):
        possible = ('torch',)  # detection steps / scripted graphs: PyTorch only
    else:
        possible = RUNTIMES if importlib.util.find_spec('onnx') is not None else ('torch',)
    return tuple(r for r in possible if is_installed(r) and _runs_on(r, device))


def load_backend(runtime: str, source: str, *, device: torch.device,
                 spec_path: str | Path | None = None, input_size: tuple[int, int] | None = None,
                 threads: int | None = None, openvino_device: str = 'CPU',
                 torch_model: tuple[Any, ModelSpec] | None = None) -> tuple[Any, ModelSpec]:
    """Load `source` to run in `runtime` on `device`; return (segmenter, spec).

    input_size: the network size; a torch model is exported at it (default: the sidecar's).
    torch_model: an already loaded (TorchSegmenter, spec) of `source`, reused for the export.
    Raises ModelLoadError naming the package to install or the reason it cannot run.
    """
    from seg_perception.segmentation.loader import load_segmenter
    if runtime not in RUNTIMES:
        raise ModelLoadError(f'backend must be one of {", ".join(BACKENDS)}, got {runtime!r}')
    if not is_installed(runtime):
        import_runtime(runtime)  # raises, naming the package
    suffix = _graph_suffix(source)
    if runtime == 'torch':
        if suffix is not None:
            raise ModelLoadError(f'{source!r} is an exported graph; PyTorch cannot run it: use '
                                 f'backend {" or ".join(GRAPH_RUNTIMES[suffix])}')
        return torch_model or load_segmenter(source, device=device, spec_path=spec_path,
                                             input_size=input_size)
    if suffix is not None:
        if runtime not in GRAPH_RUNTIMES[suffix]:
            raise ModelLoadError(f'{runtime} cannot read {suffix} files; use backend '
                                 f'{" or ".join(GRAPH_RUNTIMES[suffix])}')
        from seg_perception.segmentation.loader import sidecar_for
        spec = sidecar_for(Path(source), spec_path)
        return graph_segmenter(runtime, Path(source), spec, device=device, threads=threads,
                               openvino_device=openvino_device)
    if not _runs_on(runtime, device):
        raise ModelLoadError(f'backend {runtime} cannot run on {device} here (onnxruntime needs '
                             'onnxruntime-gpu for CUDA; OpenVINO runs on CPUs and Intel GPUs)')
    if importlib.util.find_spec('onnx') is None:
        raise ModelLoadError(f'backend {runtime} runs torch models through an ONNX export, '
                             'which needs the onnx package (pip install onnx)')
    segmenter, spec = torch_model or load_segmenter(source, device=torch.device('cpu'),
                                                    spec_path=spec_path)
    module = getattr(segmenter, 'module', None)
    if module is None or getattr(segmenter, 'produces_instances', False):
        raise ModelLoadError(f'{source!r} runs only with backend torch (it does not export)')
    if input_size is not None:
        spec = replace(spec, input_size=tuple(input_size))
    from seg_perception.segmentation.export import cached_onnx
    path = cached_onnx(module, spec, runtime=runtime)
    return graph_segmenter(runtime, path, spec, device=device, threads=threads,
                           openvino_device=openvino_device)


def graph_segmenter(runtime: str, path: Path, spec: ModelSpec, *, device: torch.device,
                    threads: int | None = None, openvino_device: str = 'CPU'
                    ) -> tuple[Any, ModelSpec]:
    """Return (segmenter, spec) for an exported graph at `path` run in a graph `runtime`."""
    if runtime == 'onnxruntime':
        from seg_perception.segmentation.onnx_backend import OnnxSegmenter
        return OnnxSegmenter(path, spec, device=device, threads=threads), spec
    from seg_perception.segmentation.openvino_backend import OpenVinoSegmenter
    return OpenVinoSegmenter(path, spec, device=device, threads=threads,
                             openvino_device=openvino_device), spec


#: the INT8 OpenVINO IR of the default model shipped beside it (seg_perception quantize)
SHIPPED_INT8 = 'default_int8'


def shipped_int8(source: str, device: torch.device, precision: str) -> tuple[Path | None, str]:
    """Return (the shipped INT8 default model, '') when `auto` may use it, else (None, why).

    Only for the default model on a CPU with OpenVINO installed, when precision is not 'fp32'
    (the node's default 'fp16' means "reduced precision where the hardware has it"), and only
    while the IR was quantised from the default model as it is now (SHA-256 in its sidecar).
    """
    from seg_perception.segmentation.model_spec import default_model_path
    if source != 'default' or device.type != 'cpu' or precision == 'fp32':
        return None, 'not asked for'
    if not is_installed('openvino'):
        return None, 'openvino is not installed'
    path = default_model_path(SHIPPED_INT8, '.xml')
    if not path.is_file():
        return None, f'{path.name} is not shipped'
    import json
    from seg_perception.segmentation.quantize import source_digest
    try:
        doc = json.loads(path.with_suffix('.json').read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        return None, f'{path.with_suffix(".json").name} is unreadable ({exc})'
    want = doc.get('export', {}).get('source_sha256')
    if want != source_digest('default'):
        return None, f'{path.name} was quantised from another default model (run seg_perception ' \
                     f'quantize default --out {path})'
    return path, ''
