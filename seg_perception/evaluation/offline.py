"""Offline evaluation of a model on a seeded, held-out synthetic set (and CPU latency).

Frames go through the production `SegmentationEngine` (its preprocessing, runtime backend and
postprocessing), so the numbers describe what a node sees, for any model and backend the node
runs. Evaluation uses bilinear upsampling of the logits (`evaluation_engine`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from seg_perception.evaluation.metrics import SegmentationScores
from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
from seg_perception.segmentation.model_spec import ModelSpec

#: first seed of the held-out synthetic evaluation set (training never uses seeds from here up)
EVAL_SEED_START = 100_000


class EvaluationError(ValueError):
    """Raised when an evaluation is asked for with inconsistent arguments."""


def evaluation_engine(model: str | torch.nn.Module, spec: ModelSpec | None = None, *,
                      device: str = 'cpu', backend: str | None = None) -> SegmentationEngine:
    """Return an engine for evaluation: a model source (any backend) or an in-memory module.

    An nn.Module (e.g. a model being trained) needs its `spec`; it runs with backend torch.
    """
    config = EngineConfig(model=model if isinstance(model, str) else 'module', device=device,
                          backend=backend, upsample='bilinear', warmup_iterations=0)
    if isinstance(model, str):
        return SegmentationEngine(config)
    if spec is None:
        raise EvaluationError('an in-memory model needs its ModelSpec')
    from seg_perception.segmentation.torchscript_backend import TorchSegmenter
    return SegmentationEngine(config, loaded=(TorchSegmenter(model, device=torch.device(device)),
                                              spec))


def predict_labels(engine: SegmentationEngine, images: np.ndarray) -> np.ndarray:
    """Return uint8 labels (N, H, W) at the images' own size for uint8 RGB (N, H, W, 3)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    return np.stack([r.labels for r in engine.segment(list(images))])


#: Synthetic held-out splits: SyntheticConfig overrides of each. 'classic' is the cell before
#: the real-camera randomisation (at most 15 items, no neighbouring tote or empty scene, no
#: camera effects): the world earlier default models were trained and scored on.
SCENE_SPLITS: dict[str, dict[str, Any]] = {
    'all': {}, 'tote': {'tote_probability': 1.0}, 'non-tote': {'tote_probability': 0.0},
    'classic': {'max_items': 15, 'tote_probability': 0.75, 'empty_probability': 0.0,
                'neighbour_tote_probability': 0.0, 'camera_effects': False,
                'camouflage_probability': 0.0, 'thin_item_probability': 0.0}}


def evaluate_synthetic(engine: SegmentationEngine, *, frames: int = 200,
                       seed_start: int = EVAL_SEED_START, size_hw: tuple[int, int] = (480, 640),
                       batch_size: int = 4, scenes: str = 'all',
                       progress: Callable[[int, int], None] | None = None,
                       cell: Any = None) -> dict[str, Any]:
    """Render `frames` synthetic frames from `seed_start` on and score the engine's model.

    `scenes`: 'all' (the cell's mix), 'tote' (every frame a tote), 'non-tote' (tables,
    shelves and conveyors, some with nothing on them: does the model call a surface an item?)
    or 'classic' (see SCENE_SPLITS). `cell`: any object with `render(seed) -> SyntheticFrame`
    to score instead (e.g. a styled cell of seg_perception.adaptation.styles; `scenes` unused).
    Besides per-class IoU the summary holds item-vs-rest IoU (item = any class with grasp modes).
    """
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    if frames < 1:
        raise EvaluationError(f'frames must be >= 1, got {frames}')
    if batch_size < 1:
        raise EvaluationError(f'batch_size must be >= 1, got {batch_size}')
    if scenes not in SCENE_SPLITS:
        raise EvaluationError(f'scenes must be one of {", ".join(SCENE_SPLITS)}, got {scenes!r}')
    if cell is None:
        cell = SyntheticCell(SyntheticConfig(width=size_hw[1], height=size_hw[0],
                                             **SCENE_SPLITS[scenes]))
    spec = engine.spec
    item_ids = [c.id for c in spec.class_set.graspable()]
    item_counts = np.zeros(3, dtype=np.int64)      # true positive, false positive, false negative
    scores = SegmentationScores(num_classes=spec.num_classes,
                                class_names=_output_names(spec))
    seeds = list(range(seed_start, seed_start + frames))
    render_s = infer_s = 0.0
    for start in range(0, frames, batch_size):
        t0 = time.perf_counter()
        rendered = [cell.render(seed=s) for s in seeds[start:start + batch_size]]
        t1 = time.perf_counter()
        rgb = np.stack([f.rgb for f in rendered])
        pred = predict_labels(engine, rgb)
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


def measure_latency(engine: SegmentationEngine, *, frame_size_hw: tuple[int, int] = (480, 640),
                    runs: int = 50, warmup: int = 5, threads: int | None = 2,
                    frames: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """Time batch-1 inference: full frame -> labels (engine.segment), and the network alone.

    Returns median and p90 in ms. `threads` sets torch.set_num_threads for the measurement and
    restores the previous value afterwards.
    """
    if runs < 1:
        raise EvaluationError(f'runs must be >= 1, got {runs}')
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if frames is None:
            rng = np.random.default_rng(0)
            frames = [rng.integers(0, 256, (*frame_size_hw, 3), dtype=np.uint8)]
        _, x_net = engine.preprocess([frames[0]])
        full: list[float] = []
        net: list[float] = []
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            engine.segment([frames[i % len(frames)]])
            t1 = time.perf_counter()
            engine.forward(x_net)
            engine.synchronize()
            t2 = time.perf_counter()
            if i >= warmup:
                full.append((t1 - t0) * 1000.0)
                net.append((t2 - t1) * 1000.0)
    finally:
        torch.set_num_threads(previous)
    return {
        'threads': threads or previous,
        'runs': runs,
        'backend': engine.backend,
        'frame_size_hw': list(frame_size_hw),
        'input_size_hw': list(engine.input_size),
        'full_frame_ms_median': round(statistics.median(full), 2),
        'full_frame_ms_p90': round(float(np.percentile(full, 90)), 2),
        'network_ms_median': round(statistics.median(net), 2),
        'network_ms_p90': round(float(np.percentile(net, 90)), 2),
    }
