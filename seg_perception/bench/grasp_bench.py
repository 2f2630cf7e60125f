"""`seg_perception bench grasp`: per-stage timing of the grasp pipeline and Open3D comparison.

Times back-projection, the container step, fusion, regions and candidates separately on one
thread at 640x480 and 1280x720 (synthetic cell frames when the synthetic package is present,
else procedural analytic scenes), and back-projects the same depth with Open3D's
PointCloud.create_from_depth_image. The container step is timed searched afresh in every
frame (a new scene each frame, the worst case) and tracked (the same camera's frames after
that, the common case of a fixed camera over a bin: the first tracked frame, and the steady
state from the next one on).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import sys
import time
from typing import Callable

# One thread everywhere: BLAS reads these when numpy is first imported, so set them first.
_BLAS_PINNED = 'numpy' not in sys.modules
for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_var] = '1'

import numpy as np  # noqa: E402

RESOLUTIONS = ((640, 480), (1280, 720))
STAGES = ('backprojection', 'container', 'fusion', 'regions', 'candidates', 'cloud', 'total')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.add_argument('--frames', type=int, default=50, help='frames per resolution (>= 1)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed passes over the frames (median and p95 over all)')
    parser.add_argument('--source', choices=('auto', 'synthetic', 'procedural'), default='auto',
                        help='frame source (auto: synthetic cell when available)')
    parser.add_argument('--resolutions', nargs='+', default=[f'{w}x{h}' for w, h in RESOLUTIONS],
                        help='WIDTHxHEIGHT list')
    parser.add_argument('--container', choices=('auto', 'none'), default='auto',
                        help="container step of the pipeline ('auto': detected in each frame)")
    parser.add_argument('--output', type=Path, default=Path('build/bench/grasp.json'))


def _single_thread() -> None:
    """Pin OpenMP, OpenCV and torch (if loaded) to one thread before timing."""
    import cv2
    cv2.setNumThreads(1)
    if 'torch' in sys.modules:
        sys.modules['torch'].set_num_threads(1)


def _frames(source: str, width: int, height: int, count: int):
    """Return (kind, [(labels, depth_m, camera)]) for the benchmark."""
    from seg_perception.grasp import PinholeCamera
    from seg_perception.grasp.scenes import procedural_frame

    if source in ('auto', 'synthetic'):
        try:
            from seg_perception.synthetic import SyntheticCell, SyntheticConfig
        except ImportError:
            if source == 'synthetic':
                raise
        else:
            cell = SyntheticCell(SyntheticConfig(width=width, height=height))
            frames = []
            for seed in range(count):
                f = cell.render(seed=seed)
                frames.append((f.labels, f.depth_m,
                               PinholeCamera.from_matrix(f.K, f.width, f.height)))
            return 'synthetic', frames
    fx = 600.0 * width / 640.0
    camera = PinholeCamera(fx=fx, fy=fx, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width,
                           height=height)
    return 'procedural', [procedural_frame(camera, seed) + (camera,) for seed in range(count)]


def _stats(values_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=np.float64)
    return {'median_ms': float(np.median(arr)), 'p95_ms': float(np.percentile(arr, 95)),
            'mean_ms': float(arr.mean())}


def _time(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Return wall and CPU milliseconds of `repeats` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return wall, cpu


def bench_resolution(width: int, height: int, *, frames: int, repeats: int,
                     source: str, container: str = 'auto') -> dict:
    """Return the timing figures of one resolution."""
    import open3d as o3d

    from seg_perception.grasp import BackProjector, GraspConfig, GraspPipeline
    from seg_perception.grasp.container import ContainerConfig

    kind, data = _frames(source, width, height, frames)
    pipeline = GraspPipeline(GraspConfig(), container=ContainerConfig(mode=container))
    for labels, depth, camera in data[:3]:            # warm caches and buffers
        pipeline.process(labels, depth, camera)
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
    tracked_ms: dict[str, list[float]] = {'container': [], 'total': []}
    first_tracked_ms: dict[str, list[float]] = {'container': [], 'total': []}
    cpu_total: list[float] = []
    candidates = regions = found = 0
    for _ in range(repeats):
        for labels, depth, camera in data:
            pipeline.container.reset()                # a new scene: search afresh
            c0 = time.process_time()
            result = pipeline.process(labels, depth, camera)
            cpu_total.append((time.process_time() - c0) * 1e3)
            for s in STAGES:
                stage_ms[s].append(result.timings_ms[s])
            candidates += len(result.candidates)
            regions += len(result.regions)
            found += bool(result.container_status and result.container_status.found)
            if container != 'none':                   # the same camera's next frames
                first = pipeline.process(labels, depth, camera)
                steady = pipeline.process(labels, depth, camera)
                # Only frames whose container was tracked: without one, every frame searches.
                # The first tracked frame may refit planes whose detected patch lost points
                # to earlier planes; from the next on a bin that has not moved keeps them.
                if steady.container is not None and steady.container.source == 'tracked':
                    for s in tracked_ms:
                        tracked_ms[s].append(steady.timings_ms[s])
                        first_tracked_ms[s].append(first.timings_ms[s])
    # Back-projection alone, ours vs. Open3D, same depth and intrinsics, valid points only.
    ours_wall, ours_cpu, o3d_wall, o3d_cpu, org_wall = [], [], [], [], []
    max_diff = 0.0
    for labels, depth, camera in data:
        projector = BackProjector(camera)
        projector.points(depth)
        intrinsic = o3d.camera.PinholeCameraIntrinsic(width, height, camera.fx, camera.fy,
                                                      camera.cx, camera.cy)
        depth_o3d = np.nan_to_num(depth, nan=0.0)     # Open3D's invalid value is 0

        def run_o3d():
            return o3d.geometry.PointCloud.create_from_depth_image(
                o3d.geometry.Image(depth_o3d), intrinsic, depth_scale=1.0, depth_trunc=1e6)

        w, c = _time(lambda: projector.points(depth), repeats)
        ours_wall += w
        ours_cpu += c
        w, c = _time(run_o3d, repeats)
        o3d_wall += w
        o3d_cpu += c
        w, _ = _time(lambda: projector.organized(depth), repeats)
        org_wall += w
        ours = projector.points(depth)[0]
        theirs = np.asarray(run_o3d().points)
        if ours.shape == theirs.shape and ours.size:
            max_diff = max(max_diff, float(np.max(np.abs(ours - theirs))))
    n = len(data) * repeats
    ratio = float(np.median(o3d_wall) / np.median(ours_wall))
    return {
        'resolution': f'{width}x{height}', 'source': kind, 'frames': len(data),
        'samples': n, 'container_mode': container, 'container_found_share': found / n,
        'stages': {s: _stats(v) for s, v in stage_ms.items()},
        'tracked': {s: _stats(v) for s, v in tracked_ms.items() if v},
        'tracked_samples': len(tracked_ms['container']),
        'first_tracked': {s: _stats(v) for s, v in first_tracked_ms.items() if v},
        'fusion_regions_candidates': _stats([a + b + c for a, b, c in zip(
            stage_ms['fusion'], stage_ms['regions'], stage_ms['candidates'])]),
        'total_cpu': _stats(cpu_total),
        'backprojection_points': {'ours': _stats(ours_wall), 'ours_cpu': _stats(ours_cpu),
                                  'open3d': _stats(o3d_wall), 'open3d_cpu': _stats(o3d_cpu),
                                  'open3d_over_ours': ratio, 'max_abs_diff_m': max_diff},
        'backprojection_organized': _stats(org_wall),
        'regions_per_frame': regions / n, 'candidates_per_frame': candidates / n,
    }


def main(args: argparse.Namespace) -> int:
    """Run the benchmark, print a table and write the JSON report."""
    if args.frames < 1 or args.repeats < 1:
        raise ValueError('--frames and --repeats must be >= 1')
    _single_thread()
    import open3d as o3d

    results = []
    for text in args.resolutions:
        try:
            width, height = (int(v) for v in text.lower().split('x'))
        except ValueError as exc:
            raise ValueError(f'resolution {text!r} is not WIDTHxHEIGHT') from exc
        res = bench_resolution(width, height, frames=args.frames, repeats=args.repeats,
                               source=args.source, container=args.container)
        results.append(res)
        print(f"{res['resolution']} ({res['source']}, {res['frames']} frames x {args.repeats}, "
              f"{res['regions_per_frame']:.1f} regions, {res['candidates_per_frame']:.1f} "
              'candidates per frame), 1 thread:')
        for s in STAGES:
            st = res['stages'][s]
            print(f'  {s:15s} median {st["median_ms"]:7.2f} ms   p95 {st["p95_ms"]:7.2f} ms')
        if res['tracked']:
            tr = res['tracked']
            print(f'  container found in {res["container_found_share"]:.0%} of the frames; '
                  f'tracked (next frame of the same camera, {res["tracked_samples"]} frames '
                  'with a container to track): container '
                  f'{tr["container"]["median_ms"]:.2f} ms median, total '
                  f'{tr["total"]["median_ms"]:.2f} ms (the first tracked frame: container '
                  f'{res["first_tracked"]["container"]["median_ms"]:.2f} ms)')
        frc = res['fusion_regions_candidates']
        print(f'  {"fusion+regions+candidates":26s} median {frc["median_ms"]:.2f} ms  '
              f'p95 {frc["p95_ms"]:.2f} ms;  total CPU time median '
              f'{res["total_cpu"]["median_ms"]:.2f} ms')
        bp = res['backprojection_points']
        print(f'  back-projection (valid points): ours {bp["ours"]["median_ms"]:.2f} ms, '
              f'Open3D create_from_depth_image {bp["open3d"]["median_ms"]:.2f} ms '
              f'-> Open3D/ours = {bp["open3d_over_ours"]:.2f}x '
              f'(max |diff| {bp["max_abs_diff_m"]:.1e} m); organized '
              f'{res["backprojection_organized"]["median_ms"]:.2f} ms')
    report = {'benchmark': 'grasp', 'threads': 1, 'blas_threads_pinned': _BLAS_PINNED,
              'open3d': o3d.__version__,
              'numpy': np.__version__, 'machine': platform.machine(),
              'processor': platform.processor(), 'cpu_count': os.cpu_count(),
              'load_average': list(os.getloadavg()), 'results': results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + '\n', encoding='utf-8')
    print(f'wrote {args.output}')
    return 0
