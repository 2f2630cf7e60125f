"""The `seg_perception` command line: one entry point, one module per subcommand.

Each subcommand module defines `add_arguments(parser)` and `main(args) -> int`; modules are
imported only when their subcommand runs, so `seg_perception --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from typing import Sequence

#: subcommand -> (module, one-line help). Nested groups use a space: 'bench grasp'.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    'train': ('seg_perception.training.cli', 'train or fine-tune a segmentation model'),
    'evaluate': ('seg_perception.evaluation.cli', 'evaluate a model (IoU, mIoU, latency)'),
    'adapt': ('seg_perception.adaptation.cli',
              'adapt a model to your own cell from an unlabelled RGB-D bag (pseudo-labels)'),
    'bench segmentation': ('seg_perception.bench.segmentation_bench',
                           'benchmark the model alone and the segmentation node through ROS'),
    'bench grasp': ('seg_perception.bench.grasp_bench',
                    'benchmark back-projection, fusion and candidates vs. Open3D'),
    'bench synthetic': ('seg_perception.bench.synthetic_bench',
                        'benchmark the synthetic cell generator (frames/s)'),
    'bag write-synthetic': ('seg_perception.bag.synthetic_to_bag',
                            'write synthetic cell frames with ground truth into a rosbag2'),
    'export': ('seg_perception.segmentation.export_cli',
               'export a model to ONNX or TorchScript (checked against PyTorch)'),
    'quantize': ('seg_perception.segmentation.quantize_cli',
                 'INT8 post-training quantisation (OpenVINO/NNCF or ONNX Runtime)'),
    'import-pretrained': ('seg_perception.segmentation.pretrained_import_cli',
                          'a MobileNetV2 U-Net checkpoint with a pretrained (ONNX) encoder'),
    'prune': ('seg_perception.segmentation.prune_cli',
              'structured channel pruning of a U-Net checkpoint (then fine-tune it)'),
    'bench refine': ('seg_perception.bench.refine_bench',
                     'boundary F-score and time of each refine postprocess (CRF, guided)'),
    'bench backends': ('seg_perception.bench.backends_bench',
                       'the same frames through every installed runtime and precision'),
    'demo': ('seg_perception.demo', 'run the whole pipeline on the synthetic cell'),
    'doctor': ('seg_perception.doctor', 'check the ROS 2 transport set-up for camera images '
               '(RMW, Fast DDS profile, socket buffers; --topic: a live topic)'),
}


class CliError(RuntimeError):
    """An error a CLI reports as one line and a non-zero exit status."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='seg_perception', description=__doc__.splitlines()[0])
    top = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (module, help_text) in SUBCOMMANDS.items():
        head, _, tail = name.partition(' ')
        if tail:
            if head not in groups:
                group_parser = top.add_parser(head, help=f'{head} subcommands')
                groups[head] = group_parser.add_subparsers(dest='subcommand', metavar='SUBCOMMAND',
                                                           required=True)
            sub = groups[head].add_parser(tail, help=help_text, description=help_text)
        else:
            sub = top.add_parser(head, help=help_text, description=help_text)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; print a one-line reason and return non-zero on failure."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    # Parse once to find the subcommand (help flags held back, so the subcommand's help lists its
    # own options), then let its module add its arguments and parse again.
    first_pass = [a for a in argv if a not in ('-h', '--help')]
    if len(first_pass) < len(argv) and not _names_leaf(first_pass):
        parser.parse_args(argv)  # help of the top level or a group: prints and exits
    known, _ = parser.parse_known_args(first_pass)
    module = importlib.import_module(known._module)
    parser = _build_parser()
    for action in parser._subparsers._group_actions:  # attach module arguments to the leaf
        _attach(action, argv, module)
    args = parser.parse_args(argv)
    args.command_line = 'seg_perception ' + shlex.join(argv)  # as typed, for sidecars/reports
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print('seg_perception: interrupted', file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: B902 - one line for users; SEG_PERCEPTION_DEBUG=1 for all
        if os.environ.get('SEG_PERCEPTION_DEBUG'):
            raise
        print(f'seg_perception {known.command}: error: {exc}', file=sys.stderr)
        return 1


def _names_leaf(argv: list[str]) -> bool:
    """Return True when argv names a complete subcommand (e.g. 'bench grasp')."""
    words = [a for a in argv if not a.startswith('-')]
    return any(' '.join(words[:len(name.split())]) == name for name in SUBCOMMANDS)


def _attach(action: argparse._SubParsersAction, argv: list[str], module) -> None:
    """Add the module's arguments to the leaf parser named by argv."""
    for token in argv:
        if token in action.choices:
            leaf = action.choices[token]
            nested = [a for a in leaf._actions if isinstance(a, argparse._SubParsersAction)]
            if nested:
                _attach(nested[0], argv[argv.index(token) + 1:], module)
            else:
                module.add_arguments(leaf)
            return


if __name__ == '__main__':
    sys.exit(main())
