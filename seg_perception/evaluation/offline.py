"""Offline evaluation of a checkpoint on a seeded, held-out synthetic set (and CPU latency).

Preprocessing here is deliberately simple and local (resize to spec.input_size bilinearly,
normalise, network, bilinear upsampling of the logits to the frame size, argmax) and matches the
production engine's arithmetic, so the numbers describe what a node sees.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from seg_perception.evaluation.metrics import SegmentationScores
from seg_perception.segmentation.model_spec import ModelSpec

#: first seed of the held-out synthetic evaluation set (training never uses seeds from here up)
EVAL_SEED_START = 100_000


class EvaluationError(ValueError):
    """Raised when an evaluation is asked for with inconsistent arguments."""


def preprocess(images: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """Return uint8 (N, H, W, 3) RGB as the normalised float batch (N, 3, h, w) at the net size."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise EvaluationError(f'expected uint8 (N, H, W, 3) RGB, got {images.dtype} '
                              f'{tuple(images.shape)}')
    x = images.permute(0, 3, 1, 2).float()
    if tuple(x.shape[-2:]) != spec.input_size:
        x = F.interpolate(x, size=spec.input_size, mode='bilinear', align_corners=False)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    scale = 1.0 / (255.0 * std)
    # channels-last: oneDNN's fastest CPU convolution layout (see prepare_model)
    return (x * scale - mean / std).contiguous(memory_format=torch.channels_last)


def prepare_model(model: torch.nn.Module, device: torch.device | str = 'cpu') -> torch.nn.Module:
    """Return the model on `device`, in eval mode and in channels-last memory format."""
    return model.to(device).eval().to(memory_format=torch.channels_last)


def logits_to_labels(logits: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Upsample logits (N, C, h, w) bilinearly to `size_hw` and return uint8 argmax (N, H, W).

    The logits go channels-last first: argmax over a contiguous channel axis is ~15x faster on
    CPU than over dim 1 of an NCHW tensor.
    """
    logits = logits.contiguous(memory_format=torch.channels_last)
    if tuple(logits.shape[-2:]) != tuple(size_hw):
        logits = F.interpolate(logits, size=size_hw, mode='bilinear', align_corners=False)
    return logits.argmax(dim=1).to(torch.uint8)


@torch.inference_mode()
def predict_labels(model: torch.nn.Module, spec: ModelSpec, images: np.ndarray | torch.Tensor,
                   *, device: torch.device | str = 'cpu') -> np.ndarray:
    """Return uint8 labels (N, H, W) at the images' own size for uint8 RGB (N, H, W, 3)."""
    batch = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor)
                            else images)
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    batch = batch.to(device)
    logits = model(preprocess(batch, spec))['out']
    return logits_to_labels(logits, tuple(batch.shape[1:3])).cpu().numpy()


#: Synthetic held-out splits: SyntheticConfig overrides of each. 'classic' is the cell before
#: the real-camera randomisation (at most 15 items, no neighbouring tote or empty scene, no
#: camera effects): the world earlier default models were trained and scored on.
SCENE_SPLITS: dict[str, dict[str, Any]] = {
    'all': {}, 'tote': {'tote_probability': 1.0}, 'non-tote': {'tote_probability': 0.0},
    'classic': {'max_items': 15, 'tote_probability': 0.75, 'empty_probability': 0.0,
                'neighbour_tote_probability': 0.0, 'camera_effects': False}}


def evaluate_synthetic(model: torch.nn.Module, spec: ModelSpec, *, frames: int = 200,
                       seed_start: int = EVAL_SEED_START, size_hw: tuple[int, int] = (480, 640),
                       batch_size: int = 4, device: torch.device | str = 'cpu',
                       scenes: str = 'all',
                       progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Render `frames` synthetic frames from `seed_start` on and score the model on them.

    `scenes`: 'all' (the cell's mix), 'tote' (every frame a tote), 'non-tote' (tables,
    shelves and conveyors, some with nothing on them: does the model call a surface an item?)
    or 'classic' (see SCENE_SPLITS).
    Besides per-class IoU the summary holds item-vs-rest IoU (item = any class with grasp modes).
    """
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    if frames < 1:
        raise EvaluationError(f'frames must be >= 1, got {frames}')
    if batch_size < 1:
        raise EvaluationError(f'batch_size must be >= 1, got {batch_size}')
    if scenes not in SCENE_SPLITS:
        raise EvaluationError(f'scenes must be one of {", ".join(SCENE_SPLITS)}, got {scenes!r}')
    cell = SyntheticCell(SyntheticConfig(width=size_hw[1], height=size_hw[0],
                                         **SCENE_SPLITS[scenes]))
    item_ids = [c.id for c in spec.class_set.graspable()]
    item_counts = np.zeros(3, dtype=np.int64)      # true positive, false positive, false negative
    scores = SegmentationScores(num_classes=spec.num_classes,
                                class_names=_output_names(spec))
    model = prepare_model(model, device)
    seeds = list(range(seed_start, seed_start + frames))
    render_s = infer_s = 0.0
    for start in range(0, frames, batch_size):
        t0 = time.perf_counter()
        rendered = [cell.render(seed=s) for s in seeds[start:start + batch_size]]
        t1 = time.perf_counter()
        rgb = np.stack([f.rgb for f in rendered])
        pred = predict_labels(model, spec, rgb, device=device)
        t2 = time.perf_counter()
        truth = np.stack([f.labels for f in rendered])
        scores.update(truth, pred)
        pred_item = np.isin(np.asarray(pred), item_ids)
        true_item = np.isin(truth, item_ids)
        item_counts += [np.count_nonzero(pred_item & true_item),
                        np.count_nonzero(pred_item & ~true_item),
                        np.count_nonzero(~pred_item & true_item)]
        render_s += t1 - t0
        infer_s += t2 - t1
        if progress is not None:
            progress(min(start + batch_size, frames), frames)
    summary = scores.summary()
    summary.update({
        'dataset': 'synthetic',
        'scenes': scenes,
        'item_iou': float(item_counts[0] / max(1, item_counts.sum())),
        'seed_start': seed_start,
        'seed_end': seed_start + frames - 1,
        'held_out': seed_start >= EVAL_SEED_START,
        'frame_size_hw': list(size_hw),
        'render_s': round(render_s, 3),
        'inference_s': round(infer_s, 3),
    })
    return summary


def _output_names(spec: ModelSpec) -> list[str]:
    """Return one name per output channel (ids missing from the class set get 'id<k>')."""
    names = {c.id: c.name for c in spec.class_set}
    return [names.get(i, f'id{i}') for i in range(spec.num_classes)]


@torch.inference_mode()
def measure_latency(model: torch.nn.Module, spec: ModelSpec, *,
                    frame_size_hw: tuple[int, int] = (480, 640), runs: int = 50,
                    warmup: int = 5, threads: int | None = 2,
                    frames: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """Time batch-1 CPU inference: full frame -> labels, and the network alone at its input size.

    Returns median and p90 in ms. `threads` sets torch.set_num_threads for the measurement and
    restores the previous value afterwards.
    """
    if runs < 1:
        raise EvaluationError(f'runs must be >= 1, got {runs}')
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        model = prepare_model(model, 'cpu')
        if frames is None:
            rng = np.random.default_rng(0)
            frames = [rng.integers(0, 256, (*frame_size_hw, 3), dtype=np.uint8)]
        tensors = [torch.from_numpy(np.ascontiguousarray(f))[None] for f in frames]
        x_net = preprocess(tensors[0], spec)
        full: list[float] = []
        net: list[float] = []
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            logits = model(preprocess(tensors[i % len(tensors)], spec))['out']
            logits_to_labels(logits, tuple(tensors[i % len(tensors)].shape[1:3]))
            t1 = time.perf_counter()
            model(x_net)
            t2 = time.perf_counter()
            if i >= warmup:
                full.append((t1 - t0) * 1000.0)
                net.append((t2 - t1) * 1000.0)
    finally:
        torch.set_num_threads(previous)
    return {
        'threads': threads or previous,
        'runs': runs,
        'frame_size_hw': list(frame_size_hw),
        'input_size_hw': list(spec.input_size),
        'full_frame_ms_median': round(statistics.median(full), 2),
        'full_frame_ms_p90': round(float(np.percentile(full, 90)), 2),
        'network_ms_median': round(statistics.median(net), 2),
        'network_ms_p90': round(float(np.percentile(net, 90)), 2),
    }
