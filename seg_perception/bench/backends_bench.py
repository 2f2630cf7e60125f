"""`seg_perception bench backends`: the same frames through every installed runtime and precision.

Variants: torch fp32 (the reference, as the engine runs it: channels-last), torch bf16 (CPUs
with native bf16 only), torch compiled (--compile), onnxruntime fp32 / int8, openvino fp32 /
int8, and a pruned checkpoint in each runtime (--pruned). INT8 models are made here with
`seg_perception quantize` (calibrated on synthetic training seeds) and kept in
build/bench/models/. Every held-out synthetic frame goes through every variant
in turn (the order rotates per frame, so drift and cache effects fall on all alike); each variant
is timed on the network alone (`inference_ms` of the engine) and on the whole frame, and scored
against the ground truth (mIoU) and against the torch fp32 labels (agreement).

Writes build/bench/backends.json with, per variant, `speedup_vs_torch_fp32` (network p50 ratio),
`frame_speedup_vs_torch_fp32`, `miou_delta` and `label_agreement`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
from pathlib import Path
import platform
import time
from typing import Any

import numpy as np
import torch

from seg_perception.bench.segmentation_bench import cpu_model
from seg_perception.bench.segmentation_model import latency_stats
from seg_perception.evaluation.metrics import SegmentationScores
from seg_perception.evaluation.offline import EVAL_SEED_START
from seg_perception.segmentation import backends
from seg_perception.segmentation.device import cpu_has_native_bf16
from seg_perception.segmentation.export_cli import parse_hw

REFERENCE = 'torch_fp32'
VARIANTS = ('torch_fp32', 'torch_bf16', 'torch_compiled', 'onnxruntime_fp32',
            'onnxruntime_int8', 'openvino_fp32', 'openvino_int8', 'torch_pruned',
            'onnxruntime_pruned', 'openvino_pruned')


@dataclass
class Variant:
    """One runtime/precision under test and what was measured for it."""

    name: str
    engine: Any
    network_ms: list[float]
    frame_ms: list[float]
    scores: SegmentationScores
    agree_pixels: int = 0
    total_pixels: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark options to `parser`."""
    parser.add_argument('--model', default='default', help='a torch model (default, .pt, name)')
    parser.add_argument('--frames', type=int, default=100, help='held-out synthetic frames')
    parser.add_argument('--frame-size', type=parse_hw, default=(480, 640), metavar='HxW')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads of every runtime')
    parser.add_argument('--warmup', type=int, default=5, help='untimed frames per variant')
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile (minutes of compilation on 2 cores)')
    parser.add_argument('--pruned', default=None, metavar='CHECKPOINT',
                        help='a pruned, fine-tuned checkpoint of the model (seg_perception '
                             'prune, then train --init) for the *_pruned variants')
    parser.add_argument('--variants', default=','.join(VARIANTS),
                        help=f'comma-separated subset of {",".join(VARIANTS)}')
    parser.add_argument('--models-dir', type=Path, default=Path('build/bench/models'),
                        help='where the INT8 models are made and kept')
    parser.add_argument('--output', type=Path, default=Path('build/bench/backends.json'))


def _int8_model(args: argparse.Namespace, suffix: str, say) -> str:
    """Return the INT8 model for `suffix` (.xml/.onnx), quantising it when not made yet.

    A cached one is reused only when it was made from the same model file (SHA-256 in its
    sidecar): after a retrain the name 'default' stands for other weights.
    """
    from seg_perception.segmentation.quantize import quantize_model, source_digest
    # One stem per runtime: a quantised file's sidecar is <stem>.json, so an IR and an ONNX
    # model of the same stem would share (and overwrite) one sidecar.
    out = args.models_dir / f'{Path(args.model).stem}_int8_{suffix[1:]}{suffix}'
    side = out.with_suffix('.json')
    if out.is_file() and side.is_file():
        export = json.loads(side.read_text(encoding='utf-8')).get('export', {})
        if (export.get('source') == args.model
                and export.get('source_sha256') == source_digest(args.model)):
            return str(out)
    say(f'quantising {args.model} -> {out}')
    quantize_model(args.model, out=out, frames=64, check_frames=16, min_agreement=0.95)
    return str(out)


def _build(args: argparse.Namespace, skipped: dict[str, str], say) -> dict[str, Any]:
    """Return {variant: engine} for the variants asked for that can run here."""
    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine
    wanted = [v.strip() for v in args.variants.split(',') if v.strip()]
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown or REFERENCE not in wanted:
        raise ValueError(f'--variants must include {REFERENCE} and name only {VARIANTS}; '
                         f'got {wanted}')
    engines: dict[str, Any] = {}
    for name in wanted:
        runtime, precision = name.rsplit('_', 1)
        if runtime == 'torch' and precision == 'bf16' and not cpu_has_native_bf16():
            skipped[name] = 'this CPU has no native bf16 (AVX512-BF16/AMX)'
            continue
        if precision == 'compiled' and not args.compile:
            skipped[name] = 'pass --compile (compilation takes minutes on 2 cores)'
            continue
        if precision == 'pruned' and not args.pruned:
            skipped[name] = 'pass --pruned CHECKPOINT'
            continue
        if not backends.is_installed(runtime):
            skipped[name] = f'{backends.PACKAGES[runtime]} is not installed'
            continue
        model = args.model
        if precision == 'int8':
            model = _int8_model(args, '.xml' if runtime == 'openvino' else '.onnx', say)
        elif precision == 'pruned':
            model = args.pruned
        say(f'loading {name}')
        engines[name] = SegmentationEngine(EngineConfig(
            model=model, device='cpu', backend=runtime, warmup_iterations=2,
            precision='bf16' if precision == 'bf16' else 'fp32',
            compile=precision == 'compiled'))
    return engines


def measure(args: argparse.Namespace, say=print) -> dict[str, Any]:
    """Run the benchmark and return the report (see the module docstring)."""
    from seg_perception.synthetic import SyntheticCell, SyntheticConfig
    if args.frames < 1 or args.warmup < 0 or args.threads < 1:
        raise ValueError('--frames and --threads must be >= 1, --warmup >= 0')
    torch.set_num_threads(args.threads)
    skipped: dict[str, str] = {}
    engines = _build(args, skipped, say)
    spec = engines[REFERENCE].spec
    names = [c.name for c in spec.class_set]
    by_id = {c.id: c.name for c in spec.class_set}
    variants = {n: Variant(n, e, [], [], SegmentationScores(
        num_classes=spec.num_classes,
        class_names=[by_id.get(i, f'id{i}') for i in range(spec.num_classes)]))
        for n, e in engines.items()}
    h, w = args.frame_size
    cell = SyntheticCell(SyntheticConfig(width=w, height=h))
    order = list(variants)
    from tqdm import tqdm
    for i in tqdm(range(args.warmup + args.frames), desc='frames', unit='frame'):
        frame = cell.render(seed=EVAL_SEED_START + i)
        labels = {}
        shift = i % len(order)
        for name in order[shift:] + order[:shift]:
            v = variants[name]
            t0 = time.perf_counter()
            result = v.engine.segment([frame.rgb])[0]
            elapsed_ms = (time.perf_counter() - t0) * 1e3
            labels[name] = result.labels
            if i >= args.warmup:
                v.frame_ms.append(elapsed_ms)
                v.network_ms.append(result.inference_ms)
                v.scores.update(frame.labels, result.labels)
        if i >= args.warmup:
            for name, v in variants.items():
                v.agree_pixels += int(np.count_nonzero(labels[name] == labels[REFERENCE]))
                v.total_pixels += labels[name].size
    return _report(args, variants, skipped, names)


def _report(args: argparse.Namespace, variants: dict[str, Variant], skipped: dict[str, str],
            names: list[str]) -> dict[str, Any]:
    ref = variants[REFERENCE]
    ref_net = float(np.percentile(ref.network_ms, 50))
    ref_frame = float(np.percentile(ref.frame_ms, 50))
    ref_miou = ref.scores.summary()['miou']
    rows = {}
    for name, v in variants.items():
        net = latency_stats(v.network_ms, frames_per_call=1)
        frame = latency_stats(v.frame_ms, frames_per_call=1)
        miou = v.scores.summary()['miou']
        rows[name] = {
            'backend': v.engine.backend,
            'model': v.engine.config.model,
            'network_ms_p50': round(net['p50_ms'], 2), 'network_ms_p95': round(net['p95_ms'], 2),
            'frame_ms_p50': round(frame['p50_ms'], 2), 'frame_ms_p95': round(frame['p95_ms'], 2),
            'frames_per_s': round(frame['frames_per_s'], 2),
            'speedup_vs_torch_fp32': round(ref_net / net['p50_ms'], 3),
            'frame_speedup_vs_torch_fp32': round(ref_frame / frame['p50_ms'], 3),
            'miou': round(miou, 4), 'miou_delta': round(miou - ref_miou, 4),
            'label_agreement': round(v.agree_pixels / max(1, v.total_pixels), 5),
            'notes': list(v.engine.notes),
        }
    best = max(rows, key=lambda n: rows[n]['speedup_vs_torch_fp32']
               if rows[n]['miou_delta'] >= -0.01 else 0.0)
    return {
        'benchmark': 'backends', 'model': args.model, 'frames': args.frames,
        'frame_size_hw': list(args.frame_size), 'threads': args.threads,
        'data': f'held-out synthetic cell frames, seeds {EVAL_SEED_START}+{args.warmup}..',
        'machine': {'cpu': cpu_model(), 'cores': os.cpu_count(),
                    'python': platform.python_version(),
                    'torch': torch.__version__, 'native_bf16': cpu_has_native_bf16(),
                    'load_average': [round(x, 2) for x in os.getloadavg()]},
        'classes': names, 'reference': REFERENCE, 'variants': rows, 'skipped': skipped,
        'best_within_0.01_miou': best,
    }


def format_table(report: dict[str, Any]) -> str:
    """Return the report as a plain-text table."""
    lines = [f"{report['model']} on {report['machine']['cpu']} ({report['threads']} threads), "
             f"{report['frames']} frames {report['frame_size_hw'][0]}x"
             f"{report['frame_size_hw'][1]}",
             f"{'variant':<18}{'net p50':>9}{'net p95':>9}{'frame p50':>11}{'fps':>7}"
             f"{'speedup':>9}{'mIoU':>8}{'dmIoU':>8}{'agree':>9}"]
    for name, r in report['variants'].items():
        lines.append(f"{name:<18}{r['network_ms_p50']:>9.1f}{r['network_ms_p95']:>9.1f}"
                     f"{r['frame_ms_p50']:>11.1f}{r['frames_per_s']:>7.1f}"
                     f"{r['speedup_vs_torch_fp32']:>8.2f}x{r['miou']:>8.3f}"
                     f"{r['miou_delta']:>+8.3f}{r['label_agreement']:>9.2%}")
    for name, why in report['skipped'].items():
        lines.append(f'{name:<18}skipped: {why}')
    lines.append(f"fastest within 0.01 mIoU of torch fp32: {report['best_within_0.01_miou']}")
    return '\n'.join(lines)


def main(args: argparse.Namespace) -> int:
    """Run, print the table and write the JSON report (atomically)."""
    report = measure(args)
    report['command'] = getattr(args, 'command_line', 'seg_perception bench backends')
    print(format_table(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + '.tmp')
    tmp.write_text(json.dumps(report, indent=2) + '\n', encoding='utf-8')
    tmp.replace(args.output)
    print(f'wrote {args.output}')
    return 0
