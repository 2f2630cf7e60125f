"""Benchmark of the boundary refinement: BF score, mIoU and time per frame, with and without.

    python -m seg_perception.bench.refine_bench --frames 50 --output build/bench/refine.json

Renders held-out synthetic frames (seeds from EVAL_SEED_START, as `seg_perception evaluate`
does), runs the production engine once per `refine` mode on the same frames, and scores the
labels with the project's metrics (mIoU from the confusion matrix, BF score at 2 px).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import platform
import statistics
import sys
import time
from typing import Any

import torch

from seg_perception.evaluation.metrics import BoundaryScores, SegmentationScores
from seg_perception.evaluation.offline import EVAL_SEED_START, SCENE_SPLITS
from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
from seg_perception.segmentation.refine import REFINE_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of the refinement benchmark."""
    parser.add_argument('--model', default='default', help='model source (default: shipped)')
    parser.add_argument('--frames', type=int, default=50, help='held-out frames (default 50)')
    parser.add_argument('--seed-start', type=int, default=EVAL_SEED_START)
    parser.add_argument('--scenes', choices=tuple(SCENE_SPLITS), default='all')
    parser.add_argument('--modes', nargs='+', choices=REFINE_MODES, default=list(REFINE_MODES))
    parser.add_argument('--upsample', choices=('nearest', 'bilinear'), default='nearest',
                        help="label upsampling (default the node's: nearest)")
    parser.add_argument('--tolerance-px', type=float, default=2.0, help='BF tolerance')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--output', type=Path, default=Path('build/bench/refine.json'))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score and time every mode in args.modes on the same rendered frames."""
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    if args.frames < 1:
        raise ValueError(f'--frames must be >= 1, got {args.frames}')
    torch.set_num_threads(args.threads)
    cell = SyntheticCell(SyntheticConfig(width=640, height=480, **SCENE_SPLITS[args.scenes]))
    frames = [cell.render(seed=s) for s in range(args.seed_start, args.seed_start + args.frames)]
    results: dict[str, Any] = {}
    for mode in args.modes:
        engine = SegmentationEngine(EngineConfig(
            model=args.model, device=args.device, upsample=args.upsample, refine=mode,
            warmup_iterations=2))
        names = [c.name for c in sorted(engine.class_set, key=lambda c: c.id)]
        scores = SegmentationScores(num_classes=engine.spec.num_classes, class_names=names)
        boundaries = BoundaryScores(num_classes=engine.spec.num_classes,
                                    tolerance_px=args.tolerance_px, class_names=names)
        total_ms, post_ms = [], []
        for frame in frames:
            t0 = time.perf_counter()
            (result,) = engine.segment([frame.rgb])
            total_ms.append((time.perf_counter() - t0) * 1e3)
            post_ms.append(result.postprocess_ms)
            scores.update(frame.labels, result.labels)
            boundaries.update(frame.labels, result.labels)
        seg, bf = scores.summary(), boundaries.summary()
        results[mode] = {'miou': round(seg['miou'], 4), 'bf_score': round(bf['bf_score'], 4),
                         'per_class_bf': {k: None if v is None else round(v, 4)
                                          for k, v in bf['per_class_bf'].items()},
                         'frame_ms_median': round(statistics.median(total_ms), 1),
                         'postprocess_ms_median': round(statistics.median(post_ms), 1)}
        print(f'{mode:7s} mIoU {seg["miou"]:.4f}  BF@{args.tolerance_px:g}px '
              f'{bf["bf_score"]:.4f}  frame {results[mode]["frame_ms_median"]:.1f} ms '
              f'(postprocess {results[mode]["postprocess_ms_median"]:.1f} ms)', flush=True)
    return {'model': args.model, 'frames': args.frames, 'seeds': [args.seed_start,
            args.seed_start + args.frames - 1], 'scenes': args.scenes,
            'frame_size_hw': [480, 640], 'upsample': args.upsample, 'threads': args.threads,
            'device': args.device, 'machine': platform.processor() or platform.machine(),
            'modes': results}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    report = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2), encoding='utf-8')
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
