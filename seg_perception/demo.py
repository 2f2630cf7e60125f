"""`seg_perception demo`: synthetic camera -> segmentation -> grasp assist, recorded and evaluated.

Starts synthetic_camera_node, segmentation_node and grasp_assist_node as separate ROS 2
processes (private ROS_DOMAIN_ID, localhost discovery, logs in <out>/logs), records inputs,
outputs and ground truth with bag_recorder into an MCAP bag, stops everything cleanly, then
writes <out>/report.{md,json} with plots (online: recorded labels vs. recorded ground truth by
stamp), an offline evaluation of the same frames (re-rendered from their seeds) and
<out>/grasp_overlay.png. No hardware, no downloads.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import shutil
import sys
import time
from typing import Any

import numpy as np

from seg_perception.cli import CliError

CAMERA_NS = 'camera'
CAMERA = f'/{CAMERA_NS}'
TOPICS = {
    'color': f'{CAMERA}/color/image_raw',
    'depth': f'{CAMERA}/depth/image_rect',
    'color_info': f'{CAMERA}/color/camera_info',
    'depth_info': f'{CAMERA}/depth/camera_info',
    'gt': f'{CAMERA}/ground_truth/labels',
    'labels': f'{CAMERA}/color/segmentation/labels',
    'overlay': f'{CAMERA}/color/segmentation/overlay',
    'points': f'{CAMERA}/grasp/graspable_points',
    'poses': f'{CAMERA}/grasp/candidate_poses',
    'markers': f'{CAMERA}/grasp/markers',
    'candidates': f'{CAMERA}/grasp/candidates',
    'label_info': f'{CAMERA}/color/segmentation/label_info',
    'diagnostics': '/diagnostics',
}
#: custom-typed topics, recorded once bag_recorder can register seg_interfaces types
SEARCH_SEEDS = 300  # how far past --seed to look for the first recorded frame
OFFLINE_BATCH = 4  # frames per engine call in the offline evaluation
LABELLED_CANDIDATES = 5  # the overlay PNG writes rank, class and score of the best ones


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options."""
    from seg_perception.evaluation.offline import EVAL_SEED_START
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument('--out', type=Path, default=Path('demo'), help='output folder')
    parser.add_argument('--duration', type=float, default=20.0, help='seconds of camera frames')
    parser.add_argument('--model', default='default',
                        help="'default', a registry name (random weights, frozen with seed 0 "
                             'so node and offline evaluation share them) or a model file')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'auto'")
    parser.add_argument('--rate', type=float, default=5.0, help='camera frames per second')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--seed', type=int, default=EVAL_SEED_START,
                        help='seed of the first camera frame (held-out seeds by default)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads of the offline evaluation (more threads than '
                             'free cores slows a shared machine down many times)')
    parser.add_argument('--offline-all', action='store_true',
                        help='also evaluate offline every frame the camera produced, not only '
                             'the ones the node processed')
    parser.add_argument('--no-progress', action='store_true', help='hide progress bars')


def main(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when the report was written."""
    if args.duration <= 0 or args.rate <= 0:
        raise CliError(f'--duration and --rate must be > 0, got {args.duration} and {args.rate}')
    started = time.monotonic()
    out: Path = args.out
    _prepare(out)
    model = _resolve_model(args.model, out, (args.height, args.width))
    partial = _run_nodes(args, out, model)
    run_s = time.monotonic() - started
    report, extra = _evaluate(args, out, model, partial)
    report.setdefault('details', {})['wall_s'] = {'nodes': round(run_s, 1),
                                                  'total': round(time.monotonic() - started, 1)}
    from seg_perception.evaluation.report import write_report
    files = write_report(out, report, latencies_ms=extra['latencies'], samples=extra['samples'])
    _print_summary(report, out, files, extra, time.monotonic() - started)
    return 130 if partial else 0


def _prepare(out: Path) -> None:
    """Create `out`, removing the artefacts of an earlier demo run (bag, logs, model)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ('bag', 'logs', 'model'):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)


def _resolve_model(model: str, out: Path, frame_hw: tuple[int, int]) -> str:
    """Return the model argument for the node; registry names are frozen into a checkpoint."""
    from seg_perception.segmentation.registry import ARCHITECTURES
    if model not in ARCHITECTURES:
        if model == 'default':
            from seg_perception.segmentation.model_spec import default_model_path
            if not default_model_path().is_file():
                raise CliError(f'the default model {default_model_path()} is not installed; '
                               'pass --model unet_small (random weights) or a model file')
        return model
    import torch

    from seg_perception.classes import ClassSet
    from seg_perception.segmentation.loader import DEFAULT_INPUT_SIZE
    from seg_perception.segmentation.model_spec import ModelSpec, save_checkpoint
    from seg_perception.segmentation.registry import build_model
    torch.manual_seed(0)
    class_set = ClassSet.default()
    net = build_model(model, num_classes=class_set.num_outputs, weights=None)
    size = frame_hw if frame_hw[0] % 32 == 0 and frame_hw[1] % 32 == 0 else DEFAULT_INPUT_SIZE
    spec = ModelSpec(arch=model, class_set=class_set, input_size=tuple(size),
                     model_name=f'{model}-random-seed0')
    path = out / 'model' / f'{model}.pt'
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, net, spec)
    return str(path)


def _run_nodes(args: argparse.Namespace, out: Path, model: str) -> bool:
    """Run camera, segmentation, grasp assist and the recorder; return True if interrupted."""
    from tqdm import tqdm

    from seg_perception.process_group import ProcessGroup
    topics = list(TOPICS.values())
    group = ProcessGroup(log_dir=out / 'logs')
    interrupted = False
    try:
        try:
            group.start('segmentation_node', 'seg_perception.nodes.segmentation_node',
                        namespace=CAMERA_NS, params={
                            'image_topics': ['color/image_raw'], 'model': model,
                            'device': args.device, 'precision': 'fp32',
                            'warmup_iterations': 1, 'qos_reliability': 'reliable'})
            group.start('grasp_assist_node', 'seg_perception.nodes.grasp_assist_node',
                        namespace=CAMERA_NS, params={'qos_reliability': 'reliable'})
            group.wait_ready('segmentation_node', "model '", 180.0)
            group.wait_ready('grasp_assist_node', 'graspable classes', 60.0)
            group.start('bag_recorder', 'seg_perception.nodes.bag_recorder',
                        args=[*topics, '-o', str(out / 'bag'), '--timeout', '60'])
            group.start('synthetic_camera', 'seg_perception.nodes.synthetic_camera_node',
                        namespace=CAMERA_NS, params={
                            'rate_hz': float(args.rate), 'width': args.width,
                            'height': args.height, 'seed': args.seed})
            group.wait_ready('bag_recorder', 'recording', 60.0)
            steps = max(1, int(round(args.duration * 10)))
            for _ in tqdm(range(steps), desc=f'demo running ({args.duration:.0f} s)',
                          unit='tick', disable=args.no_progress, file=sys.stderr,
                          bar_format='{desc}: {percentage:3.0f}%|{bar}| {elapsed}'):
                group.check_running()
                time.sleep(0.1)
        except KeyboardInterrupt:
            interrupted = True
        # Camera first; give the pipeline time to finish the frames it holds; recorder last.
        group.stop(['synthetic_camera'])
        time.sleep(2.0)
        group.stop(['segmentation_node', 'grasp_assist_node', 'bag_recorder'])
    except Exception as exc:
        from seg_perception.process_group import ProcessError
        group.stop()
        if isinstance(exc, ProcessError):
            raise CliError(str(exc)) from exc
        raise
    finally:
        group.stop()
    if not (out / 'bag' / 'metadata.yaml').is_file():
        raise CliError(f'no bag was recorded; see the logs in {out / "logs"}')
    return interrupted


def _read_recording(bag: Any) -> dict[str, Any]:
    """Read what the evaluation needs from the recorded bag in one pass (images stay packed)."""
    from collections import defaultdict, deque

    from seg_perception.conversions import image_to_numpy
    from seg_perception.evaluation.online import GroundTruth, RecordedInput, stamp_ns
    wanted = [TOPICS[k] for k in ('color', 'gt', 'labels', 'poses', 'markers', 'color_info',
                                  'diagnostics')]
    data: dict[str, Any] = {'inputs': [], 'truth': GroundTruth(), 'labels': defaultdict(deque),
                            'poses': {}, 'texts': {}, 'info': None, 'node_counters': {}}
    for message in bag.messages(topics=wanted):
        topic = message.topic
        msg = bag.deserialize(message)
        if topic == TOPICS['color']:
            data['inputs'].append(RecordedInput(stamp_ns(msg), message.log_time_ns))
        elif topic == TOPICS['gt']:
            data['truth'].by_stamp[stamp_ns(msg)].append(np.array(image_to_numpy(msg)))
        elif topic == TOPICS['labels']:
            data['labels'][stamp_ns(msg)].append((message.log_time_ns, msg))
        elif topic == TOPICS['poses']:
            data['poses'][stamp_ns(msg)] = msg.poses
        elif topic == TOPICS['markers']:
            for marker in msg.markers:
                if marker.ns == 'label':
                    data['texts'].setdefault(stamp_ns(marker), {})[marker.id] = marker.text
        elif topic == TOPICS['color_info']:
            data['info'] = data['info'] or msg
        else:
            for status in msg.status:
                if status.name.startswith('segmentation_node'):
                    data['node_counters'] = {kv.key: kv.value for kv in status.values}
    return data


def _evaluate(args: argparse.Namespace, out: Path, model: str,
              partial: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the recorded bag online and the same frames offline; return (report, extras)."""
    from seg_perception.bag.reader import BagReader
    from seg_perception.evaluation.accounting import latency_summary
    from seg_perception.evaluation.online import images_lookup, model_class_set, score_recorded
    class_set = model_class_set(model)
    with BagReader(out / 'bag') as bag:
        data = _read_recording(bag)
        inputs = data['inputs']
        if not inputs:
            raise CliError(f'the recorded bag has no frames on {TOPICS["color"]}; see '
                           f'{out / "logs"}')
        gt_by_stamp = {s: q[0] for s, q in data['truth'].by_stamp.items()}
        label_log = {s: q[0][0] for s, q in data['labels'].items()}
        scored = score_recorded(inputs=inputs, outputs=data['labels'], truth=data['truth'],
                                class_set=class_set,
                                images_for=images_lookup(bag, TOPICS['color']))
        ages = [(label_log[s] - s) / 1e6 for s in scored['processed_stamps'] if s in label_log]
        grasp = _grasp_figures(bag, out, data)
    seeds = _identify_seeds(args, inputs, gt_by_stamp)
    scored_stamps = [s for s in scored['processed_stamps'] if s in gt_by_stamp]
    offline = _offline(args, model, seeds, scored_stamps, inputs, gt_by_stamp)
    online_miou = (scored['segmentation'] or {}).get('miou')
    rows = [{'name': 'online (recorded labels vs. recorded ground truth)',
             'frames': (scored['segmentation'] or {}).get('frames', 0), 'miou': online_miou},
            {'name': 'offline, same frames (re-rendered from their seeds)',
             'frames': offline['same']['frames'], 'miou': offline['same']['miou']}]
    if offline.get('all'):
        rows.append({'name': 'offline, every frame the camera produced',
                     'frames': offline['all']['frames'], 'miou': offline['all']['miou']})
    difference = None
    if online_miou is not None and offline['same']['miou'] is not None:
        difference = round(online_miou - offline['same']['miou'], 4)
    report = {
        'title': 'seg_perception demo: synthetic cell -> segmentation -> grasp assist',
        'mode': 'demo (online)',
        'partial': partial,
        'source': {'camera': f'synthetic {args.width}x{args.height} at {args.rate:g} Hz',
                   'seeds': f'{seeds[0]}..{seeds[-1]}' if seeds else 'n/a',
                   'bag': str(out / 'bag')},
        'model': {'name': model, 'device': args.device},
        'accounting': scored['accounting'],
        'segmentation': scored['segmentation'],
        'latency': scored['latency'],
        'throughput_fps': scored['throughput_fps'],
        'offline_comparison': {'rows': rows, 'difference': difference},
        'warnings': scored['warnings'],
        'notes': [f'frames in = colour frames recorded (the first {seeds[0] - args.seed} '
                  'frames, published before the recorder subscribed, are not counted)'
                  if seeds else 'frames in = colour frames recorded',
                  f'stamp-to-labels age p50 {latency_summary(ages)["p50_ms"]} ms (label receive '
                  'time minus the camera stamp)',
                  f'grasp candidates per frame: mean {grasp["mean"]}, max {grasp["max"]} over '
                  f'{grasp["frames"]} frames'],
        'details': {'grasp': grasp, 'segmentation_node_counters': data['node_counters'],
                    'offline': offline, 'stamp_to_labels_ms': latency_summary(ages)},
    }
    counters = data['node_counters']
    if counters:
        report['notes'].append(
            f'segmentation node counters (its /diagnostics, whole run): received '
            f'{counters.get("frames_received")}, published {counters.get("frames_published")}, '
            f'dropped from its one-frame slot {counters.get("frames_dropped")}; recorded frames '
            'it never received were replaced in its DDS input queue (depth 1) by newer ones')
    if offline['truth_mismatches']:
        report['warnings'].append(f'{offline["truth_mismatches"]} re-rendered frames differ from '
                                  'the recorded ground truth (seed bookkeeping is off)')
    return report, {'latencies': scored['latencies_ms'], 'samples': scored['samples'],
                    'grasp': grasp}


def _identify_seeds(args: argparse.Namespace, inputs: list, gt: dict[int, np.ndarray]
                    ) -> list[int]:
    """Return the seed of every recorded frame (frame i of the camera uses seed + i).

    The recorder may subscribe after the camera's first frames, so the first recorded frame is
    found by re-rendering seeds from --seed on and comparing the ground-truth labels.
    """
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    known = next((i for i, frame in enumerate(inputs) if frame.stamp_ns in gt), None)
    if known is None:
        return []
    first = gt[inputs[known].stamp_ns]
    cell = SyntheticCell(SyntheticConfig(width=args.width, height=args.height))
    for seed in range(args.seed + known, args.seed + known + SEARCH_SEEDS):
        if np.array_equal(cell.render(seed=seed).labels, first):
            return list(range(seed - known, seed - known + len(inputs)))
    raise CliError(f'the first recorded frame matches no seed in {args.seed}..'
                   f'{args.seed + SEARCH_SEEDS - 1}')


def _offline(args: argparse.Namespace, model: str, seeds: list[int], processed: list[int],
             inputs: list, gt_by_stamp: dict[int, np.ndarray]) -> dict[str, Any]:
    """Re-render frames from their seeds and segment them in this process (the same engine)."""
    from tqdm import tqdm

    from seg_perception.evaluation.metrics import SegmentationScores
    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    result: dict[str, Any] = {'same': {'frames': 0, 'miou': None}, 'truth_mismatches': 0}
    if not seeds:
        return result
    if args.threads > 0:
        import torch
        torch.set_num_threads(args.threads)
    engine = SegmentationEngine(EngineConfig(model=model, device=args.device, precision='fp32',
                                             warmup_iterations=0))
    names = {c.id: c.name for c in engine.class_set}
    num = engine.class_set.num_outputs
    class_names = [names.get(i, f'id{i}') for i in range(num)]
    seed_of = {frame.stamp_ns: seed for frame, seed in zip(inputs, seeds)}
    truth_of = {seed: gt_by_stamp.get(stamp) for stamp, seed in seed_of.items()}
    same_seeds = [seed_of[s] for s in processed if s in seed_of]
    wanted = seeds if args.offline_all else same_seeds
    cell = SyntheticCell(SyntheticConfig(width=args.width, height=args.height))
    same = SegmentationScores(num_classes=num, class_names=class_names)
    every = SegmentationScores(num_classes=num, class_names=class_names)
    same_set = set(same_seeds)
    bar = tqdm(total=len(wanted), desc='offline evaluation', unit='frame',
               disable=args.no_progress, file=sys.stderr)
    for start in range(0, len(wanted), OFFLINE_BATCH):
        frames = [cell.render(seed=seed) for seed in wanted[start:start + OFFLINE_BATCH]]
        results = engine.segment([f.rgb for f in frames])
        for frame, out in zip(frames, results):
            recorded = truth_of.get(frame.seed)
            if recorded is not None and not np.array_equal(recorded, frame.labels):
                result['truth_mismatches'] += 1
            every.update(frame.labels, out.labels)
            if frame.seed in same_set:
                same.update(frame.labels, out.labels)
        bar.update(len(frames))
    bar.close()
    result['same'] = {k: v for k, v in same.summary().items() if k != 'confusion_matrix'}
    result['same']['seeds'] = same_seeds
    if args.offline_all:
        result['all'] = {k: v for k, v in every.summary().items() if k != 'confusion_matrix'}
    return result


def _quaternion_z_axis(q: Any) -> np.ndarray:
    """Return the z column of the rotation of quaternion (x, y, z, w)."""
    x, y, z, w = q.x, q.y, q.z, q.w
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


def _grasp_figures(bag: Any, out: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Return candidates-per-frame figures and draw the best frame's candidates to a PNG."""
    import cv2

    from seg_perception.conversions import image_to_numpy
    from seg_perception.evaluation.online import stamp_ns
    poses_by_stamp = data['poses']
    counts = [len(p) for p in poses_by_stamp.values()]
    figures = {'frames': len(counts),
               'mean': round(float(np.mean(counts)), 2) if counts else None,
               'max': int(max(counts)) if counts else None, 'image': None}
    info = data['info']
    if not counts or info is None:
        return figures
    fx, fy, cx, cy = info.k[0], info.k[4], info.k[2], info.k[5]
    best = max(poses_by_stamp, key=lambda s: len(poses_by_stamp[s]))
    images = {}
    for message in bag.messages(topics=[TOPICS['overlay'], TOPICS['color']]):
        msg = bag.deserialize(message)
        if stamp_ns(msg) == best:
            images[message.topic] = np.array(image_to_numpy(msg))
            if TOPICS['overlay'] in images:
                break
    image = images.get(TOPICS['overlay'], images.get(TOPICS['color']))
    if image is None:
        return figures
    canvas = np.ascontiguousarray(image[..., :3]).copy()
    scale = max(canvas.shape[1] / 640.0, 0.5)
    for rank, pose in reversed(list(enumerate(poses_by_stamp[best]))):
        p = np.array([pose.position.x, pose.position.y, pose.position.z])
        tip = p + 0.04 * _quaternion_z_axis(pose.orientation)
        u0, v0 = int(round(fx * p[0] / p[2] + cx)), int(round(fy * p[1] / p[2] + cy))
        u1, v1 = int(round(fx * tip[0] / tip[2] + cx)), int(round(fy * tip[1] / tip[2] + cy))
        colour = (255, 40, 40) if rank == 0 else (40, 220, 255)
        cv2.circle(canvas, (u0, v0), max(3, int(6 * scale)), colour, 2, cv2.LINE_AA)
        cv2.line(canvas, (u0, v0), (u1, v1), (255, 255, 255), 1, cv2.LINE_AA)
        if rank < LABELLED_CANDIDATES:
            label = data['texts'].get(best, {}).get(rank, '')
            cv2.putText(canvas, f'{rank + 1} {label}', (u0 + 6, v0 - 6),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, colour, 1, cv2.LINE_AA)
    path = out / 'grasp_overlay.png'
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    figures['image'] = path.name
    figures['image_stamp_ns'] = best
    return figures


def _print_summary(report: dict[str, Any], out: Path, files: dict[str, Path],
                   extra: dict[str, Any], wall_s: float) -> None:
    acc = report['accounting']
    seg = report.get('segmentation') or {}
    lat = report['latency']
    rows = report['offline_comparison']['rows']
    reasons = ', '.join(f'{k} {v}' for k, v in acc['dropped_by_reason'].items()) or 'none'
    grasp = extra['grasp']

    def fmt(value: Any, digits: int = 3) -> str:
        return 'n/a' if value is None else f'{value:.{digits}f}'

    state = ' (interrupted: partial report)' if report['partial'] else ''
    print(f'demo finished in {wall_s:.0f} s{state}')
    print(f'  bag:            {out / "bag"}  (MCAP; open in Foxglove or RViz)')
    print(f'  report:         {files["markdown"]}  (+ report.json, PNG plots)')
    if grasp.get('image'):
        print(f'  grasp overlay:  {out / grasp["image"]}')
    print(f'  node logs:      {out / "logs"}')
    print(f'frames:     in {acc["frames_in"]}, processed {acc["frames_processed"]}, dropped '
          f'{acc["frames_dropped"]} ({reasons})')
    every = (f', offline all {fmt(rows[2]["miou"])} ({rows[2]["frames"]} frames)'
             if len(rows) > 2 else '')
    print(f'mIoU:       online {fmt(seg.get("miou"))} ({rows[0]["frames"]} frames), offline same '
          f'frames {fmt(rows[1]["miou"])}{every}')
    print(f'fps:        {fmt(report["throughput_fps"], 2)} processed frames/s')
    print(f'latency:    p50 {fmt(lat["p50_ms"], 1)} ms, p95 {fmt(lat["p95_ms"], 1)} ms, p99 '
          f'{fmt(lat["p99_ms"], 1)} ms')
    print(f'candidates: {fmt(grasp["mean"], 1)} per frame (max {grasp["max"]}, '
          f'{grasp["frames"]} frames)')
