r"""`seg_perception adapt`: fine-tune a model on an unlabelled RGB-D bag of the user's own cell.

  seg_perception adapt --bag my_cell --image-topic /cam/color/image_raw \\
      --depth-topic /cam/aligned_depth_to_color/image_raw \\
      --camera-info-topic /cam/color/camera_info --model default --out build/adapt/my_cell

Writes OUT/model.pt + model.json (load with `model:=OUT/model.pt`), OUT/report.md, report.json
and pictures, and OUT/train/ (the trainer's checkpoints, metrics and curves). The work goes into
OUT.partial/ and is renamed to OUT at the end; an interrupted run continues with --resume.
Bad input (missing topics, unregistered depth, no container, no usable pseudo-labels, too few
frames) stops before anything is written. docs/adaptation.md describes the protocol.
"""

from __future__ import annotations

import argparse
from collections import Counter
import copy
import json
from pathlib import Path
import shlex
import shutil
import sys
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset
from tqdm import tqdm

from seg_perception.adaptation.bag_frames import FrameError, iter_frames, read_frame
from seg_perception.adaptation.pseudo_labels import PseudoLabelConfig, PseudoLabeler
from seg_perception.adaptation.report import before_after_strip, pseudo_label_strip, \
    write_png, write_report
from seg_perception.adaptation.styles import StyledCell, STYLES
from seg_perception.evaluation.offline import evaluate_synthetic, evaluation_engine, \
    predict_labels
from seg_perception.grasp.container import ContainerConfig, ContainerError
from seg_perception.segmentation.model_spec import load_checkpoint, model_file, \
    save_checkpoint
from seg_perception.training import distributed
from seg_perception.training.augment import AugmentConfig
from seg_perception.training.datasets import class_pixel_counts, resize_pair, SYNTHETIC_FULL_SIZE
from seg_perception.training.losses import class_weights_from_counts
from seg_perception.training.trainer import PRECISIONS, STATE_FILE, TrainConfig, Trainer

#: fewest usable frames adapt accepts at all (one to fine-tune on, one to hold out)
MIN_FRAMES_FLOOR = 2
#: pictures in the report
SAMPLE_FRAMES = 4


class AdaptError(ValueError):
    """Raised for input adapt cannot work with; the CLI prints it as one line."""


class FramePool(Dataset):
    """(rgb, labels) pairs held in memory at the training size."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.pairs[index]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the adapt subcommand's options."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    b = parser.add_argument_group('bag')
    b.add_argument('--bag', type=Path, required=True, help='rosbag2 folder or file (MCAP/sqlite3)')
    b.add_argument('--image-topic', required=True, help='sensor_msgs/Image colour topic')
    b.add_argument('--depth-topic', required=True,
                   help='sensor_msgs/Image depth registered to the colour (16UC1 mm or 32FC1 m)')
    b.add_argument('--camera-info-topic', required=True, help='CameraInfo of the depth/colour')
    b.add_argument('--stamp-tolerance-ms', type=float, default=10.0,
                   help='largest header stamp difference of a colour/depth pair')
    b.add_argument('--empty-container-frame', type=int, default=None, metavar='N',
                   help='frame N (0-based) shows the empty container: item pixels are what '
                        'stands in front of it (container mode reference; else auto)')
    b.add_argument('--max-frames', type=int, default=None, help='use at most this many frames')
    b.add_argument('--min-frames', type=int, default=10,
                   help=f'refuse to adapt on fewer usable frames (at least {MIN_FRAMES_FLOOR})')
    p = parser.add_argument_group('pseudo-labels')
    p.add_argument('--min-confidence', type=float, default=0.6,
                   help="the model's softmax probability for a class vote")
    p.add_argument('--single-item-class', default=None, metavar='NAME',
                   help="label every item with this class instead of the model's vote")
    m = parser.add_argument_group('model and training')
    m.add_argument('--model', default='default',
                   help="a shipped model ('default', 'pretrained_mnv2') or a checkpoint .pt")
    m.add_argument('--iterations', type=int, default=600)
    m.add_argument('--time-budget-min', type=float, default=None)
    m.add_argument('--batch-size', type=int, default=8, help='per process under torchrun')
    m.add_argument('--lr', type=float, default=3e-4,
                   help='peak learning rate (higher adapts more and forgets more)')
    m.add_argument('--warmup', type=int, default=50)
    m.add_argument('--val-fraction', type=float, default=0.15,
                   help='the last part of the bag held out for validation')
    m.add_argument('--val-every', type=int, default=100)
    m.add_argument('--log-every', type=int, default=50)
    m.add_argument('--crop', default=None, metavar='HxW', help='random training crops')
    m.add_argument('--class-weights', choices=('none', 'auto'), default='none')
    m.add_argument('--synthetic-mix', type=float, default=0.5,
                   help='share of synthetic frames in the fine-tuning data (against forgetting)')
    m.add_argument('--synthetic-style', choices=tuple(STYLES), default='default',
                   help='the synthetic cell the model was trained on: mixed in and scored')
    m.add_argument('--eval-frames', type=int, default=50,
                   help='held-out synthetic frames scored before and after (0: skip)')
    m.add_argument('--precision', choices=PRECISIONS, default='auto')
    m.add_argument('--seed', type=int, default=0)
    m.add_argument('--threads', type=int, default=None)
    m.add_argument('--device', default='auto')
    o = parser.add_argument_group('output')
    o.add_argument('--out', type=Path, required=True, help='output folder (must not exist)')
    o.add_argument('--resume', action='store_true', help='continue the run in OUT.partial/')
    o.add_argument('--no-progress', action='store_true', help='hide the progress bars')


def _check_args(args: argparse.Namespace) -> tuple[Path, Path]:
    out = Path(args.out)
    work = out.with_name(out.name + '.partial')
    if out.exists():
        raise AdaptError(f'--out {str(out)!r} exists; choose another folder or remove it')
    if args.resume and not (work / 'train' / STATE_FILE).is_file():
        raise AdaptError(f'cannot resume: {str(work / "train" / STATE_FILE)!r} does not exist')
    if not args.resume and work.exists():
        raise AdaptError(f'{str(work)!r} holds an unfinished run: pass --resume to continue it, '
                         'or remove it')
    if args.min_frames < MIN_FRAMES_FLOOR:
        raise AdaptError(f'--min-frames must be >= {MIN_FRAMES_FLOOR}, got {args.min_frames}')
    if not 0.0 <= args.synthetic_mix < 1.0:
        raise AdaptError(f'--synthetic-mix must be in [0, 1), got {args.synthetic_mix}')
    if not 0.0 < args.val_fraction < 1.0:
        raise AdaptError(f'--val-fraction must be in (0, 1), got {args.val_fraction}')
    return out, work


def _parse_crop(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise AdaptError(f'--crop must be HxW, got {text!r}') from None
    return h, w


def pseudo_label_bag(args: argparse.Namespace, model: torch.nn.Module, spec: Any,
                     device: str) -> dict[str, Any]:
    """Read the bag, pseudo-label every frame; return training pairs, samples and statistics."""
    topics = {'image_topic': args.image_topic, 'depth_topic': args.depth_topic,
              'info_topic': args.camera_info_topic,
              'tolerance_ns': int(args.stamp_tolerance_ms * 1e6)}
    mode = 'reference' if args.empty_container_frame is not None else 'auto'
    labeler = PseudoLabeler(spec.class_set, PseudoLabelConfig(
        min_confidence=args.min_confidence, single_item_class=args.single_item_class,
        container=ContainerConfig(mode=mode)))
    if args.empty_container_frame is not None:
        empty = read_frame(args.bag, args.empty_container_frame, **topics)
        try:
            labeler.set_empty_container(empty.depth_m, empty.camera)
        except ContainerError as exc:
            raise AdaptError(f'empty-container frame {args.empty_container_frame}: {exc}') \
                from exc
    engine = evaluation_engine(copy.deepcopy(model), spec, device=device)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    samples: list[tuple[np.ndarray, np.ndarray]] = []
    keep_rgb: list[np.ndarray] = []
    totals: Counter = Counter()
    unusable: Counter = Counter()
    read = 0
    bar = tqdm(desc='pseudo-labels', unit='frame', disable=True if args.no_progress else None,
               file=sys.stderr)
    for frame in iter_frames(args.bag, **topics):
        if args.max_frames is not None and read >= args.max_frames:
            break
        read += 1
        bar.update(1)
        if frame.index == args.empty_container_frame:
            continue
        result = engine.segment([frame.rgb], confidence=True)[0]
        out = labeler.label(frame.depth_m, frame.camera, result.labels, result.confidence)
        if not out.usable or out.labels is None:
            unusable[out.reason] += 1
            continue
        totals.update(out.stats)
        pairs.append(resize_pair(frame.rgb, out.labels, spec.input_size))
        keep_rgb.append(pairs[-1][0])
        if len(samples) < SAMPLE_FRAMES and out.stats['item_px'] > 0:
            samples.append(resize_pair(frame.rgb, out.labels, (240, 320)))
    bar.close()
    return {'pairs': pairs, 'samples': samples, 'totals': dict(totals), 'read': read,
            'unusable': dict(unusable), 'container_mode': mode}


def _check_pseudo_labels(result: dict[str, Any], min_frames: int) -> None:
    usable = len(result['pairs'])
    reasons = '; '.join(f'{n} x {r}' for r, n in result['unusable'].items())
    if result['read'] == 0:
        raise AdaptError('the bag has no colour/depth pairs with matching stamps '
                         '(see --stamp-tolerance-ms)')
    if usable == 0 and result['unusable'] and all(r.startswith('no container')
                                                  for r in result['unusable']):
        raise AdaptError(f'no container found in any of the {result["read"]} frame(s) '
                         f'({reasons})')
    totals = result['totals']
    labelled = sum(totals.get(k, 0) for k in ('item_px', 'container_px', 'background_px'))
    if usable == 0 or labelled == 0 or result['totals'].get('item_px', 0) == 0:
        raise AdaptError(f'no usable pseudo-labels: {usable} of {result["read"]} frame(s) gave '
                         f'labels, {result["totals"].get("item_px", 0)} item pixels'
                         + (f' ({reasons})' if reasons else ''))
    if usable < min_frames:
        raise AdaptError(f'too few frames to adapt: {usable} of {result["read"]} frame(s) gave '
                         f'pseudo-labels, need >= {min_frames} (--min-frames)'
                         + (f'; {reasons}' if reasons else ''))


def _synthetic_pool(style: str, count: int, size: tuple[int, int], seed: int,
                    progress: bool) -> FramePool:
    """Render `count` training frames of a synthetic style (seeds from `seed` on)."""
    cell = StyledCell(style, width=SYNTHETIC_FULL_SIZE[1], height=SYNTHETIC_FULL_SIZE[0])
    pairs = []
    for s in tqdm(range(seed, seed + count), desc=f'synthetic {style}', unit='frame',
                  disable=not progress, file=sys.stderr):
        frame = cell.render(seed=s)
        pairs.append(resize_pair(frame.rgb, frame.labels, size))
    return FramePool(pairs)


def _score_synthetic(model: torch.nn.Module, spec: Any, style: str, frames: int,
                     device: str) -> dict[str, Any]:
    if frames <= 0:
        return {'miou': None, 'item_iou': None}
    engine = evaluation_engine(copy.deepcopy(model), spec, device=device)
    cell = None if style == 'default' else StyledCell(style, width=640, height=480)
    summary = evaluate_synthetic(engine, frames=frames, cell=cell)
    return {'miou': summary['miou'], 'item_iou': summary['item_iou'],
            'per_class_iou': summary['per_class_iou']}


def main(args: argparse.Namespace) -> int:
    """Run the adapt subcommand."""
    t_start = time.perf_counter()
    context = distributed.setup(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out, work = _check_args(args)
    crop = _parse_crop(args.crop)
    model_path = model_file(args.model)
    model, spec = load_checkpoint(model_path)
    device = 'cuda' if args.device == 'auto' and torch.cuda.is_available() else (
        'cpu' if args.device == 'auto' else args.device)
    if device.startswith('cuda') and context.distributed:
        device = f'cuda:{context.local_rank}'
    try:
        labelled = pseudo_label_bag(args, model, spec, device)
    except FrameError as exc:
        raise AdaptError(str(exc)) from exc
    _check_pseudo_labels(labelled, args.min_frames)
    t_labels = time.perf_counter() - t_start
    pairs = labelled['pairs']
    n_val = min(len(pairs) - 1, max(1, int(round(len(pairs) * args.val_fraction))))
    train_pairs, val_pairs = pairs[:-n_val], pairs[-n_val:]
    n_syn = int(round(len(train_pairs) * args.synthetic_mix / (1.0 - args.synthetic_mix)))
    progress = not args.no_progress and context.is_main
    if context.is_main:
        work.mkdir(parents=True, exist_ok=True)
    before_file = work / 'before.json'
    if context.is_main and not before_file.is_file():
        before = {'synthetic': _score_synthetic(model, spec, args.synthetic_style,
                                                args.eval_frames, device)}
        before_file.write_text(json.dumps(before), encoding='utf-8')
    context.barrier()
    train_data: Dataset = FramePool(train_pairs)
    if n_syn:
        train_data = ConcatDataset([train_data, _synthetic_pool(
            args.synthetic_style, n_syn, spec.input_size, 0, progress)])
    weights = None
    if args.class_weights == 'auto':
        weights = class_weights_from_counts(class_pixel_counts(train_data,
                                                               num_classes=spec.num_classes))
    config = TrainConfig(iterations=args.iterations, batch_size=args.batch_size, lr=args.lr,
                         warmup_iterations=args.warmup, val_every=args.val_every,
                         log_every=args.log_every, seed=args.seed, threads=args.threads,
                         device=args.device, precision=args.precision,
                         augment=AugmentConfig(crop_size=crop),
                         time_budget_s=None if args.time_budget_min is None
                         else args.time_budget_min * 60.0)
    command = getattr(args, 'command_line', None) or shlex.join(sys.argv)
    extra = {'command': command, 'adapted_from': str(model_path), 'bag': str(args.bag),
             'synthetic_mix_frames': n_syn, 'synthetic_style': args.synthetic_style}
    trainer = Trainer(model=model, spec=spec, config=config, train_data=train_data,
                      val_data=FramePool(val_pairs), out_dir=work / 'train',
                      class_weights=weights, extra=extra)
    val_before = trainer.validate()['miou'] if context.is_main else None
    if args.resume:
        trainer.resume()
    summary = trainer.fit()
    if context.is_main:
        _finish(args, out, work, trainer, summary, labelled, val_before, t_start, t_labels,
                n_syn, len(train_pairs), len(val_pairs), device)
    distributed.teardown()
    return 0


def _finish(args: argparse.Namespace, out: Path, work: Path, trainer: Trainer,
            summary: dict[str, Any], labelled: dict[str, Any], val_before: float | None,
            t_start: float, t_labels: float, n_syn: int, n_train: int, n_val: int,
            device: str) -> None:
    """Write the adapted model, the report and its pictures, then rename OUT.partial to OUT."""
    spec = trainer.spec
    best, _ = load_checkpoint(work / 'train' / 'best.pt')
    before = json.loads((work / 'before.json').read_text(encoding='utf-8'))['synthetic']
    after = _score_synthetic(best, spec, args.synthetic_style, args.eval_frames, device)
    totals = labelled['totals']
    pixels = sum(totals.get(k, 0) for k in ('item_px', 'container_px', 'background_px',
                                            'ignored_px'))
    report = {
        'command': trainer.extra['command'], 'bag': str(args.bag),
        'model': str(out / 'model.pt'), 'adapted_from': trainer.extra['adapted_from'],
        'container_mode': labelled['container_mode'],
        'synthetic_style': args.synthetic_style,
        'frames': {'read': labelled['read'], 'usable': len(labelled['pairs']),
                   'train': n_train, 'val': n_val, 'synthetic_mix': n_syn},
        'pseudo_labels': {**{k: int(v) for k, v in totals.items()},
                          'ignored_share': totals.get('ignored_px', 0) / max(1, pixels),
                          'unusable_reasons': labelled['unusable']},
        'validation': {'before_miou': val_before,
                       'after_miou': trainer.best_miou if trainer.best_miou >= 0 else None},
        'synthetic': {'frames': args.eval_frames, 'style': args.synthetic_style,
                      'before': before, 'after': after,
                      'miou_change': (after['miou'] - before['miou'])
                      if after['miou'] is not None else 0.0},
        'training': {'iterations': summary['iterations'],
                     'train_seconds': summary['train_seconds'],
                     'world_size': trainer.dist.world_size},
    }
    save_checkpoint(work / 'model.pt', best, spec, extra={**trainer.extra, 'adapt': {
        k: report[k] for k in ('frames', 'validation', 'synthetic')}})
    write_png(work / 'pseudo_labels.png', pseudo_label_strip(labelled['samples'],
                                                             spec.class_set))
    val_rgb = [p[0] for p in labelled['pairs'][-n_val:][:SAMPLE_FRAMES]]
    model0, _ = load_checkpoint(model_file(args.model))
    rgb = np.stack(val_rgb)
    labels_before = predict_labels(evaluation_engine(model0, spec, device=device), rgb)
    labels_after = predict_labels(evaluation_engine(copy.deepcopy(best), spec, device=device),
                                  rgb)
    write_png(work / 'before_after.png', before_after_strip(
        list(zip(val_rgb, labels_before, labels_after)), spec.class_set))
    if (work / 'train' / 'curves.png').is_file():
        shutil.copyfile(work / 'train' / 'curves.png', work / 'curves.png')
    report['seconds'] = {'pseudo_labels': round(t_labels, 1),
                         'total': round(time.perf_counter() - t_start, 1)}
    write_report(work, report)
    work.rename(out)
    syn = report['synthetic']
    print(f'adapted on {n_train} frames (+{n_syn} synthetic), {summary["iterations"]} '
          f'iterations: held-out bag mIoU vs. pseudo-labels {val_before or 0:.3f} -> '
          f'{report["validation"]["after_miou"] or 0:.3f}; synthetic mIoU '
          f'{syn["before"]["miou"] or 0:.3f} -> {syn["after"]["miou"] or 0:.3f}; '
          f'model {out / "model.pt"}', flush=True)
