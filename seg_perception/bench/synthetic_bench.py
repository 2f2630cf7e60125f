"""Benchmark of the synthetic cell generator: frames/s on one thread, determinism check."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import time

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `seg_perception bench synthetic`."""
    parser.add_argument('--frames', type=int, default=200, help='frames to render (default 200)')
    parser.add_argument('--width', type=int, default=640, help='image width in pixels')
    parser.add_argument('--height', type=int, default=480, help='image height in pixels')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first frame')
    parser.add_argument('--output', type=Path, default=Path('build/bench/synthetic.json'),
                        help='JSON result file (default build/bench/synthetic.json)')


def _frames_equal(a, b) -> bool:
    arrays = ('rgb', 'depth_m', 'labels', 'instances', 'K')
    return all(np.array_equal(getattr(a, n), getattr(b, n), equal_nan=n == 'depth_m')
               for n in arrays) and len(a.items) == len(b.items)


def main(args: argparse.Namespace) -> int:
    """Render `--frames` frames on one thread, print and write the timing figures."""
    if args.frames < 1:
        raise ValueError(f'--frames must be >= 1, got {args.frames}')
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import cv2

    from seg_perception.synthetic import SyntheticCell, SyntheticConfig

    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    cell = SyntheticCell(SyntheticConfig(width=args.width, height=args.height))
    init_s = time.perf_counter() - t0
    cell.render(args.seed)   # warm-up
    times_ms, cpu_ms, items = [], [], []
    for k in range(args.frames):
        t, c = time.perf_counter(), time.process_time()
        frame = cell.render(args.seed + k)
        times_ms.append((time.perf_counter() - t) * 1e3)
        cpu_ms.append((time.process_time() - c) * 1e3)
        items.append(len(frame.items))
    times = np.asarray(times_ms)
    cpu = np.asarray(cpu_ms)
    deterministic = _frames_equal(cell.render(args.seed + 7), cell.render(args.seed + 7))
    result = {
        'benchmark': 'synthetic_cell', 'width': args.width, 'height': args.height,
        'frames': args.frames, 'threads': 1, 'init_s': round(init_s, 3),
        'frames_per_s': round(1e3 / float(times.mean()), 2),
        'mean_ms': round(float(times.mean()), 3),
        'p50_ms': round(float(np.percentile(times, 50)), 3),
        'p95_ms': round(float(np.percentile(times, 95)), 3),
        # CPU time of this process per frame: the single-core cost even on a busy machine
        'cpu_mean_ms': round(float(cpu.mean()), 3),
        'cpu_frames_per_s': round(1e3 / float(cpu.mean()), 2),
        'load_average_1min': round(os.getloadavg()[0], 2),
        'mean_items': round(float(np.mean(items)), 2), 'deterministic': deterministic,
        'cpu': platform.processor() or platform.machine(), 'python': platform.python_version(),
        'opencv': cv2.__version__, 'numpy': np.__version__,
    }
    r = result
    print(f'synthetic cell {args.width}x{args.height}, {args.frames} frames, 1 thread: '
          f'{r["frames_per_s"]:.1f} frames/s (mean {r["mean_ms"]:.2f} ms, '
          f'p50 {r["p50_ms"]:.2f} ms, p95 {r["p95_ms"]:.2f} ms); CPU time '
          f'{r["cpu_mean_ms"]:.2f} ms/frame = {r["cpu_frames_per_s"]:.1f} frames/s; '
          f'load average {r["load_average_1min"]}; deterministic: {deterministic}')
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + '\n', encoding='utf-8')
    print(f'wrote {args.output}')
    return 0 if deterministic else 1
