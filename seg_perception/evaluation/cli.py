"""`seg_perception evaluate`: score a model (per-class IoU, mIoU, pixel accuracy) and time it.

Modes (one per data source; add a new one with an `_add_<mode>_arguments` function and a
`_run_<mode>` function and register it in MODES):
  synthetic  a seeded, held-out synthetic set rendered at 640x480 (seeds >= 100000 by default)
  bag        offline over a rosbag2: the engine segments every frame of --image-topic
  online     a rosbag2 replayed through a real segmentation_node (latency, drops)
  frames     a folder of real labelled frames (item-vs-rest IoU; with --grasp, the share of grasp
             candidates on items; see seg_perception.evaluation.frames for the folder format)
The bag and online modes write report.md, report.json and PNG plots into --out (see
seg_perception.evaluation.online and docs/evaluation.md); they accept any model the node does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

import torch

from seg_perception.evaluation.metrics import format_table
from seg_perception.evaluation.offline import EVAL_SEED_START, evaluate_synthetic, \
    evaluation_engine, measure_latency
from seg_perception.evaluation.online import add_bag_arguments, run_bag
from seg_perception.segmentation.backends import BACKENDS
from seg_perception.segmentation.engine import SegmentationEngine
from seg_perception.segmentation.model_spec import model_file


def _add_synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('synthetic mode')
    g.add_argument('--synthetic-frames', type=int, default=200,
                   help='number of held-out synthetic frames')
    g.add_argument('--seed-start', type=int, default=EVAL_SEED_START,
                   help='first seed of the synthetic set (training never uses >= 100000)')
    g.add_argument('--frame-size', default='480x640', metavar='HxW',
                   help='resolution the synthetic frames are rendered at')
    g.add_argument('--scenes', choices=('all', 'tote', 'non-tote', 'classic'), default='all',
                   help="held-out split: the cell's mix, totes only, tables/shelves/conveyors "
                        '(some empty) only, or the cell before the real-camera randomisation')


def _run_synthetic(args: argparse.Namespace, engine: SegmentationEngine) -> dict[str, Any]:
    h, w = (int(v) for v in args.frame_size.lower().split('x'))
    step = max(1, args.synthetic_frames // 10)

    def progress(done: int, total: int) -> None:
        if done % step < args.batch_size or done == total:
            print(f'evaluated {done}/{total} frames', flush=True)

    return evaluate_synthetic(engine, frames=args.synthetic_frames,
                              seed_start=args.seed_start, size_hw=(h, w),
                              batch_size=args.batch_size, scenes=args.scenes, progress=progress)


#: mode -> (argument adder, runner)
MODES: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                       Callable[[argparse.Namespace, SegmentationEngine], dict[str, Any]]]] = {
    'synthetic': (_add_synthetic_arguments, _run_synthetic),
}
#: modes that run the production engine / node on a model name and write a report folder
BAG_MODES = ('bag', 'online')
FRAMES_MODE = 'frames'


def _add_frames_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('frames mode (real labelled frames)')
    g.add_argument('--images', type=Path, help='folder of colour frames (.png/.jpg)')
    g.add_argument('--masks', type=Path, help='folder of item masks <stem>.png, nonzero = item')
    g.add_argument('--ignore', type=Path, default=None,
                   help='optional folder of <stem>.png, nonzero = pixel not scored')
    g.add_argument('--grasp', action='store_true',
                   help='also run the grasp pipeline on the labels (needs --depth, '
                        '--intrinsics) and count candidates on mask pixels')
    g.add_argument('--depth', type=Path, default=None,
                   help='folder of registered depth <stem>.png (uint16) or .npy (metres)')
    g.add_argument('--depth-units-per-m', type=float, default=1000.0,
                   help='units of the uint16 depth PNGs per metre (1000 = mm)')
    g.add_argument('--intrinsics', type=Path, default=None,
                   help='folder of <stem>.txt 3x3 K, or one file for every frame')
    g.add_argument('--container', choices=('auto', 'reference', 'none'), default='auto',
                   help='container step of the grasp pipeline')
    g.add_argument('--empty', type=Path, default=None,
                   help='folder of empty-container depth <stem>.png/.npy (--container '
                        'reference)')


def _run_frames(args: argparse.Namespace) -> int:
    import sys
    from seg_perception.evaluation.frames import evaluate_frames, FramesError, load_frames
    if args.images is None or args.masks is None:
        print('evaluate: error: --mode frames needs --images DIR and --masks DIR',
              file=sys.stderr)
        return 2
    if args.grasp and (args.depth is None or args.intrinsics is None):
        print('evaluate: error: --grasp needs --depth DIR and --intrinsics FILE|DIR',
              file=sys.stderr)
        return 2
    if args.grasp and args.container == 'reference' and args.empty is None:
        print('evaluate: error: --container reference needs --empty DIR', file=sys.stderr)
        return 2
    if args.out == Path('build/eval/synthetic'):
        args.out = Path('build/eval/frames')
    try:
        frames = load_frames(args.images, args.masks, ignore=args.ignore,
                             depth=args.depth if args.grasp else None,
                             intrinsics=args.intrinsics if args.grasp else None,
                             empty=args.empty if args.grasp and args.container == 'reference'
                             else None, depth_units_per_m=args.depth_units_per_m)
        from tqdm import tqdm
        with tqdm(total=len(frames), desc='frames', unit='frame') as bar:
            summary = evaluate_frames(frames, model=args.model, device=args.device,
                                      grasp=args.grasp, container_mode=args.container,
                                      out=args.out, progress=lambda done, total: bar.update(1))
    except (FramesError, OSError, ValueError, RuntimeError) as exc:
        print(f'evaluate: error: {exc}', file=sys.stderr)
        return 1
    print(f'item IoU (labels) mean {summary["item_iou_mean"]:.3f}, precision '
          f'{summary["item_precision_mean"]:.3f}, recall {summary["item_recall_mean"]:.3f}')
    if args.grasp:
        share = summary['candidates_on_items_share']
        after = summary['after_container_item_iou_mean']
        print(f'after the container step ({args.container}): item IoU mean '
              f'{after:.3f}; candidates on items {summary["candidates_on_items"]}/'
              f'{summary["candidates"]}' + (f' ({share:.1%})' if share is not None else ''))
    print(f'wrote {args.out / "report.md"}')
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the evaluate subcommand's options."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument('--model', default='default',
                        help="a shipped model ('default', 'pretrained_mnv2'), a registry name, "
                             'or a .pt/.ts/.onnx/.xml file with its .json sidecar')
    parser.add_argument('--mode', choices=tuple(MODES) + BAG_MODES + (FRAMES_MODE,),
                        default='synthetic')
    parser.add_argument('--out', type=Path, default=Path('build/eval/synthetic'),
                        help='output folder for metrics.json')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'auto'")
    parser.add_argument('--backend', choices=BACKENDS, default=None,
                        help="runtime of the network in synthetic mode (default: the model's "
                             'own; auto = the fastest installed one)')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--latency-runs', type=int, default=50,
                        help='batch-1 CPU latency runs (0 = skip the timing)')
    for adder, _ in MODES.values():
        adder(parser)
    add_bag_arguments(parser)
    _add_frames_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """Run the evaluate subcommand."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode in BAG_MODES:
        return run_bag(args)
    if args.mode == FRAMES_MODE:
        return _run_frames(args)
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    path = model_file(args.model)
    engine = evaluation_engine(args.model, device=args.device, backend=args.backend)
    spec = engine.spec
    _, runner = MODES[args.mode]
    summary = runner(args, engine)
    summary['model'] = str(path)
    summary['model_name'] = spec.model_name
    summary['arch'] = spec.arch
    summary['backend'] = engine.backend
    summary['input_size_hw'] = list(engine.input_size)
    if args.latency_runs > 0:
        summary['latency'] = measure_latency(engine, runs=args.latency_runs,
                                             threads=args.threads,
                                             frame_size_hw=tuple(summary.get('frame_size_hw',
                                                                             (480, 640))))
    print(f'model {path} ({spec.arch}, input {engine.input_size[0]}x{engine.input_size[1]}, '
          f'backend {engine.backend})')
    print(format_table(summary))
    if 'item_iou' in summary:
        print(f'item-vs-rest IoU ({summary.get("scenes", "all")} scenes): '
              f'{summary["item_iou"]:.4f}')
    if 'latency' in summary:
        lat = summary['latency']
        print(f'latency (CPU, batch 1, {lat["threads"]} threads): full frame '
              f'{lat["full_frame_ms_median"]:.1f} ms median ({lat["full_frame_ms_p90"]:.1f} p90), '
              f'network alone {lat["network_ms_median"]:.1f} ms')
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / 'metrics.json'
    out_file.write_text(json.dumps(summary, indent=2) + '\n', encoding='utf-8')
    print(f'wrote {out_file}')
    return 0
