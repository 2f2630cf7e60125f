"""The tensor layout of an exported graph (ONNX or OpenVINO IR) and the torch <-> array hand-over.

Exported graphs come from elsewhere (our `seg_perception export`, TensorFlow converters, Model
Zoos), so their input may be NCHW or NHWC, their batch axis fixed or dynamic, and their output
NCHW or NHWC. Every runtime backend checks the graph against the model's sidecar the same way
here, once at load, and converts batches the same way at every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from seg_perception.segmentation.model_spec import ModelLoadError, ModelSpec

__all__ = ['GraphIO', 'check_graph_io']

LAYOUTS = ('NCHW', 'NHWC')


def _static(dim: object) -> int | None:
    """Return a static dimension, or None for a symbolic/unknown one."""
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


@dataclass(frozen=True)
class GraphIO:
    """How one graph takes and returns batches (checked against its sidecar)."""

    input_layout: str  # 'NCHW' | 'NHWC'
    output_layout: str  # 'NCHW' | 'NHWC'
    fixed_batch: int | None  # the graph's static batch size, None when dynamic
    num_outputs: int  # class channels the class set needs

    def to_graph(self, batch: torch.Tensor) -> np.ndarray:
        """Return a normalised NCHW torch batch as the contiguous float32 array the graph takes."""
        x = batch.detach().float()
        if self.input_layout == 'NHWC':
            x = x.permute(0, 2, 3, 1)
        return np.ascontiguousarray(x.cpu().numpy())

    def run(self, run_graph: Callable[[np.ndarray], np.ndarray], array: np.ndarray) -> np.ndarray:
        """Run `run_graph` on `array`, frame by frame when the graph's batch is fixed at 1."""
        if self.fixed_batch is None or array.shape[0] == self.fixed_batch:
            return run_graph(array)
        if self.fixed_batch != 1:
            raise ValueError(f'the graph takes batches of {self.fixed_batch}, got '
                             f'{array.shape[0]}')
        return np.concatenate([run_graph(array[i:i + 1]) for i in range(array.shape[0])])

    def from_graph(self, out: np.ndarray, device: torch.device) -> torch.Tensor:
        """Return the graph's output as (N, C, h, w) float logits on `device`."""
        logits = torch.from_numpy(out)
        if self.output_layout == 'NHWC':
            logits = logits.permute(0, 3, 1, 2)
        if logits.ndim != 4 or logits.shape[1] != self.num_outputs:
            raise ValueError(f'the graph returned logits of shape {tuple(logits.shape)}, the '
                             f'class set needs {self.num_outputs} channels')
        return logits.to(device, non_blocking=True)


def check_graph_io(path: str | Path, input_name: str, input_shape: Sequence[object],
                   output_shape: Sequence[object], spec: ModelSpec) -> GraphIO:
    """Check a graph's single image input and its logits output against `spec`.

    Shapes are the runtime's own (ints for static axes, anything else for dynamic ones).
    Raises ModelLoadError naming what does not fit.
    """
    layout = spec.input_layout
    if layout not in LAYOUTS:
        raise ModelLoadError(f'{path}: input_layout {layout!r} is not one of {LAYOUTS}')
    in_shape = list(input_shape)
    if len(in_shape) != 4:
        raise ModelLoadError(f'{path}: input {input_name!r} has shape {in_shape}, '
                             'expected a 4-D image batch')
    h, w = spec.input_size
    expected = [None, 3, h, w] if layout == 'NCHW' else [None, h, w, 3]
    for axis in (1, 2, 3):
        got = _static(in_shape[axis])
        if got is not None and got != expected[axis]:
            raise ModelLoadError(
                f'{path}: input {input_name!r} has shape {in_shape} but the spec asks '
                f'for {layout} with input_size {tuple(spec.input_size)} '
                f'(expected {expected[1:]} after the batch axis)')
    num_outputs = spec.class_set.num_outputs
    return GraphIO(input_layout=layout, output_layout=_output_layout(path, output_shape, spec),
                   fixed_batch=_static(in_shape[0]), num_outputs=num_outputs)


def _output_layout(path: str | Path, shape: Sequence[object], spec: ModelSpec) -> str:
    """Return the output layout: forced by `arch_kwargs['output_layout']`, else from the shape."""
    forced = (spec.arch_kwargs or {}).get('output_layout')
    if forced is not None:
        if forced not in LAYOUTS:
            raise ModelLoadError(f'{path}: output_layout {forced!r} is not one of {LAYOUTS}')
        return forced
    shape = list(shape)
    num_outputs = spec.class_set.num_outputs
    if len(shape) == 4 and _static(shape[3]) == num_outputs and _static(shape[1]) != num_outputs:
        return 'NHWC'
    return 'NCHW'
