"""The domain-shift protocol of docs/adaptation.md, as one reproducible command.

1. train a model on style A of the synthetic cell (light totes, diffuse light);
2. write an unlabelled-for-adapt bag of style B (dark bins, hard light, another camera);
3. `seg_perception adapt` the style-A model on that bag (style A mixed in, as its training cell);
4. score item IoU on held-out labelled style-B frames and mIoU on held-out style-A frames,
   before and after. Ground truth is used for scoring only.

  python -m seg_perception.adaptation.protocol --out build/adapt_protocol
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time

import torch

from seg_perception.adaptation.cli import _synthetic_pool
from seg_perception.adaptation.styles import StyledCell
from seg_perception.bag.synthetic_to_bag import topic_names, write_synthetic_bag
from seg_perception.classes import ClassSet
from seg_perception.evaluation.offline import evaluate_synthetic, evaluation_engine
from seg_perception.segmentation.model_spec import load_checkpoint, ModelSpec
from seg_perception.training.augment import AugmentConfig
from seg_perception.training.trainer import TrainConfig, Trainer

#: seeds of the style-B bag: apart from style A's training seeds (0..) and the held-out ones
BAG_SEED_START = 50_000


def score(model_pt: Path, style: str, frames: int) -> dict[str, float]:
    """Return mIoU and item IoU of a checkpoint on held-out frames of a style."""
    model, spec = load_checkpoint(model_pt)
    summary = evaluate_synthetic(evaluation_engine(model, spec), frames=frames,
                                 cell=StyledCell(style, width=640, height=480))
    return {'miou': round(summary['miou'], 4), 'item_iou': round(summary['item_iou'], 4)}


def main(argv: list[str] | None = None) -> int:
    """Run the protocol; print and write OUT/protocol.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('build/adapt_protocol'))
    parser.add_argument('--train-frames', type=int, default=400)
    parser.add_argument('--train-iterations', type=int, default=1500)
    parser.add_argument('--input-size', default='120x160')
    parser.add_argument('--bag-frames', type=int, default=150)
    parser.add_argument('--adapt-iterations', type=int, default=300)
    parser.add_argument('--eval-frames', type=int, default=50)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--adapt-lr', type=float, default=3e-4, help="adapt's peak learning rate")
    parser.add_argument('--synthetic-mix', type=float, default=0.5,
                        help="share of style-A frames in adapt's batches (against forgetting)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    h, w = (int(v) for v in args.input_size.split('x'))
    times: dict[str, float] = {}
    model_a = out / 'style_a' / 'best.pt'
    t0 = time.perf_counter()
    if not model_a.is_file():
        spec = ModelSpec(arch='unet_small', class_set=ClassSet.default(), input_size=(h, w),
                         arch_kwargs={'base_width': 16, 'levels': 4}, model_name='style_a')
        train = _synthetic_pool('light_diffuse', args.train_frames, (h, w), 0, True)
        val = _synthetic_pool('light_diffuse', 40, (h, w), 90_000, True)
        Trainer(model=spec.build(), spec=spec, config=TrainConfig(
            iterations=args.train_iterations, batch_size=8, lr=3e-3, warmup_iterations=100,
            val_every=500, log_every=100, threads=args.threads, device='cpu',
            augment=AugmentConfig()), train_data=train, val_data=val,
            out_dir=out / 'style_a', extra={'command': shlex_join(sys.argv)}).fit()
    times['train_style_a_s'] = round(time.perf_counter() - t0, 1)
    bag = out / 'bag_style_b'
    t0 = time.perf_counter()
    if not bag.exists():
        write_synthetic_bag(bag, frames=args.bag_frames, seed=BAG_SEED_START, rate_hz=10.0,
                            width=640, height=480, style='dark_hard')
    times['write_bag_s'] = round(time.perf_counter() - t0, 1)
    adapted = out / 'adapted'
    t0 = time.perf_counter()
    if not adapted.exists():
        from seg_perception.cli import main as cli_main
        topics = topic_names('camera')
        code = cli_main(['adapt', '--bag', str(bag), '--image-topic', topics['rgb'],
                         '--depth-topic', topics['depth'], '--camera-info-topic',
                         topics['color_info'], '--model', str(model_a), '--iterations',
                         str(args.adapt_iterations), '--val-every', '100', '--warmup', '30',
                         '--lr', str(args.adapt_lr), '--synthetic-style', 'light_diffuse',
                         '--synthetic-mix', str(args.synthetic_mix),
                         '--eval-frames', str(args.eval_frames), '--threads',
                         str(args.threads), '--out', str(adapted)])
        if code:
            return code
    times['adapt_s'] = round(time.perf_counter() - t0, 1)
    result = {'before': {'style_b': score(model_a, 'dark_hard', args.eval_frames),
                         'style_a': score(model_a, 'light_diffuse', args.eval_frames)},
              'after': {'style_b': score(adapted / 'model.pt', 'dark_hard', args.eval_frames),
                        'style_a': score(adapted / 'model.pt', 'light_diffuse',
                                         args.eval_frames)},
              'args': vars(args) | {'out': str(out)}, 'seconds': times}
    result['style_b_item_iou_gain'] = round(result['after']['style_b']['item_iou']
                                            - result['before']['style_b']['item_iou'], 4)
    result['style_a_miou_drop'] = round(result['before']['style_a']['miou']
                                        - result['after']['style_a']['miou'], 4)
    (out / 'protocol.json').write_text(json.dumps(result, indent=2) + '\n', encoding='utf-8')
    print(json.dumps({k: result[k] for k in ('before', 'after', 'style_b_item_iou_gain',
                                             'style_a_miou_drop')}), flush=True)
    return 0


def shlex_join(argv: list[str]) -> str:
    """Return the command line as typed (for the sidecar)."""
    import shlex
    return 'python -m seg_perception.adaptation.protocol ' + shlex.join(argv[1:])


if __name__ == '__main__':
    sys.exit(main())
