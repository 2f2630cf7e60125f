"""Run an ONNX file or OpenVINO IR (.xml + .bin) with OpenVINO behind the `Segmenter` interface.

OpenVINO compiles the graph for the CPU it runs on (oneDNN kernels, fused layers, INT8 where the
IR was quantised by NNCF) or for an Intel GPU (`openvino_device='GPU'`). Compiled for latency:
one stream, one inference thread per torch thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from seg_perception.segmentation.backends import import_runtime
from seg_perception.segmentation.graph_io import check_graph_io
from seg_perception.segmentation.model_spec import ModelLoadError

if TYPE_CHECKING:
    from seg_perception.segmentation.model_spec import ModelSpec

SUFFIXES = ('.onnx', '.xml')


class OpenVinoSegmenter:
    """Wrap a compiled OpenVINO model: NCHW torch batch in, NCHW torch logits out on `device`.

    device: where the logits go (the engine's torch device); openvino_device: where OpenVINO
    runs the graph ('CPU', 'GPU' for an Intel GPU, 'AUTO').
    """

    backend = 'openvino'
    fixed_input_size = True  # an exported graph runs at the size it was exported at

    def __init__(self, path: str | Path, spec: ModelSpec, *, device: torch.device,
                 threads: int | None = None, openvino_device: str = 'CPU') -> None:
        ov = import_runtime('openvino')
        self.device = torch.device(device)
        path = Path(path)
        if path.suffix.lower() not in SUFFIXES:
            raise ModelLoadError(f'{path}: OpenVINO reads {" or ".join(SUFFIXES)} files')
        if path.suffix.lower() == '.xml' and not path.with_suffix('.bin').is_file():
            raise ModelLoadError(f'{path}: the IR weights {path.with_suffix(".bin").name!r} '
                                 'are missing beside it')
        core = ov.Core()
        if openvino_device not in ('AUTO',) + tuple(core.available_devices):
            raise ModelLoadError(f'OpenVINO device {openvino_device!r} is not available here '
                                 f'(available: {", ".join(core.available_devices)})')
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise ModelLoadError(f'{path}: not a loadable model for OpenVINO ({exc})') from exc
        if len(model.inputs) != 1:
            raise ModelLoadError(f'{path}: expected one input, the graph has '
                                 f'{len(model.inputs)}')
        in_shape = [d.get_length() if d.is_static else None
                    for d in model.inputs[0].get_partial_shape()]
        out_shape = [d.get_length() if d.is_static else None
                     for d in model.outputs[0].get_partial_shape()]
        self.io = check_graph_io(path, model.inputs[0].get_any_name(), in_shape, out_shape,
                                 spec)
        config = {'PERFORMANCE_HINT': 'LATENCY', 'NUM_STREAMS': '1'}
        if openvino_device == 'CPU':
            config['INFERENCE_NUM_THREADS'] = str(int(threads or torch.get_num_threads()))
            # On CPUs with native bf16 (AVX512-BF16, AMX) the CPU plugin would otherwise run an
            # fp32 graph in bf16 and change labels (99.88 % agreement with PyTorch measured on
            # such a machine); reduced precision here comes from an INT8 IR, never implicitly.
            config['INFERENCE_PRECISION_HINT'] = 'f32'
        try:
            self.compiled = core.compile_model(model, openvino_device, config)
        except Exception as exc:
            raise ModelLoadError(f'{path}: OpenVINO cannot compile it for {openvino_device} '
                                 f'({exc})') from exc
        self.openvino_device = openvino_device
        self._request = self.compiled.create_infer_request()

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Return (N, C, h, w) float logits on the segmenter's device."""
        out = self.io.run(self._run, self.io.to_graph(batch))
        return self.io.from_graph(out, self.device)

    def _run(self, array: np.ndarray) -> np.ndarray:
        self._request.infer({0: array})
        # the request reuses its output buffer at the next call: hand over a copy
        return self._request.get_output_tensor(0).data.copy()
