"""Model-only and engine benchmarks: how much the engine adds on top of the network.

`measure_model_only` times the network alone on a batch that is already normalised and on the
device (the floor any node can reach); `measure_engine` times the full `engine.segment()` on uint8
numpy frames (device transfers, preprocessing, postprocessing included). Both return plain dicts
of figures so the CLI can print them and write JSON under build/bench/.
"""

from __future__ import annotations

import platform
import time
from typing import Any, Callable

import numpy as np
import torch

from seg_perception.segmentation.engine import SegmentationEngine


def latency_stats(samples_ms: list[float], *, frames_per_call: int) -> dict[str, float]:
    """Return p50/p95/p99/mean latency (ms per call) and frames/s from per-call samples."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    if arr.size == 0:
        raise ValueError('no latency samples to summarise')
    mean_ms = float(arr.mean())
    return {
        'p50_ms': float(np.percentile(arr, 50)),
        'p95_ms': float(np.percentile(arr, 95)),
        'p99_ms': float(np.percentile(arr, 99)),
        'mean_ms': mean_ms,
        'min_ms': float(arr.min()),
        'frames_per_s': frames_per_call * 1e3 / mean_ms if mean_ms > 0 else float('inf'),
    }


def _check(width: int, height: int, cameras: int, iterations: int, warmup: int) -> None:
    if width < 8 or height < 8:
        raise ValueError(f'frame size {width}x{height} is too small (at least 8x8)')
    if cameras < 1 or iterations < 1 or warmup < 0:
        raise ValueError(f'need cameras >= 1, iterations >= 1, warmup >= 0; got {cameras}, '
                         f'{iterations}, {warmup}')


def _time_calls(call: Callable[[], Any], sync: Callable[[], None], *, iterations: int,
                warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    sync()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def _frames(width: int, height: int, cameras: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # Smooth-ish content rather than white noise so the postprocessing sees realistic regions.
    base = rng.integers(0, 256, size=(cameras, height // 16 + 1, width // 16 + 1, 3),
                        dtype=np.uint8)
    return [np.ascontiguousarray(np.kron(b, np.ones((16, 16, 1), np.uint8))[:height, :width])
            for b in base]


def _describe(engine: SegmentationEngine, width: int, height: int, cameras: int) -> dict:
    return {
        'model': engine.model_name,
        'device': str(engine.device),
        'precision': engine.config.precision,
        'network_input_hw': list(engine.input_size),
        'frame_hw': [height, width],
        'cameras': cameras,
        'torch_threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'machine': platform.machine(),
        'gpu': torch.cuda.get_device_name(engine.device) if engine.device.type == 'cuda'
        else None,
    }


def measure_model_only(engine: SegmentationEngine, *, width: int, height: int, cameras: int = 1,
                       iterations: int = 50, warmup: int = 5) -> dict[str, Any]:
    """Time the network alone on a normalised device batch of `cameras` frames."""
    _check(width, height, cameras, iterations, warmup)
    _, batch = engine.preprocess(_frames(width, height, cameras))
    samples = _time_calls(lambda: engine.forward(batch), engine.synchronize,
                          iterations=iterations, warmup=warmup)
    return {'kind': 'model_only', **_describe(engine, width, height, cameras),
            'iterations': iterations, **latency_stats(samples, frames_per_call=cameras)}


def measure_engine(engine: SegmentationEngine, *, width: int, height: int, cameras: int = 1,
                   iterations: int = 50, warmup: int = 5, masks_for: tuple[int, ...] = (),
                   confidence: bool = False, overlay: bool = False) -> dict[str, Any]:
    """Time the full engine.segment() on uint8 numpy frames; include stage means."""
    _check(width, height, cameras, iterations, warmup)
    frames = _frames(width, height, cameras)
    stages: list[tuple[float, float, float]] = []

    def call() -> None:
        r = engine.segment(frames, masks_for=masks_for, confidence=confidence, overlay=overlay)
        stages.append((r[0].preprocess_ms, r[0].inference_ms, r[0].postprocess_ms))

    samples = _time_calls(call, lambda: None, iterations=iterations, warmup=warmup)
    measured = np.asarray(stages[warmup:], dtype=np.float64)
    return {'kind': 'engine', **_describe(engine, width, height, cameras),
            'iterations': iterations, 'masks_for': list(masks_for), 'confidence': confidence,
            'overlay': overlay, **latency_stats(samples, frames_per_call=cameras),
            'preprocess_mean_ms': float(measured[:, 0].mean()),
            'inference_mean_ms': float(measured[:, 1].mean()),
            'postprocess_mean_ms': float(measured[:, 2].mean())}


def overhead(model_only: dict[str, Any], engine: dict[str, Any]) -> dict[str, float]:
    """Return how much the engine adds to the model alone (p50 ms and ratio)."""
    added = engine['p50_ms'] - model_only['p50_ms']
    return {'overhead_p50_ms': added,
            'overhead_ratio': added / model_only['p50_ms'] if model_only['p50_ms'] else 0.0}
