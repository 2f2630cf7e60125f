"""`seg_perception train`: train or fine-tune a segmentation model.

For instance (docs/training.md has the command that made the shipped model)::

  seg_perception train --arch unet_small --data synthetic --iterations 6000 --batch-size 8 \
      --input-size 240x320 --out build/train/default
  seg_perception train --data folder:my_images --init default --iterations 2000 --out build/ft
  seg_perception train --data bag:my_bag --image-topic /cam/image_raw \
      --label-topic /cam/labels --init default --out build/ft_bag
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
import os
from pathlib import Path
import shlex
import sys
import time
from typing import Any

import torch
from torch.utils.data import Subset

from seg_perception.classes import ClassSet
from seg_perception.segmentation.model_spec import load_checkpoint, model_file, \
    ModelSpec
from seg_perception.segmentation.registry import ARCHITECTURES, build_model
from seg_perception.training import datasets as ds
from seg_perception.training import distributed
from seg_perception.training.augment import AugmentConfig, NO_AUGMENT
from seg_perception.training.losses import class_weights_from_counts
from seg_perception.training.trainer import load_matching_weights, PRECISIONS, SCHEDULES, \
    STATE_FILE, TrainConfig, Trainer, unmatched_prefix


class TrainCliError(ValueError):
    """Raised for command-line values that cannot work together."""


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'HxW' (e.g. 240x320) into (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be HEIGHTxWIDTH, e.g. 240x320; got '
                                         f'{text!r}') from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f'size must be at least 8x8, got {text!r}')
    return h, w


def _parse_arch_arg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'--arch-arg must be KEY=VALUE, got {text!r}')
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the train subcommand's options."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    m = parser.add_argument_group('model')
    m.add_argument('--arch', choices=ARCHITECTURES, default='unet_small')
    m.add_argument('--arch-arg', action='append', type=_parse_arch_arg, default=[],
                   metavar='KEY=VALUE', help='constructor argument, e.g. base_width=16')
    m.add_argument('--weights', default=None,
                   help="initial weights for --arch: 'DEFAULT' (torchvision pretrained) or a "
                        'state_dict path')
    m.add_argument('--init', default=None, metavar='CHECKPOINT',
                   help='fine-tune from a checkpoint (.pt with .json sidecar) or a shipped model '
                        "('default', 'pretrained_mnv2'); "
                        'its arch, input size and normalisation are used; layers whose shape '
                        'differs (a new class set) are re-initialised')
    m.add_argument('--freeze', action='append', default=[], metavar='PREFIX',
                   help='keep the parameters whose names start with PREFIX as initialised '
                        "(repeatable; e.g. 'encoder.' for an encoder pretrained on photographs)")
    m.add_argument('--classes', default=None, metavar='YAML',
                   help='class set YAML (default: the package class set, or the --init one)')
    m.add_argument('--input-size', type=parse_size, default=None, metavar='HxW',
                   help='network input size (default 240x320, or that of --init)')
    m.add_argument('--model-name', default=None, help='name stored in the sidecar')
    d = parser.add_argument_group('data')
    d.add_argument('--data', default='synthetic',
                   help="'synthetic', 'folder:PATH' (images/ + masks/) or 'bag:PATH'")
    d.add_argument('--image-topic', default=None, help='bag: sensor_msgs/Image colour topic')
    d.add_argument('--label-topic', default=None, help='bag: mono8 label image topic')
    d.add_argument('--stamp-tolerance-ms', type=float, default=0.0,
                   help='bag: max header stamp difference of an image/label pair')
    d.add_argument('--train-frames', type=int, default=2000,
                   help='synthetic: training seeds 0..N-1')
    d.add_argument('--val-frames', type=int, default=100,
                   help=f'synthetic: validation seeds from {ds.VAL_SEED_START} on')
    d.add_argument('--render-size', type=parse_size, default=None, metavar='HxW',
                   help='synthetic: render at this size, then resize to --input-size '
                        '(default: render at the input size)')
    d.add_argument('--no-cache', action='store_true',
                   help='synthetic: render every sample on the fly instead of caching the pool')
    d.add_argument('--cache-dir', type=Path, default=Path('build/cache'),
                   help='synthetic: where the rendered pool is cached as .npz')
    d.add_argument('--val-fraction', type=float, default=0.1,
                   help='folder/bag: fraction held out for validation')
    t = parser.add_argument_group('optimisation')
    t.add_argument('--iterations', type=int, default=6000)
    t.add_argument('--time-budget-min', type=float, default=None,
                   help='stop after this many minutes of training steps; the LR decay follows '
                        'whichever of iterations and time is further along')
    t.add_argument('--batch-size', type=int, default=8)
    t.add_argument('--lr', type=float, default=3e-3)
    t.add_argument('--weight-decay', type=float, default=1e-4)
    t.add_argument('--schedule', choices=SCHEDULES, default='poly')
    t.add_argument('--warmup', type=int, default=200, help='warm-up iterations')
    t.add_argument('--val-every', type=int, default=500)
    t.add_argument('--log-every', type=int, default=50)
    t.add_argument('--class-weights', choices=('none', 'auto'), default='none',
                   help='auto: weights from the training pixel frequencies')
    t.add_argument('--dice-weight', type=float, default=0.5)
    t.add_argument('--no-augment', action='store_true')
    t.add_argument('--scale-range', type=float, nargs=2, default=(0.75, 1.5),
                   metavar=('MIN', 'MAX'), help='random zoom range')
    t.add_argument('--crop', type=parse_size, default=None, metavar='HxW',
                   help='train on random HxW windows of the input-size frames (same pixel '
                        'scale; more varied batches per second); validation uses whole frames')
    t.add_argument('--precision', choices=PRECISIONS, default='auto',
                   help='autocast for training: auto = bf16 on GPUs and on CPUs with native '
                        'bf16, fp32 otherwise')
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    t.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', 'cuda:1'")
    o = parser.add_argument_group('output')
    o.add_argument('--out', type=Path, required=True, help='output folder')
    o.add_argument('--resume', action='store_true',
                   help=f'continue from OUT/{STATE_FILE}')


def _init_model(args: argparse.Namespace) -> tuple[torch.nn.Module, ModelSpec, list[str]]:
    """Return the model, its spec and the parameter names not taken from --init."""
    base_spec = None
    base_model = None
    if args.init:
        path = model_file(args.init)
        base_model, base_spec = load_checkpoint(path)
    class_set = ClassSet.from_yaml(args.classes) if args.classes else (
        base_spec.class_set if base_spec else ClassSet.default())
    arch = base_spec.arch if base_spec else args.arch
    arch_kwargs = dict(base_spec.arch_kwargs) if base_spec else {}
    arch_kwargs.update(dict(args.arch_arg))
    input_size = args.input_size or (base_spec.input_size if base_spec else (240, 320))
    spec_kwargs: dict[str, Any] = {}
    if base_spec:
        spec_kwargs = {'mean': base_spec.mean, 'std': base_spec.std}
    spec = ModelSpec(arch=arch, class_set=class_set, input_size=input_size,
                     model_name=args.model_name or args.out.name, arch_kwargs=arch_kwargs,
                     **spec_kwargs)
    model = build_model(arch, num_classes=spec.num_classes,
                        weights=None if base_model else args.weights, **arch_kwargs)
    skipped: list[str] = []
    if base_model is not None:
        skipped = load_matching_weights(model, base_model.state_dict())
    return model, spec, skipped


def _datasets(args: argparse.Namespace, spec: ModelSpec):
    size = spec.input_size
    kind, _, target = args.data.partition(':')
    if kind == 'synthetic':
        if args.train_frames < 1 or args.val_frames < 0:
            raise TrainCliError('--train-frames must be >= 1 and --val-frames >= 0')
        if args.train_frames > ds.VAL_SEED_START:
            raise TrainCliError(f'--train-frames {args.train_frames} would overlap the '
                                f'validation seeds (from {ds.VAL_SEED_START})')
        train = ds.SyntheticDataset(range(args.train_frames), size=size,
                                    render_size=args.render_size, cache=not args.no_cache)
        val = ds.SyntheticDataset(range(ds.VAL_SEED_START, ds.VAL_SEED_START + args.val_frames),
                                  size=size, render_size=args.render_size, cache=True,
                                  what='validation') if args.val_frames else None
        return train, val
    if kind == 'folder':
        full = ds.ImageFolderDataset(target, size=size, class_set=spec.class_set)
    elif kind == 'bag':
        if not args.image_topic or not args.label_topic:
            raise TrainCliError('--data bag:PATH needs --image-topic and --label-topic')
        full = ds.BagDataset(target, image_topic=args.image_topic, label_topic=args.label_topic,
                             size=size, tolerance_ns=int(args.stamp_tolerance_ms * 1e6))
    else:
        raise TrainCliError(f"--data must be 'synthetic', 'folder:PATH' or 'bag:PATH', got "
                            f'{args.data!r}')
    if not target:
        raise TrainCliError(f'--data {args.data!r} needs a path after the colon')
    if len(full) < 2:
        return full, None
    train_idx, val_idx = ds.split_indices(len(full), val_fraction=args.val_fraction,
                                          seed=args.seed)
    return Subset(full, train_idx), Subset(full, val_idx)


def _prerender(dataset: Any, name: str, cache_dir: Path) -> None:
    if not isinstance(dataset, ds.SyntheticDataset) or not dataset.cache:
        return
    step = max(1, len(dataset) // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            print(f'rendering {name} pool: {done}/{total}', flush=True)

    seconds = dataset.prerender(cache_dir=cache_dir, progress=progress,
                                workers=max(1, os.cpu_count() or 1))
    print(f'{name} pool ready: {len(dataset)} frames in {seconds:.1f} s', flush=True)


def main(args: argparse.Namespace) -> int:
    """Run the train subcommand."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    command = getattr(args, 'command_line', None) or shlex.join(sys.argv)
    model, spec, skipped = _init_model(args)
    if args.init:
        print(f'initialised from {args.init}; re-initialised {len(skipped)} tensors'
              f'{": " + ", ".join(skipped[:6]) if skipped else ""}', flush=True)
    missing = unmatched_prefix(model, args.freeze)  # said before the pools are rendered
    if missing is not None:
        tops = ', '.join(sorted({name.split('.')[0] + '.'
                                 for name, _ in model.named_parameters()}))
        raise TrainCliError(f'--freeze {missing!r} names no parameter of {spec.arch} '
                            f'(its parameters start with {tops})')
    if args.crop and (args.crop[0] > spec.input_size[0] or args.crop[1] > spec.input_size[1]):
        raise TrainCliError(f'--crop {args.crop[0]}x{args.crop[1]} is larger than the input size '
                            f'{spec.input_size[0]}x{spec.input_size[1]}')
    train_data, val_data = _datasets(args, spec)
    t0 = time.perf_counter()
    # Under torchrun rank 0 renders and caches the pools first; the others then load the cache.
    context = distributed.setup(args.device)
    for turn in (True, False):
        if context.is_main == turn:
            _prerender(train_data, 'training', args.cache_dir)
            if val_data is not None:
                _prerender(val_data, 'validation', args.cache_dir)
        context.barrier()
    prerender_s = time.perf_counter() - t0
    weights = None
    if args.class_weights == 'auto':
        counts = ds.class_pixel_counts(train_data, num_classes=spec.num_classes)
        weights = class_weights_from_counts(counts)
        print('class weights: ' + ', '.join(f'{w:.2f}' for w in weights.tolist()), flush=True)
    augment = replace(NO_AUGMENT if args.no_augment else AugmentConfig(
        scale_range=tuple(args.scale_range)), crop_size=args.crop)
    config = TrainConfig(iterations=args.iterations, batch_size=args.batch_size, lr=args.lr,
                         weight_decay=args.weight_decay, schedule=args.schedule,
                         warmup_iterations=args.warmup, val_every=args.val_every,
                         log_every=args.log_every, seed=args.seed, threads=args.threads,
                         device=args.device, dice_weight=args.dice_weight, augment=augment,
                         precision=args.precision, frozen_prefixes=tuple(args.freeze),
                         time_budget_s=None if args.time_budget_min is None
                         else args.time_budget_min * 60.0)
    extra = {'command': command, 'data': args.data, 'init': args.init, 'frozen': args.freeze,
             'class_weights': None if weights is None else weights.tolist(),
             'prerender_seconds': round(prerender_s, 1)}
    if args.data == 'synthetic':
        extra['train_seeds'] = [0, args.train_frames - 1]
        extra['val_seeds'] = [ds.VAL_SEED_START, ds.VAL_SEED_START + args.val_frames - 1]
        extra['render_size'] = list(args.render_size or spec.input_size)
    trainer = Trainer(model=model, spec=spec, config=config, train_data=train_data,
                      val_data=val_data, out_dir=args.out, class_weights=weights, extra=extra)
    if args.resume:
        trainer.resume()
    summary = trainer.fit()
    if context.is_main:
        print(f'done: {summary["iterations"]} iterations in {summary["train_seconds"]:.0f} s, '
              f'best val mIoU {summary["best_val_miou"]:.4f}; checkpoint '
              f'{args.out / "best.pt"}', flush=True)
    distributed.teardown()
    return 0
