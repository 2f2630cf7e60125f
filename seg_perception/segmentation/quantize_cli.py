"""`seg_perception quantize`: INT8 post-training quantisation calibrated on synthetic frames.

`--out model.xml` writes an OpenVINO IR quantised by NNCF; `--out model.onnx` an ONNX QDQ graph
from ONNX Runtime's static quantisation. The INT8 model is checked against fp32 on separate
frames and written only when its labels agree on at least --min-agreement of the pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seg_perception.segmentation.export_cli import parse_hw
from seg_perception.segmentation.quantize import CALIBRATIONS, quantize_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the quantisation options to `parser`."""
    parser.add_argument('model', help="a shipped model ('default', 'pretrained_mnv2'), a "
                                      'registry name, a .pt checkpoint or an fp32 .onnx file '
                                      'with its sidecar')
    parser.add_argument('--calibration', choices=CALIBRATIONS, default='synthetic',
                        help='where calibration frames come from (synthetic cell, training '
                             'seeds; no labels needed)')
    parser.add_argument('--frames', type=int, default=64, help='calibration frames')
    parser.add_argument('--check-frames', type=int, default=50,
                        help='frames the INT8 labels are compared with fp32 on')
    parser.add_argument('--min-agreement', type=float, default=0.99,
                        help='least share of pixels with the fp32 label (else nothing is '
                             'written)')
    parser.add_argument('--input-size', type=parse_hw, default=None, metavar='HxW',
                        help="network input size (default: the model's)")
    parser.add_argument('--spec', type=Path, default=None,
                        help='sidecar JSON when it is not beside the model')
    parser.add_argument('--out', type=Path, required=True,
                        help='.xml (OpenVINO, NNCF) or .onnx (ONNX Runtime QDQ)')


def main(args: argparse.Namespace) -> int:
    """Quantise, check and report; raise (one line via the CLI) on failure."""
    if not 0.0 < args.min_agreement <= 1.0:
        raise ValueError(f'--min-agreement must be in (0, 1], got {args.min_agreement}')
    path, parity = quantize_model(args.model, out=args.out, calibration=args.calibration,
                                  frames=args.frames, spec_path=args.spec,
                                  input_size=args.input_size, check_frames=args.check_frames,
                                  min_agreement=args.min_agreement,
                                  progress=lambda text: print(text, flush=True))
    print(f'wrote {path} and {path.with_suffix(".json").name}')
    print(f'INT8 vs fp32 on {parity.frames} frames: labels agree on '
          f'{parity.label_agreement:.3%} of the pixels, max |logit difference| '
          f'{parity.max_abs_logit_diff:.3g}')
    return 0
