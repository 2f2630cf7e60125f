"""`seg_perception bench segmentation`: a tiny real run (node and driver over DDS) and its JSON."""

from __future__ import annotations

import json
import math

import pytest

from ros_harness import BUILD_DIR

pytest.importorskip('rclpy', reason='rclpy is not installed')
pytestmark = pytest.mark.ros

from seg_perception.bench import ros_load  # noqa: E402
from seg_perception.bench import segmentation_bench  # noqa: E402
from seg_perception.cli import main as cli_main  # noqa: E402

LATENCY_KEYS = ('latency_p50_ms', 'latency_p95_ms', 'latency_p99_ms')


def test_tiny_run_writes_every_figure(capsys) -> None:
    out = BUILD_DIR / 'bench' / 'test_segmentation_smoke.json'
    out.unlink(missing_ok=True)
    code = cli_main(['bench', 'segmentation', '--model', 'unet_small', '--width', '64',
                     '--height', '48', '--frames', '5', '--cameras', '1', '--rate-hz', '20',
                     '--model-iterations', '2', '--device', 'cpu', '--timeout-s', '120',
                     '--output', str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report['transport'] == 'shm'
    assert report['resolution'] == {'width': 64, 'height': 48}
    assert report['cameras'] == 1 and report['model'] == 'unet_small'
    assert report['device'] == 'cpu' and report['device_name']
    assert report['torch_threads'] >= 1
    for key in ('p50_ms', 'p95_ms', 'p99_ms', 'fps'):
        assert report['model_only'][key] > 0
    assert report['model_only']['p50_ms'] <= report['model_only']['p99_ms']
    refs = report['model_only_references']
    assert list(refs) == list(ros_load.HOLD_POINTS)  # timed in the driver's holds, in order
    assert all(refs[p]['p50_ms'] > 0 for p in refs)
    assert report['model_only']['p50_ms'] == pytest.approx(
        sum(r['p50_ms'] for r in refs.values()) / 3)
    fixed_ref = report['model_only_fixed_rate_reference']
    max_ref = report['model_only_max_rate_reference']
    assert fixed_ref['p50_ms'] == pytest.approx(
        (refs['before_fixed_rate']['p50_ms'] + refs['between_phases']['p50_ms']) / 2)
    assert max_ref['fps'] == pytest.approx(
        (refs['between_phases']['fps'] + refs['after_max_rate']['fps']) / 2)
    for phase in ('node_fixed_rate', 'node_max_rate'):
        figures = report[phase]
        assert figures['sent'] == 5
        assert 1 <= figures['received'] <= figures['sent']
        assert figures['dropped'] == figures['sent'] - figures['received']
        assert figures['fps'] > 0
        assert 0 < figures['latency_p50_ms'] <= figures['latency_p95_ms'] \
            <= figures['latency_p99_ms']
        # The node's own counters (from /diagnostics) account for every frame it got.
        node = figures['node']
        assert node['frames_received'] <= figures['sent']
        assert node['frames_published'] + node['frames_dropped'] == node['frames_received']
        assert node['frames_published'] >= figures['received']
    assert report['node_fixed_rate']['rate_hz'] == 20
    assert report['overhead_ratio'] == pytest.approx(
        report['node_max_rate']['fps'] / max_ref['fps'])
    assert report['added_latency_ms'] == pytest.approx(
        report['node_fixed_rate']['latency_p50_ms'] - fixed_ref['p50_ms'])
    assert math.isfinite(report['added_latency_ms'])
    assert report['node_runs']['shm']['fastdds_profile'].endswith('fastdds_shm.xml')
    # CPU per frame from /proc at the holds: both processes worked, the node at least as much
    # as one forward pass of the model alone costs.
    cpu = report['node_runs']['shm']['cpu_per_frame']
    assert set(cpu) == {'fixed_rate', 'max_rate'}
    for phase in cpu.values():
        assert phase['driver_cpu_ms_per_frame'] > 0
        assert phase['node_cpu_ms_per_frame'] > 0 and phase['model_alone_cpu_ms_per_frame'] > 0
        assert phase['fps_ceiling'] > 0
    assert 'overhead_ratio' in capsys.readouterr().out
    assert report['node_fixed_rate']['latency_series_ms'][0] > 0


def test_phase_cpu_divides_each_phase_by_its_frames() -> None:
    ref = {'mean_ms': 10.0, 'cores_used': 2.0, 'p50_ms': 10.0, 'p95_ms': 11.0, 'p99_ms': 12.0,
           'fps': 100.0, 'frames_per_s': 100.0}
    node = {'fixed_rate': {'received': 10}, 'max_rate': {'received': 20}, 'cameras': 1,
            'model_only_references': {p: ref for p in ros_load.HOLD_POINTS},
            'cpu_seconds_at_hold': {'before_fixed_rate': {'node': 1.0, 'driver': 0.5},
                                    'between_phases': {'node': 1.3, 'driver': 0.52},
                                    'after_max_rate': {'node': 1.9, 'driver': 0.56}}}
    cpu = segmentation_bench.phase_cpu(node, cores=2)
    assert cpu['fixed_rate']['node_cpu_ms_per_frame'] == pytest.approx(30.0)
    assert cpu['fixed_rate']['driver_cpu_ms_per_frame'] == pytest.approx(2.0)
    assert cpu['max_rate']['node_cpu_ms_per_frame'] == pytest.approx(30.0)
    assert cpu['max_rate']['driver_cpu_ms_per_frame'] == pytest.approx(2.0)
    assert cpu['max_rate']['model_alone_cpu_ms_per_frame'] == pytest.approx(20.0)
    assert cpu['max_rate']['fps_ceiling'] == pytest.approx(2000 / 32)
    node['cpu_seconds_at_hold']['after_max_rate']['node'] = None  # /proc unreadable
    assert set(segmentation_bench.phase_cpu(node, cores=2)) == {'fixed_rate'}


def test_udp_environment_drops_the_shm_profile() -> None:
    base = {'FASTDDS_DEFAULT_PROFILES_FILE': '/x.xml', 'ROS_LOCALHOST_ONLY': '1'}
    env = ros_load.ros_environment(domain_id=150, transport='udp', log_dir=BUILD_DIR,
                                   base=base)
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in env and 'ROS_LOCALHOST_ONLY' not in env
    assert env['ROS_DOMAIN_ID'] == '150'
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    shm = ros_load.ros_environment(domain_id=150, transport='shm', log_dir=BUILD_DIR, base={})
    assert shm['FASTDDS_DEFAULT_PROFILES_FILE'] == str(ros_load.shm_profile_path())


@pytest.mark.parametrize('kwargs, message', [
    ({'domain_id': 150, 'transport': 'tcp'}, 'transport'),
    ({'domain_id': 300, 'transport': 'shm'}, 'ROS_DOMAIN_ID'),
])
def test_bad_environment_arguments_are_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ros_load.ros_environment(log_dir=BUILD_DIR, base={}, **kwargs)


def test_node_parameters_are_rendered_for_ros_args() -> None:
    from seg_perception.process_group import ros_arguments
    args = ros_arguments(params={'image_topics': ['a/image_raw', 'b/image_raw'],
                                 'publish_overlay': False, 'max_rate_hz': 2.5})
    assert args == ['--ros-args', '-p', "image_topics:=['a/image_raw','b/image_raw']", '-p',
                    'publish_overlay:=false', '-p', 'max_rate_hz:=2.5']
