"""Processes for the ROS part of the segmentation benchmark (no rclpy here: it only starts them).

`run_node_benchmark` starts the real segmentation_node and the bench_driver
(`seg_perception.nodes.bench_driver`) as separate processes in a private, localhost-only DDS
domain, waits for the driver's JSON result with a timeout, and stops both processes in every
case (SIGINT, then SIGTERM, then SIGKILL; children also die with this process).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import sys
import time
from typing import Any, Callable, Mapping, Sequence

from seg_perception import process_group
from seg_perception.process_group import ManagedProcess, ros_arguments

__all__ = ['BenchProcessError', 'HOLD_POINTS', 'TRANSPORTS', 'private_domain_id',
           'ros_environment', 'run_node_benchmark', 'shm_profile_path']

TRANSPORTS = ('shm', 'udp')
# Where the bench driver waits (and the node idles) so the model alone can be timed.
HOLD_POINTS = ('before_fixed_rate', 'between_phases', 'after_max_rate')
NODE_MODULE = 'seg_perception.nodes.segmentation_node'
DRIVER_MODULE = 'seg_perception.nodes.bench_driver'
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # seg_perception/
SOURCE_ROOT = PACKAGE_ROOT.parent  # the repository root when run from a checkout
SHM_PROFILE = 'fastdds_shm.xml'


class BenchProcessError(RuntimeError):
    """Raised when a benchmark process fails, times out or writes no result."""


def shm_profile_path() -> Path:
    """Return the Fast DDS shared-memory profile (checkout's config/, else the installed share)."""
    candidates = [SOURCE_ROOT / 'config' / SHM_PROFILE]
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('seg_perception')) / 'config'
                          / SHM_PROFILE)
    except (ImportError, LookupError, ValueError):
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise BenchProcessError(f'Fast DDS profile {SHM_PROFILE} not found in '
                            f'{", ".join(str(c.parent) for c in candidates)}')


def private_domain_id() -> int:
    """Return a ROS_DOMAIN_ID for this run (120..219, apart from the tests' 1..100)."""
    return 120 + os.getpid() % 100


def _colcon_install_paths() -> dict[str, list[str]]:
    """Return env paths of a colcon install/ beside the checkout (seg_interfaces messages)."""
    prefix = SOURCE_ROOT / 'install' / 'seg_interfaces'
    if not prefix.is_dir():
        return {}
    py = f'python{sys.version_info.major}.{sys.version_info.minor}'
    return {'PYTHONPATH': [str(prefix / 'lib' / py / 'site-packages')],
            'LD_LIBRARY_PATH': [str(prefix / 'lib')],
            'AMENT_PREFIX_PATH': [str(prefix)]}


def ros_environment(*, domain_id: int, transport: str, log_dir: Path,
                    torch_threads: int | None = None,
                    base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment of the benchmark processes.

    A private domain with localhost-only discovery, ROS logs under `log_dir`, and the transport:
    'shm' loads the Fast DDS shared-memory profile, 'udp' runs Fast DDS defaults (its built-in
    shared-memory segment is too small for camera frames, so they go over loopback UDP).
    """
    if transport not in TRANSPORTS:
        raise ValueError(f'transport must be one of {TRANSPORTS}, got {transport!r}')
    if not 0 <= domain_id <= 232:
        raise ValueError(f'ROS_DOMAIN_ID must be in 0..232, got {domain_id}')
    env = process_group.ros_environment(domain_id=domain_id, log_dir=log_dir, base=base)
    if transport == 'shm':
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(shm_profile_path())
    else:
        env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if torch_threads:
        env['OMP_NUM_THREADS'] = str(torch_threads)
    for key, paths in _colcon_install_paths().items():
        present = env.get(key, '').split(os.pathsep) if env.get(key) else []
        env[key] = os.pathsep.join([p for p in paths if p not in present] + present)
    return env


def run_node_benchmark(*, node_params: Mapping[str, Any], driver_args: Sequence[str],
                       env: Mapping[str, str], work_dir: Path, timeout_s: float,
                       node_module: str = NODE_MODULE, label: str = 'run',
                       on_hold: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run segmentation_node + bench_driver once; return the driver's result document.

    on_hold: called with each of the driver's hold points (before the fixed-rate phase, between
    the phases, after the max-rate phase) while the driver waits there and the node idles; the
    benchmark times the model alone in these gaps, next to the phases it is compared with.
    The CPU time of both processes at each hold point is returned under 'cpu_seconds_at_hold'
    (the differences are what each phase cost them).
    Raises BenchProcessError (with the tail of the failing process's log) when a process dies,
    the driver fails, or the whole run exceeds `timeout_s`; both processes are stopped always.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    result_path = work_dir / f'driver_{label}.json'
    result_path.unlink(missing_ok=True)
    hold_args: list[str] = []
    hold_dir = work_dir / f'hold_{label}'
    if on_hold is not None:
        shutil.rmtree(hold_dir, ignore_errors=True)
        hold_dir.mkdir(parents=True)
        hold_args = ['--hold-dir', str(hold_dir), '--hold-timeout-s', str(timeout_s)]
    node = driver = None
    try:
        node = ManagedProcess('segmentation_node', [
            sys.executable, '-m', node_module, *ros_arguments(params=node_params)],
            log_path=work_dir / f'node_{label}.log', env=env, cwd=SOURCE_ROOT)
        driver = ManagedProcess('bench_driver', [
            sys.executable, '-m', DRIVER_MODULE, *driver_args, *hold_args,
            '--output', str(result_path)],
            log_path=work_dir / f'driver_{label}.log', env=env, cwd=SOURCE_ROOT)
        deadline = time.monotonic() + timeout_s
        released: set[str] = set()
        cpu_at_hold: dict[str, dict[str, float | None]] = {}
        while True:
            code = driver.wait(0.05 if on_hold is not None else 0.5)
            if code is not None:
                break
            if on_hold is not None:
                for ready in sorted(hold_dir.glob('*.ready'), key=lambda p: p.stat().st_mtime):
                    if ready.stem not in released:
                        cpu_at_hold[ready.stem] = {'node': node.cpu_seconds(),
                                                   'driver': driver.cpu_seconds()}
                        on_hold(ready.stem)
                        released.add(ready.stem)
                        (hold_dir / f'{ready.stem}.go').touch()
            if not node.is_running():
                raise BenchProcessError(f'segmentation node exited with status '
                                        f'{node.returncode}:\n{node.tail()}')
            if time.monotonic() > deadline:
                raise BenchProcessError(f'benchmark run took longer than {timeout_s:.0f} s; '
                                        f'driver log:\n{driver.tail()}\nnode log:\n{node.tail()}')
        if code != 0 or not result_path.is_file():
            raise BenchProcessError(f'bench driver failed (status {code}):\n{driver.tail()}\n'
                                    f'node log:\n{node.tail()}')
        result = json.loads(result_path.read_text())
    finally:
        for proc in (driver, node):
            if proc is not None:
                proc.stop()
    result['node_log'] = str(node.log_path)
    result['cpu_seconds_at_hold'] = cpu_at_hold
    return result
