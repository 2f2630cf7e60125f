"""`seg_perception import-pretrained`: a MobileNetV2 U-Net checkpoint with a pretrained encoder.

Reads the encoder of the TF-Hub DeepLabV3 MobileNetV2 0.5 (ONNX), checks it against
onnxruntime on one frame, and writes `OUT.pt` + sidecar (arch `unet_mobilenetv2`, random
decoder, the package class set) to fine-tune with `seg_perception train --init OUT.pt ...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from seg_perception.classes import ClassSet
from seg_perception.segmentation.model_spec import ModelSpec, save_checkpoint
from seg_perception.segmentation.pretrained_import import load_pretrained_encoder, \
    PRETRAINED_MEAN, PRETRAINED_STD, PretrainedImportError, stride8_parity
from seg_perception.segmentation.registry import build_model

#: largest stride-8 feature difference accepted (fp32 rounding only; a misplaced tensor is >> 1)
PARITY_TOLERANCE = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the import options to `parser`."""
    parser.add_argument('--onnx', type=Path, required=True,
                        help='TF-Hub DeepLabV3 MobileNetV2 0.5 as ONNX, e.g. ../shared/data/'
                             'models/deeplabv3_mnv2_voc/deeplab_v3_1_default_1.onnx')
    parser.add_argument('--classes', default=None, metavar='YAML',
                        help='class set YAML (default: the package class set)')
    parser.add_argument('--input-size', default='240x320', metavar='HxW',
                        help='network input size stored in the sidecar')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random decoder')
    parser.add_argument('--out', type=Path, required=True, help='checkpoint to write (.pt)')


def main(args: argparse.Namespace) -> int:
    """Import, check and save; raise (one line via the CLI) on failure."""
    from seg_perception.training.cli import parse_size
    if args.out.suffix not in ('.pt', '.pth'):
        raise ValueError(f'--out must end in .pt, got {str(args.out)!r}')
    size = parse_size(args.input_size)
    class_set = ClassSet.from_yaml(args.classes) if args.classes else ClassSet.default()
    torch.manual_seed(args.seed)
    spec = ModelSpec(arch='unet_mobilenetv2', class_set=class_set, input_size=size,
                     mean=PRETRAINED_MEAN, std=PRETRAINED_STD, model_name=args.out.stem)
    model = build_model(spec.arch, num_classes=spec.num_classes).eval()
    tensors = load_pretrained_encoder(model, args.onnx)
    frame = np.random.default_rng(args.seed).integers(0, 256, (257, 257, 3), dtype=np.uint8)
    error = stride8_parity(model, args.onnx, frame)
    if error > PARITY_TOLERANCE:
        raise PretrainedImportError(f'imported encoder differs from {str(args.onnx)!r} by '
                                    f'{error:.3g} at stride 8 (> {PARITY_TOLERANCE})')
    save_checkpoint(args.out, model, spec, extra={'pretrained_encoder': str(args.onnx),
                                                  'stride8_parity_max_abs': error})
    print(f'wrote {args.out}: {tensors} encoder tensors from {args.onnx} (stride-8 features '
          f'match onnxruntime to {error:.2g}); decoder random, fine-tune with '
          f'seg_perception train --init {args.out}')
    return 0
