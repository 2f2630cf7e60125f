"""Run an ONNX segmentation network with onnxruntime behind the torch `Segmenter` interface."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from seg_perception.segmentation.loader import ModelLoadError

if TYPE_CHECKING:
    from seg_perception.segmentation.model_spec import ModelSpec

LOG = logging.getLogger(__name__)
LAYOUTS = ('NCHW', 'NHWC')


def _static(dim: object) -> int | None:
    """Return a static ONNX dimension, or None for a symbolic/unknown one."""
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxSegmenter:
    """Wrap an onnxruntime session: NCHW torch batch in, NCHW torch logits out on `device`.

    Handles the input layout of the spec (`input_layout` NCHW/NHWC) and the output layout
    (auto-detected from the static output shape and the class count, or forced with
    `arch_kwargs['output_layout']`). A graph with a fixed batch size of 1 is run frame by frame.
    """

    def __init__(self, path: str | Path, spec: ModelSpec, *, device: torch.device) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelLoadError(f'{path}: onnxruntime is not installed') from exc
        self.device = torch.device(device)
        providers = ['CPUExecutionProvider']
        if self.device.type == 'cuda' and 'CUDAExecutionProvider' in ort.get_available_providers():
            providers.insert(0, ('CUDAExecutionProvider', {'device_id': self.device.index or 0}))
        elif self.device.type == 'cuda':
            LOG.warning('%s: onnxruntime has no CUDA provider here; running it on the CPU', path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(torch.get_num_threads(), 4)
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
        layout = spec.input_layout
        if layout not in LAYOUTS:
            raise ModelLoadError(f'{path}: input_layout {layout!r} is not one of {LAYOUTS}')
        self.input_layout = layout
        in_shape = list(inputs[0].shape)
        if len(in_shape) != 4:
            raise ModelLoadError(f'{path}: input {self.input_name!r} has shape {in_shape}, '
                                 'expected a 4-D image batch')
        h, w = spec.input_size
        expected = [None, 3, h, w] if layout == 'NCHW' else [None, h, w, 3]
        for axis in (1, 2, 3):
            got = _static(in_shape[axis])
            if got is not None and got != expected[axis]:
                raise ModelLoadError(
                    f'{path}: input {self.input_name!r} has shape {in_shape} but the spec asks '
                    f'for {layout} with input_size {tuple(spec.input_size)} '
                    f'(expected {expected[1:]} after the batch axis)')
        self.fixed_batch = _static(in_shape[0])
        self.num_outputs = spec.class_set.num_outputs
        self.output_layout = self._output_layout(path, outputs[0].shape, spec)

    def _output_layout(self, path: str | Path, shape: list, spec: ModelSpec) -> str:
        forced = (spec.arch_kwargs or {}).get('output_layout')
        if forced is not None:
            if forced not in LAYOUTS:
                raise ModelLoadError(f'{path}: output_layout {forced!r} is not one of {LAYOUTS}')
            return forced
        if len(shape) == 4 and _static(shape[3]) == self.num_outputs \
                and _static(shape[1]) != self.num_outputs:
            return 'NHWC'
        return 'NCHW'

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Return (N, C, h, w) float logits on the segmenter's device."""
        x = batch.detach().float()
        if self.input_layout == 'NHWC':
            x = x.permute(0, 2, 3, 1)
        array = np.ascontiguousarray(x.cpu().numpy())
        if self.fixed_batch is not None and array.shape[0] != self.fixed_batch:
            if self.fixed_batch != 1:
                raise ValueError(f'the ONNX graph takes batches of {self.fixed_batch}, '
                                 f'got {array.shape[0]}')
            out = np.concatenate([self._run(array[i:i + 1]) for i in range(array.shape[0])])
        else:
            out = self._run(array)
        logits = torch.from_numpy(out)
        if self.output_layout == 'NHWC':
            logits = logits.permute(0, 3, 1, 2)
        if logits.shape[1] != self.num_outputs:
            raise ValueError(f'the ONNX graph returned {logits.shape[1]} channels, the class set '
                             f'needs {self.num_outputs}')
        return logits.to(self.device, non_blocking=True)

    def _run(self, array: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: array})[0]
