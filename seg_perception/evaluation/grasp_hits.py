"""Ground-truth hit rate of grasp candidates on the synthetic cell's box top faces.

A box counts as a target when its top face is nearly fully visible and larger than the suction
cup; it is hit when some candidate lies on that face (within `plane_tol_m` of its plane and
inside its outline) with a normal within `max_angle_deg` of the true face normal.

Run: `python -m seg_perception.evaluation.grasp_hits --frames 100`
(writes build/eval/grasp_hits.json).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
import sys
import time
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from seg_perception.grasp import GraspCandidate, GraspConfig, GraspPipeline, PinholeCamera


@dataclass(frozen=True)
class HitCriteria:
    """When a box is a target and when a candidate hits it."""

    target_class: str = 'box'
    min_visible_fraction: float = 0.9
    plane_tol_m: float = 0.01
    max_angle_deg: float = 10.0


@dataclass(frozen=True)
class HitReport:
    """The figures of one evaluation run."""

    frames: int
    targets: int
    hits: int
    hit_rate: float
    suction_hits: int
    candidates_per_frame: float
    pipeline_ms_median: float
    labels_source: str
    criteria: dict
    grasp_config: dict


def candidate_on_face(candidate: GraspCandidate, center: np.ndarray, normal: np.ndarray,
                      polygon: np.ndarray, criteria: HitCriteria) -> bool:
    """Return True when the candidate lies on the face and its normal agrees with the face's."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    offset = candidate.position - center
    if abs(float(offset @ n)) > criteria.plane_tol_m:
        return False
    cos = float(np.clip(candidate.normal @ n, -1.0, 1.0))
    if math.degrees(math.acos(cos)) > criteria.max_angle_deg:
        return False
    # Point in polygon, in a 2D basis of the face plane (millimetres keep cv2 precise).
    axis_u = polygon[1] - polygon[0]
    axis_u = axis_u - (axis_u @ n) * n
    axis_u /= np.linalg.norm(axis_u)
    axis_v = np.cross(n, axis_u)
    rel = polygon - center
    outline = (np.stack([rel @ axis_u, rel @ axis_v], axis=1) * 1000.0).astype(np.float32)
    point = (float(offset @ axis_u) * 1000.0, float(offset @ axis_v) * 1000.0)
    return cv2.pointPolygonTest(outline.reshape(-1, 1, 2), point, False) >= 0


def face_targets(items: Iterable, cup_radius_m: float, criteria: HitCriteria) -> list:
    """Return the items whose top face is a fair suction target (visible, larger than the cup)."""
    return [it for it in items
            if it.class_name == criteria.target_class
            and it.visible_fraction >= criteria.min_visible_fraction
            and float(np.min(it.top_face_size_m)) > 2.0 * cup_radius_m
            and len(it.top_face_polygon_cam) >= 3]


def evaluate_hits(frames: Iterable, *, config: GraspConfig | None = None,
                  criteria: HitCriteria = HitCriteria(),
                  labels_fn: Callable | None = None, labels_source: str = 'ground_truth'
                  ) -> HitReport:
    """Run the grasp pipeline on synthetic frames and count box top faces hit by candidates.

    `labels_fn(frame) -> (H, W) uint8` supplies labels (e.g. a model's); default: ground truth.
    """
    config = config if config is not None else GraspConfig()
    pipeline = GraspPipeline(config)
    n_frames = targets = hits = suction_hits = n_candidates = 0
    times: list[float] = []
    for frame in frames:
        camera = PinholeCamera.from_matrix(frame.K, frame.width, frame.height)
        labels = frame.labels if labels_fn is None else labels_fn(frame)
        result = pipeline.process(labels, frame.depth_m, camera)
        times.append(result.timings_ms['total'])
        n_frames += 1
        n_candidates += len(result.candidates)
        for item in face_targets(frame.items, config.cup_radius_m, criteria):
            targets += 1
            on_face = [c for c in result.candidates
                       if candidate_on_face(c, item.top_face_center_cam,
                                            item.top_face_normal_cam,
                                            item.top_face_polygon_cam, criteria)]
            hits += bool(on_face)
            suction_hits += any(c.kind == 'suction' for c in on_face)
    return HitReport(
        frames=n_frames, targets=targets, hits=hits,
        hit_rate=hits / targets if targets else float('nan'), suction_hits=suction_hits,
        candidates_per_frame=n_candidates / max(n_frames, 1),
        pipeline_ms_median=float(np.median(times)) if times else float('nan'),
        labels_source=labels_source, criteria=asdict(criteria),
        grasp_config=asdict(config))


def synthetic_frames(count: int, *, first_seed: int = 0, width: int = 640,
                     height: int = 480) -> Iterable:
    """Yield `count` synthetic cell frames with seeds first_seed, first_seed + 1, ..."""
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig

    cell = SyntheticCell(SyntheticConfig(width=width, height=height))
    for seed in range(first_seed, first_seed + count):
        yield cell.render(seed=seed)


def _model_labels(model: str) -> Callable:
    """Return frame -> labels using the segmentation engine with `model`."""
    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine

    engine = SegmentationEngine(EngineConfig(model=model, device='auto'))
    return lambda frame: engine.segment([frame.rgb])[0].labels


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate the hit rate and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=100, help='synthetic frames (seeds 0..)')
    parser.add_argument('--first-seed', type=int, default=100000,
                        help='first seed (default away from training seeds)')
    parser.add_argument('--model', default=None,
                        help="use this segmentation model's labels ('default', a .pt/.onnx) "
                             'instead of ground truth')
    parser.add_argument('--output', type=Path, default=Path('build/eval/grasp_hits.json'))
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error('--frames must be >= 1')
    labels_fn = _model_labels(args.model) if args.model else None
    start = time.perf_counter()
    report = evaluate_hits(synthetic_frames(args.frames, first_seed=args.first_seed),
                           labels_fn=labels_fn,
                           labels_source=f'model:{args.model}' if args.model else 'ground_truth')
    elapsed = time.perf_counter() - start
    print(f'grasp hit rate ({report.labels_source}): {report.hit_rate:.3f} '
          f'({report.hits}/{report.targets} visible box top faces, {report.frames} frames; '
          f'suction hits {report.suction_hits}; '
          f'{report.candidates_per_frame:.1f} candidates/frame; '
          f'pipeline median {report.pipeline_ms_median:.1f} ms; {elapsed:.0f} s)')
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(asdict(report), indent=2) + '\n', encoding='utf-8')
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
