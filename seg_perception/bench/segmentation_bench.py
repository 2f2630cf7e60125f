"""`seg_perception bench segmentation`: the model alone vs. segmentation_node through ROS.

One run measures, for one model, resolution and number of cameras:

* model_only: the network on a normalised batch already on the device (the floor), timed in
  this process while the node idles: before the fixed-rate phase, between the phases and after
  the max-rate phase (the driver holds there). Each phase is compared with the mean of the two
  references on either side of it, so the machine's drift between minutes stays out of the ratio;
* engine: `engine.segment()` with the node's default outputs (4 masks + overlay), in process;
* node_fixed_rate / node_max_rate: the real segmentation_node in its own process, fed by
  `seg_perception.nodes.bench_driver` (another process) at `--rate-hz` and then in a closed loop
  as fast as the node consumes; latency = labels receive time - input header stamp.

It prints a table and writes JSON (default build/bench/segmentation.json) with
`overhead_ratio` = node max-rate frames/s / model-only frames/s (the references around the
max-rate phase) and `added_latency_ms` = node p50 latency at the fixed rate - model-only p50 (the
references around the fixed-rate phase). This module imports no rclpy: ROS runs in the processes
that `ros_load` starts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path
import platform
import shlex
import sys
import time
from typing import Any

from seg_perception.bench import ros_load
from seg_perception.bench.ros_load import HOLD_POINTS
from seg_perception.segmentation.backends import BACKENDS

DEFAULT_MASK_CLASSES = ('box', 'polybag', 'envelope', 'cylinder')  # the node's default
TARGET_OVERHEAD_RATIO = 0.90
TARGET_ADDED_LATENCY_MS = 8.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.add_argument('--model', default='default',
                        help="'default' (shipped), a registry name (e.g. unet_small, "
                             'lraspp_mobilenet_v3_large) or a model file')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', 'cuda:N'")
    parser.add_argument('--precision', default='fp16', choices=('fp32', 'fp16', 'bf16'),
                        help='reduced precision on CUDA only (the node default, fp16)')
    parser.add_argument('--backend', default='auto', choices=BACKENDS,
                        help='runtime of the network here and in the node (the node default '
                             "'auto' = the fastest installed one; 'torch' for the PyTorch "
                             'reference)')
    parser.add_argument('--cameras', type=int, default=1,
                        help='cameras fed to one node (their frames are batched)')
    parser.add_argument('--rate-hz', type=float, default=10.0, help='fixed input rate per camera')
    parser.add_argument('--frames', type=int, default=100,
                        help='frames per camera in each node phase (fixed and max rate)')
    parser.add_argument('--model-iterations', type=int, default=50,
                        help='timed calls of the model-only and engine measurements')
    parser.add_argument('--transport', default='shm', choices=(*ros_load.TRANSPORTS, 'both'),
                        help="DDS transport: 'shm' (Fast DDS profile config/fastdds_shm.xml), "
                             "'udp' (Fast DDS defaults), 'both' (shm first, then udp)")
    parser.add_argument('--reliable-camera', action='store_true',
                        help='the driver publishes reliable, as most camera drivers do (default '
                             'best effort); with --transport udp and the node defaults this is '
                             "a stock robot stack's set-up")
    parser.add_argument('--window', type=int, default=2,
                        help='max-rate phase: frames in flight per camera (2 = one processed, '
                             'one waiting)')
    parser.add_argument('--torch-threads', type=int, default=0,
                        help='torch threads here and in the node (0 = torch default)')
    parser.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE',
                        help='extra segmentation_node parameter (repeatable), e.g. '
                             'publish_overlay:=false')
    parser.add_argument('--node-module', default=ros_load.NODE_MODULE,
                        help='node module to run (for experiments on a modified copy)')
    parser.add_argument('--domain-id', type=int, default=0,
                        help='ROS_DOMAIN_ID (0 = a private one derived from the process id)')
    parser.add_argument('--timeout-s', type=float, default=900.0,
                        help='limit for each node run (start-up included)')
    parser.add_argument('--output', type=Path, default=Path('build/bench/segmentation.json'))


def _validate(args: argparse.Namespace) -> None:
    if args.width < 8 or args.height < 8:
        raise ValueError(f'--width/--height must be >= 8, got {args.width}x{args.height}')
    if args.cameras < 1 or args.frames < 1 or args.model_iterations < 1 or args.window < 1:
        raise ValueError('--cameras, --frames, --model-iterations and --window must be >= 1')
    if args.rate_hz <= 0:
        raise ValueError(f'--rate-hz must be > 0, got {args.rate_hz}')
    if args.torch_threads < 0:
        raise ValueError(f'--torch-threads must be >= 0, got {args.torch_threads}')
    for item in args.node_param:
        if ':=' not in item:
            raise ValueError(f'--node-param {item!r} is not NAME:=VALUE')


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.lower().startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def measure_in_process(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Build the engine and time it with the node's outputs; return the figures and the engine.

    The engine then times the model-only references (`measure_node`). Like the node, everything
    runs in the main thread: PyTorch's CPU kernels measured about 35% slower here when called
    from another thread, so the node does its inference in the main thread (and spins ROS in a
    background thread); the reference must do the same.
    """
    import torch

    from seg_perception.segmentation.engine import EngineConfig, SegmentationEngine

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    engine = SegmentationEngine(EngineConfig(model=args.model, device=args.device,
                                             precision=args.precision, warmup_iterations=2,
                                             backend=args.backend))
    box: dict[str, Any] = dict(_measure(args, engine))
    device = engine.device
    box['context'] = {
        'device': str(device),
        'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda'
        else cpu_model(),
        'torch_threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'model_name': engine.model_name,
        'backend': engine.backend,
        'backend_timings_ms': dict(engine.backend_timings_ms),
        'network_input_hw': list(engine.input_size),
        'engine_notes': list(engine.notes),
    }
    return box, engine


def measure_model_reference(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    """Time the network alone (model-only) with the benchmark's frame size and cameras."""
    from seg_perception.bench.segmentation_model import measure_model_only

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    model_only = measure_model_only(engine, width=args.width, height=args.height,
                                    cameras=args.cameras, iterations=args.model_iterations,
                                    warmup=min(5, args.model_iterations))
    wall_s = time.perf_counter() - wall_start
    model_only['fps'] = model_only['frames_per_s']
    model_only['cores_used'] = (time.process_time() - cpu_start) / wall_s
    return model_only


def combine_references(*references: dict[str, Any]) -> dict[str, Any]:
    """Return the mean of model-only references timed at different moments.

    On a shared virtual machine the same network's speed drifts by up to ~25 % between minutes;
    timing it on both sides of a node phase keeps that drift out of the ratios.
    """
    if not references:
        raise ValueError('no model-only reference to combine')
    keys = ('p50_ms', 'p95_ms', 'p99_ms', 'mean_ms', 'fps', 'frames_per_s')
    combined = {k: v for k, v in references[0].items() if k not in keys}
    keys += tuple(k for k in ('cores_used',) if all(k in r for r in references))
    combined.update({k: sum(r[k] for r in references) / len(references) for k in keys})
    combined['kind'] = f'model_only_mean_of_{len(references)}'
    p50s = [r['p50_ms'] for r in references]
    combined['spread_p50_ms'] = max(p50s) - min(p50s)
    return combined


def _measure(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    """Time engine.segment() with the node's default outputs (warms the engine up, too)."""
    from seg_perception.bench.segmentation_model import measure_engine

    names = {c.name for c in engine.class_set}
    mask_ids = tuple(engine.class_set.by_name(n).id for n in DEFAULT_MASK_CLASSES if n in names)
    warmup = min(5, args.model_iterations)
    full = measure_engine(engine, width=args.width, height=args.height, cameras=args.cameras,
                          iterations=args.model_iterations, warmup=warmup, masks_for=mask_ids,
                          overlay=True)
    full['fps'] = full['frames_per_s']
    return {'engine': full}


def node_parameters(args: argparse.Namespace, engine_backend: str | None = None
                    ) -> dict[str, Any]:
    """Return the segmentation_node parameters of this benchmark.

    engine_backend: the runtime the in-process reference ended up with; the node is given the
    same one, so 'auto' cannot pick different runtimes on the two sides of a ratio.
    """
    params: dict[str, Any] = {
        'image_topics': [f'cam{i}/image_raw' for i in range(args.cameras)],
        'model': args.model, 'device': args.device, 'precision': args.precision,
        'warmup_iterations': 2, 'backend': engine_backend or args.backend,
    }
    if engine_backend == 'openvino_int8':  # auto took the shipped INT8 IR: name it outright
        from seg_perception.segmentation.backends import SHIPPED_INT8
        from seg_perception.segmentation.model_spec import default_model_path
        params.update(model=str(default_model_path(SHIPPED_INT8, '.xml')), backend='openvino')
    for item in args.node_param:
        key, _, value = item.partition(':=')
        params[key] = value
    return params


def measure_node(args: argparse.Namespace, transport: str, domain_id: int,
                 engine: Any) -> dict[str, Any]:
    """Run the node and the driver once over `transport`; return the driver's figures.

    The model-only references are timed with `engine` at the driver's hold points and returned
    under 'model_only_references'.
    """
    build = Path('build')
    env = ros_load.ros_environment(domain_id=domain_id, transport=transport,
                                   log_dir=(build / 'ros_log').resolve(),
                                   torch_threads=args.torch_threads or None)
    driver_args = ['--cameras', str(args.cameras), '--width', str(args.width),
                   '--height', str(args.height), '--rate-hz', str(args.rate_hz),
                   '--frames', str(args.frames), '--max-frames', str(args.frames),
                   '--window', str(args.window)] + (['--reliable-input']
                                                    if args.reliable_camera else [])
    load_before = _load_average()
    references: dict[str, dict[str, Any]] = {}

    def time_model_alone(point: str) -> None:
        print(f'segmentation bench: model alone, {point.replace("_", " ")} ...', flush=True)
        references[point] = measure_model_reference(args, engine)

    result = ros_load.run_node_benchmark(
        node_params=node_parameters(args, engine.backend), driver_args=driver_args, env=env,
        work_dir=(build / 'bench' / 'segmentation_runs').resolve(), timeout_s=args.timeout_s,
        node_module=args.node_module, label=transport, on_hold=time_model_alone)
    missing = [p for p in HOLD_POINTS if p not in references]
    if missing:
        raise ros_load.BenchProcessError(f'the driver never held at {", ".join(missing)}')
    result['model_only_references'] = references
    result['cpu_per_frame'] = phase_cpu(result, os.cpu_count() or 1)
    result['transport'] = transport
    result['fastdds_profile'] = env.get('FASTDDS_DEFAULT_PROFILES_FILE')
    result['load_average_before'] = load_before
    result['load_average_after'] = _load_average()
    return result


def phase_references(node: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the model-only references of the fixed-rate and max-rate phases of a node run."""
    refs = node['model_only_references']
    before, between, after = (refs[p] for p in HOLD_POINTS)
    return combine_references(before, between), combine_references(between, after)


def phase_cpu(node: dict[str, Any], cores: int) -> dict[str, Any]:
    """Return the CPU time per frame that the node and the driver spent in each node phase.

    With the model-alone CPU per frame beside it, this says where a node phase's cores went, and
    `fps_ceiling` = cores / (node + driver CPU per frame) is the most frames/s these costs allow
    on this machine however well the threads are scheduled. Empty when /proc is unavailable.
    """
    at = node.get('cpu_seconds_at_hold', {})
    out: dict[str, Any] = {}
    for phase, (start, end), ref in zip(('fixed_rate', 'max_rate'),
                                        (HOLD_POINTS[:2], HOLD_POINTS[1:]),
                                        phase_references(node)):
        frames = node[phase]['received'] if node.get(phase) else 0
        if start not in at or end not in at or frames <= 0:
            continue
        seconds = {proc: (at[start].get(proc), at[end].get(proc)) for proc in ('node', 'driver')}
        if any(None in pair for pair in seconds.values()):
            continue
        node_ms, driver_ms = ((end_s - start_s) * 1e3 / frames
                              for start_s, end_s in seconds.values())
        model_ms = ref['cores_used'] * ref['mean_ms'] / max(1, node.get('cameras', 1))
        total = node_ms + driver_ms
        out[phase] = {'node_cpu_ms_per_frame': node_ms, 'driver_cpu_ms_per_frame': driver_ms,
                      'model_alone_cpu_ms_per_frame': model_ms,
                      'fps_ceiling': cores * 1e3 / total if total > 0 else None}
    return out


def _ratios(node: dict[str, Any]) -> dict[str, Any]:
    fixed, maximum = node['fixed_rate'], node['max_rate']
    fixed_ref, max_ref = phase_references(node)
    ratio = maximum['fps'] / max_ref['fps'] if max_ref['fps'] > 0 else 0.0
    added = fixed.get('latency_p50_ms', float('nan')) - fixed_ref['p50_ms']
    return {'overhead_ratio': ratio, 'added_latency_ms': added,
            'meets_overhead_target': ratio >= TARGET_OVERHEAD_RATIO,
            'meets_latency_target': added <= TARGET_ADDED_LATENCY_MS}


def build_report(args: argparse.Namespace, measured: dict[str, Any],
                 nodes: dict[str, dict[str, Any]], load_start: list[float]) -> dict[str, Any]:
    """Assemble the JSON document (first transport's figures at the top level)."""
    primary = next(iter(nodes))
    node = nodes[primary]
    fixed_ref, max_ref = phase_references(node)
    ctx = measured['context']
    report: dict[str, Any] = {
        'benchmark': 'segmentation',
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'command': 'seg_perception bench segmentation ' + ' '.join(
            shlex.quote(a) for a in sys.argv[3:]) if sys.argv[1:3] == ['bench', 'segmentation']
        else ' '.join(shlex.quote(a) for a in sys.argv),
        'device_name': ctx['device_name'], 'device': ctx['device'],
        'cpu_model': cpu_model(), 'cpu_count': os.cpu_count(),
        'torch_threads': ctx['torch_threads'], 'torch': ctx['torch'],
        'load_average_start': load_start, 'load_average_end': _load_average(),
        'model': args.model, 'model_name': ctx['model_name'],
        'network_input_hw': ctx['network_input_hw'], 'precision': args.precision,
        'engine_notes': ctx['engine_notes'],
        'resolution': {'width': args.width, 'height': args.height},
        'cameras': args.cameras, 'transport': primary,
        'node_params': node_parameters(args, ctx['backend']), 'node_module': args.node_module,
        'backend': ctx['backend'], 'backend_timings_ms': ctx['backend_timings_ms'],
        'model_only': combine_references(*node['model_only_references'].values()),
        'model_only_fixed_rate_reference': fixed_ref,
        'model_only_max_rate_reference': max_ref,
        'model_only_references': node['model_only_references'],
        'engine': measured['engine'],
        'node_fixed_rate': node['fixed_rate'], 'node_max_rate': node['max_rate'],
        **_ratios(node),
        'targets': {'overhead_ratio_min': TARGET_OVERHEAD_RATIO,
                    'added_latency_ms_max': TARGET_ADDED_LATENCY_MS},
        'node_runs': nodes,
    }
    if len(nodes) > 1:
        report['transport_comparison'] = {
            t: {'fixed_latency_p50_ms': n['fixed_rate'].get('latency_p50_ms'),
                'max_rate_fps': n['max_rate']['fps'],
                'max_rate_latency_p50_ms': n['max_rate'].get('latency_p50_ms'),
                **_ratios(n)} for t, n in nodes.items()}
    return report


def _fmt(value: Any, spec: str = '.1f') -> str:
    return '-' if value is None else format(value, spec)


def format_table(report: dict[str, Any]) -> str:
    """Return the human-readable table of a report."""
    res = report['resolution']
    lines = [f"segmentation bench: model {report['model']} ({report['model_name']}), "
             f"{res['width']}x{res['height']}, {report['cameras']} camera(s), "
             f"{report['device_name']} ({report['device']}), backend "
             f"{report.get('backend', 'torch')}, torch threads "
             f"{report['torch_threads']}, load avg {report['load_average_start']} -> "
             f"{report['load_average_end']}",
             f"{'measurement':34s} {'fps':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} "
             f"{'sent':>5s} {'recv':>5s} {'drop':>5s}"]
    m = report['engine']
    lines.append(f"{'engine (4 masks + overlay)':34s} {m['fps']:7.1f} {m['p50_ms']:8.1f} "
                 f"{m['p95_ms']:8.1f} {m['p99_ms']:8.1f}")
    for transport, node in report['node_runs'].items():
        refs = node['model_only_references']
        for point, phase, label in (
                (HOLD_POINTS[0], 'fixed_rate', f"node {node['fixed_rate']['rate_hz']:g} Hz"),
                (HOLD_POINTS[1], 'max_rate', 'node max rate'), (HOLD_POINTS[2], None, None)):
            r = refs[point]
            lines.append(f"{'model only, ' + point.replace('_', ' '):34s} {r['fps']:7.1f} "
                         f"{r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f}")
            if phase is None:
                continue
            m = node[phase]
            lines.append(f"{label + ' [' + transport + ']':34s} {m['fps']:7.1f} "
                         f"{_fmt(m.get('latency_p50_ms')):>8s} {_fmt(m.get('latency_p95_ms')):>8s}"
                         f" {_fmt(m.get('latency_p99_ms')):>8s} {m['sent']:5d} "
                         f"{m['received']:5d} {m['dropped']:5d}")
            counts = m.get('node')
            if counts:
                lines.append(f"  in the node: {counts['frames_received']} received, "
                             f"{counts['frames_published']} published, "
                             f"{counts['frames_dropped']} replaced by a newer frame")
            cpu = node.get('cpu_per_frame', {}).get(phase)
            if cpu:
                lines.append(f"  CPU per frame: node {cpu['node_cpu_ms_per_frame']:.1f} ms, "
                             f"driver {cpu['driver_cpu_ms_per_frame']:.1f} ms (model alone "
                             f"{cpu['model_alone_cpu_ms_per_frame']:.1f} ms); these costs "
                             f"allow at most {_fmt(cpu['fps_ceiling'])} frames/s here")
    lines.append(f"overhead_ratio {report['overhead_ratio']:.3f} (target >= "
                 f"{TARGET_OVERHEAD_RATIO}), added_latency_ms {report['added_latency_ms']:.1f} "
                 f"(target <= {TARGET_ADDED_LATENCY_MS:g}) [{report['transport']}]")
    for transport, c in report.get('transport_comparison', {}).items():
        lines.append(f"  {transport}: overhead_ratio {c['overhead_ratio']:.3f}, added_latency_ms "
                     f"{c['added_latency_ms']:.1f}")
    return '\n'.join(lines)


def main(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table and write the JSON report."""
    _validate(args)
    load_start = _load_average()
    measured, engine = measure_in_process(args)
    transports = list(ros_load.TRANSPORTS) if args.transport == 'both' else [args.transport]
    domain_id = args.domain_id or ros_load.private_domain_id()
    failed: dict[str, str] = {}
    nodes = {}
    for transport in transports:
        print(f'segmentation bench: node run over {transport} (domain {domain_id}) ...',
              flush=True)
        try:
            nodes[transport] = measure_node(args, transport, domain_id, engine)
        except ros_load.BenchProcessError as exc:
            print(f'seg_perception bench segmentation: error over {transport}: {exc}',
                  file=sys.stderr)
            if not nodes:
                return 1
            failed[transport] = str(exc)
    report = build_report(args, measured, nodes, load_start)
    if failed:
        report['failed_runs'] = failed
    print(format_table(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + '\n')
    print(f'wrote {args.output}')
    return 0
