"""`seg_perception export`: write a model as ONNX or TorchScript with its sidecar, checked first.

Prints the parity measured against PyTorch (largest logit difference, label agreement) and
writes nothing when the export fails or disagrees (one-line reason, exit 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seg_perception.segmentation.export import export_model, FORMATS
from seg_perception.segmentation.model_spec import parse_input_size


def parse_hw(text: str) -> tuple[int, int]:
    """Return (height, width) from 'HxW' (argparse type; at least 8x8)."""
    try:
        return parse_input_size(text.lower().split('x'), argparse.ArgumentTypeError)
    except (argparse.ArgumentTypeError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f'expected HxW such as 240x320, got {text!r}') from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the export options to `parser`."""
    parser.add_argument('model', help="'default', a registry name or a .pt checkpoint")
    parser.add_argument('--format', choices=tuple(FORMATS), default='onnx', dest='fmt',
                        help='onnx (ONNX Runtime, OpenVINO, TensorRT) or torchscript')
    parser.add_argument('--input-size', type=parse_hw, default=None, metavar='HxW',
                        help="network input size of the exported graph (default: the model's)")
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='a symbolic batch axis (default: batch 1, what nodes run)')
    parser.add_argument('--spec', type=Path, default=None,
                        help='sidecar JSON when it is not beside the checkpoint')
    parser.add_argument('--check-frames', type=int, default=8,
                        help='frames compared against PyTorch (synthetic cell and noise)')
    parser.add_argument('--out', type=Path, required=True,
                        help='file to write (.onnx or .ts); its sidecar goes beside it')


def main(args: argparse.Namespace) -> int:
    """Export, check and report; raise (one line via the CLI) on failure."""
    if args.check_frames < 1:
        raise ValueError(f'--check-frames must be >= 1, got {args.check_frames}')
    path, parity = export_model(args.model, fmt=args.fmt, out=args.out,
                                input_size=args.input_size, dynamic_batch=args.dynamic_batch,
                                spec_path=args.spec, check_frames=args.check_frames)
    print(f'wrote {path} and {path.with_suffix(".json").name}')
    print(f'parity vs PyTorch on {parity.frames} frames: max |logit difference| '
          f'{parity.max_abs_logit_diff:.3g}, labels agree on {parity.label_agreement:.4%} of '
          'the pixels')
    return 0
