"""`seg_perception prune`: remove channels of a U-Net checkpoint by importance, for fine-tuning.

Writes a checkpoint + sidecar whose architecture is `unet_small` with explicit `widths`, and
prints the parameters kept and the label agreement with the unpruned model on synthetic frames
(before fine-tuning it is low). Fine-tune it with `seg_perception train --init OUT.pt ...`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from seg_perception.segmentation.export import compare, load_torch_module, parity_batches
from seg_perception.segmentation.model_spec import save_checkpoint
from seg_perception.segmentation.pruning import prune_unet
from seg_perception.segmentation.torchscript_backend import TorchSegmenter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the pruning options to `parser`."""
    parser.add_argument('model', help="'default' or a unet_small .pt checkpoint")
    parser.add_argument('--keep', type=float, default=0.75,
                        help="share of each level's channels kept, in (0, 1]")
    parser.add_argument('--out', type=Path, required=True, help='checkpoint to write (.pt)')


def main(args: argparse.Namespace) -> int:
    """Prune, save and report; raise (one line via the CLI) on failure."""
    if args.out.suffix not in ('.pt', '.pth'):
        raise ValueError(f'--out must end in .pt, got {str(args.out)!r}')
    module, spec = load_torch_module(args.model, None)
    pruned = prune_unet(module, keep=args.keep)
    kwargs = {k: v for k, v in spec.arch_kwargs.items() if k not in ('base_width', 'levels')}
    pruned_spec = replace(spec, arch_kwargs={**kwargs, 'widths': list(pruned.widths)},
                          model_name=f'{spec.model_name}_pruned{int(args.keep * 100)}')
    before = sum(p.numel() for p in module.parameters())
    after = sum(p.numel() for p in pruned.parameters())
    cpu = torch.device('cpu')
    parity = compare(TorchSegmenter(module, device=cpu), TorchSegmenter(pruned, device=cpu),
                     parity_batches(spec, synthetic=8, noise=0))
    save_checkpoint(args.out, pruned, pruned_spec, extra={'pruned_from': args.model,
                                                          'keep': args.keep})
    print(f'wrote {args.out}: widths {list(pruned.widths)}, {after / 1e6:.2f} M of '
          f'{before / 1e6:.2f} M parameters; labels agree with the unpruned model on '
          f'{parity.label_agreement:.1%} of the pixels before fine-tuning')
    return 0
