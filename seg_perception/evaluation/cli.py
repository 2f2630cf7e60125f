"""`seg_perception evaluate`: score a model (per-class IoU, mIoU, pixel accuracy) and time it.

Modes (one per data source; add a new one with an `_add_<mode>_arguments` function and a
`_run_<mode>` function and register it in MODES):
  synthetic  a seeded, held-out synthetic set rendered at 640x480 (seeds >= 100000 by default)
  bag        offline over a rosbag2: the engine segments every frame of --image-topic
  online     a rosbag2 replayed through a real segmentation_node (latency, drops)
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
    measure_latency
from seg_perception.evaluation.online import add_bag_arguments, run_bag
from seg_perception.segmentation.model_spec import default_model_path, load_checkpoint, \
    ModelSpec


def _add_synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('synthetic mode')
    g.add_argument('--synthetic-frames', type=int, default=200,
                   help='number of held-out synthetic frames')
    g.add_argument('--seed-start', type=int, default=EVAL_SEED_START,
                   help='first seed of the synthetic set (training never uses >= 100000)')
    g.add_argument('--frame-size', default='480x640', metavar='HxW',
                   help='resolution the synthetic frames are rendered at')


def _run_synthetic(args: argparse.Namespace, model: torch.nn.Module,
                   spec: ModelSpec) -> dict[str, Any]:
    h, w = (int(v) for v in args.frame_size.lower().split('x'))
    step = max(1, args.synthetic_frames // 10)

    def progress(done: int, total: int) -> None:
        if done % step < args.batch_size or done == total:
            print(f'evaluated {done}/{total} frames', flush=True)

    return evaluate_synthetic(model, spec, frames=args.synthetic_frames,
                              seed_start=args.seed_start, size_hw=(h, w),
                              batch_size=args.batch_size, device=args.device,
                              progress=progress)


#: mode -> (argument adder, runner)
MODES: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                       Callable[[argparse.Namespace, torch.nn.Module, ModelSpec],
                                dict[str, Any]]]] = {
    'synthetic': (_add_synthetic_arguments, _run_synthetic),
}
#: modes that run the production engine / node on a model name and write a report folder
BAG_MODES = ('bag', 'online')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the evaluate subcommand's options."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument('--model', default='default',
                        help="checkpoint .pt (with its .json sidecar) or 'default'; bag and "
                             'online modes also take registry names and .ts/.onnx files')
    parser.add_argument('--mode', choices=tuple(MODES) + BAG_MODES, default='synthetic')
    parser.add_argument('--out', type=Path, default=Path('build/eval/synthetic'),
                        help='output folder for metrics.json')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'auto'")
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--latency-runs', type=int, default=50,
                        help='batch-1 CPU latency runs (0 = skip the timing)')
    for adder, _ in MODES.values():
        adder(parser)
    add_bag_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """Run the evaluate subcommand."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode in BAG_MODES:
        return run_bag(args)
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    path = default_model_path() if args.model == 'default' else Path(args.model)
    model, spec = load_checkpoint(path, map_location=args.device)
    _, runner = MODES[args.mode]
    summary = runner(args, model, spec)
    summary['model'] = str(path)
    summary['model_name'] = spec.model_name
    summary['arch'] = spec.arch
    summary['input_size_hw'] = list(spec.input_size)
    if args.latency_runs > 0:
        summary['latency'] = measure_latency(model, spec, runs=args.latency_runs,
                                             threads=args.threads,
                                             frame_size_hw=tuple(summary.get('frame_size_hw',
                                                                             (480, 640))))
    print(f'model {path} ({spec.arch}, input {spec.input_size[0]}x{spec.input_size[1]})')
    print(format_table(summary))
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
