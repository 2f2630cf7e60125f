"""Run an ONNX segmentation network with ONNX Runtime behind the torch `Segmenter` interface.

Tuned for latency at batch 1: all graph optimisations (constant folding, Conv+BN+activation
fusion, NCHWc layout on x86), one intra-op thread per torch thread, sequential execution. On a
CUDA device the TensorRT execution provider is used when this onnxruntime has it, else CUDA.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from seg_perception.segmentation.backends import import_runtime
from seg_perception.segmentation.graph_io import check_graph_io
from seg_perception.segmentation.model_spec import ModelLoadError

if TYPE_CHECKING:
    from seg_perception.segmentation.model_spec import ModelSpec

LOG = logging.getLogger(__name__)


class OnnxSegmenter:
    """Wrap an onnxruntime session: NCHW torch batch in, NCHW torch logits out on `device`.

    The graph's layout (NCHW/NHWC in and out, fixed or dynamic batch) is checked against the
    sidecar at load (see :mod:`.graph_io`). `threads` = intra-op threads (None: torch's count).
    """

    backend = 'onnxruntime'
    fixed_input_size = True  # an exported graph runs at the size it was exported at

    def __init__(self, path: str | Path, spec: ModelSpec, *, device: torch.device,
                 threads: int | None = None) -> None:
        ort = import_runtime('onnxruntime')
        self.device = torch.device(device)
        available = ort.get_available_providers()
        providers: list = ['CPUExecutionProvider']
        if self.device.type == 'cuda':
            index = self.device.index or 0
            if 'CUDAExecutionProvider' in available:
                providers.insert(0, ('CUDAExecutionProvider', {'device_id': index}))
            if 'TensorrtExecutionProvider' in available:
                providers.insert(0, ('TensorrtExecutionProvider', {'device_id': index}))
            if len(providers) == 1:
                LOG.warning('%s: onnxruntime has no CUDA provider here (install '
                            'onnxruntime-gpu); running it on the CPU', path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings are about graph internals
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options,
                                                providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelLoadError(f'{path}: not a loadable ONNX model ({exc})') from exc
        self.providers = tuple(self.session.get_providers())
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelLoadError(f'{path}: expected one input, the graph has {len(inputs)}')
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.io = check_graph_io(path, self.input_name, inputs[0].shape, outputs[0].shape, spec)

    @property
    def input_layout(self) -> str:
        """Return the graph's input layout ('NCHW' or 'NHWC')."""
        return self.io.input_layout

    @property
    def output_layout(self) -> str:
        """Return the graph's output layout ('NCHW' or 'NHWC')."""
        return self.io.output_layout

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Return (N, C, h, w) float logits on the segmenter's device."""
        out = self.io.run(self._run, self.io.to_graph(batch))
        return self.io.from_graph(out, self.device)

    def _run(self, array: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: array})[0]
