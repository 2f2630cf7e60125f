"""`seg_perception doctor`: check how camera images will travel between ROS 2 processes here.

Lost or late frames between a camera driver and the nodes almost always come from the transport
set-up, not from the nodes: the RMW, the Fast DDS profile (shared memory and its segment size),
FASTDDS_BUILTIN_TRANSPORTS, the kernel's socket buffer limits, and a best-effort camera over
UDP. The checks are pure functions of the environment and a few files, returning `Check`s, so
they are tested without ROS; only `--topic` looks at a live topic (nodes/topic_probe.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import math
import os
from pathlib import Path
import sys
from typing import Mapping, Sequence
import xml.etree.ElementTree as ElementTree

#: A 640x480 rgb8 frame, the size the static checks measure transports against.
FRAME_BYTES = 640 * 480 * 3
#: Fast DDS's shared-memory segment when a profile does not set one (512 KiB).
DEFAULT_SHM_SEGMENT = 512 * 1024
#: Larger messages cross UDP in several datagrams; a best-effort one is lost with any of them.
UDP_FRAGMENT_BYTES = 64000
#: Linux's usual net.core.rmem_max / wmem_max.
LINUX_DEFAULT_BUFFER = 212992
FAST_DDS_RMWS = ('rmw_fastrtps_cpp', 'rmw_fastrtps_dynamic_cpp')
DEFAULT_RMW = 'rmw_fastrtps_cpp'
BUILTIN_TRANSPORTS = ('DEFAULT', 'DEFAULTv6', 'SHM', 'UDPv4', 'UDPv6', 'LARGE_DATA',
                      'LARGE_DATAv6', 'P2P', 'NONE')
DISCOVERY_RANGES = ('SUBNET', 'LOCALHOST', 'OFF', 'SYSTEM_DEFAULT')
LEVELS = ('OK', 'INFO', 'WARN', 'FAIL')


@dataclass(frozen=True)
class Check:
    """One line of the checklist: level (OK, INFO, WARN, FAIL), what, and how to fix it."""

    level: str
    name: str
    detail: str
    fix: str = ''

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f'level must be one of {LEVELS}, got {self.level!r}')

    def line(self) -> str:
        """Return the check as one printable line."""
        text = f'[{self.level:<4}] {self.name}: {self.detail}'
        return f'{text} -> fix: {self.fix}' if self.fix else text


def shm_profile_path() -> str:
    """Return where this package's SHM profile is installed (the source copy without ament)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return str(Path(get_package_share_directory('seg_perception')) / 'config' /
                   'fastdds_shm.xml')
    except (ImportError, LookupError, ValueError):
        return str(Path(__file__).resolve().parents[1] / 'config' / 'fastdds_shm.xml')


def _mb(size: float) -> str:
    return f'{size / 1e6:.1f} MB'


def _uses_fast_dds(env: Mapping[str, str]) -> bool:
    return (env.get('RMW_IMPLEMENTATION') or DEFAULT_RMW) in FAST_DDS_RMWS


def library_dirs(env: Mapping[str, str], prefix: str) -> list[Path]:
    """Return the folders an RMW library may be loaded from (LD_LIBRARY_PATH, ament, venv)."""
    dirs = [Path(d) for d in env.get('LD_LIBRARY_PATH', '').split(os.pathsep) if d]
    dirs += [Path(d) / 'lib' for d in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if d]
    return dirs + [Path(prefix) / 'lib']


def check_rmw(env: Mapping[str, str], lib_dirs: Sequence[Path]) -> Check:
    """Say which RMW this process uses, and whether its library is installed."""
    name = env.get('RMW_IMPLEMENTATION') or DEFAULT_RMW
    shown = name if env.get('RMW_IMPLEMENTATION') else f'{name} (default)'
    if not any((d / f'lib{name}.so').is_file() for d in lib_dirs):
        return Check('WARN', 'RMW', f'{shown}: lib{name}.so not found in '
                     f'{len(lib_dirs)} library folders; rclpy fails to start if it is missing',
                     f'install the RMW (ros-<distro>-{name.replace("_", "-")}) or unset '
                     'RMW_IMPLEMENTATION')
    if name not in FAST_DDS_RMWS:
        return Check('WARN', 'RMW', f'{shown}: the Fast DDS settings below (SHM profile, '
                     'FASTDDS_BUILTIN_TRANSPORTS) do not apply; every process of the pipeline '
                     'must use the same RMW', f'unset RMW_IMPLEMENTATION for {DEFAULT_RMW}, '
                     'or tune the transport of that RMW')
    return Check('OK', 'RMW', shown)


def _local(tag: str) -> str:
    """Return an XML tag without its namespace ('{http://www.eprosima.com}dds' -> 'dds')."""
    return tag.rsplit('}', 1)[-1]


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [e for e in element.iter() if _local(e.tag) == name]


def _text(element: ElementTree.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or '').strip()
    return None


def check_profile(env: Mapping[str, str], frame_bytes: int = FRAME_BYTES) -> Check:
    """Check FASTDDS_DEFAULT_PROFILES_FILE: set, present, XML, with an SHM transport that fits."""
    name = 'Fast DDS profile'
    fix_shm = f'export FASTDDS_DEFAULT_PROFILES_FILE={shm_profile_path()} in every process'
    path = env.get('FASTDDS_DEFAULT_PROFILES_FILE', '')
    if not _uses_fast_dds(env):
        return Check('INFO', name, 'not read: the RMW is not Fast DDS')
    if not path:
        large = _builtin_names(env.get('FASTDDS_BUILTIN_TRANSPORTS', '')) & {
            'LARGE_DATA', 'LARGE_DATAv6'}
        if large:
            return Check('OK', name, 'none; FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA carries '
                         'large frames over shared memory')
        return Check('WARN', name, 'FASTDDS_DEFAULT_PROFILES_FILE is not set: the default '
                     f'{_mb(DEFAULT_SHM_SEGMENT)} shared-memory segment cannot hold a '
                     f'{_mb(frame_bytes)} frame, so frames between processes go over UDP',
                     fix_shm + ' (or FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA)')
    if not Path(path).is_file():
        return Check('FAIL', name, f'FASTDDS_DEFAULT_PROFILES_FILE={path} does not exist '
                     '(Fast DDS logs an error and runs with its defaults)',
                     f'point it at an existing file, e.g. {shm_profile_path()}')
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        return Check('FAIL', name, f'{path} is not valid XML ({exc}); Fast DDS ignores it',
                     f'fix the XML, or use {shm_profile_path()}')
    except OSError as exc:
        return Check('FAIL', name, f'{path} cannot be read ({exc.strerror})',
                     'make it readable by the user running the nodes')
    if _local(root.tag) not in ('dds', 'profiles'):
        return Check('FAIL', name, f'{path}: root element <{_local(root.tag)}> is not <dds> or '
                     '<profiles>: not a Fast DDS profile', f'use {shm_profile_path()}')
    return _shm_of_profile(path, root, frame_bytes, fix_shm)


def _shm_of_profile(path: str, root: ElementTree.Element, frame_bytes: int,
                    fix_shm: str) -> Check:
    name = 'Fast DDS profile'
    shm = [d for d in _children(root, 'transport_descriptor') if _text(d, 'type') == 'SHM']
    if not shm:
        return Check('WARN', name, f'{path} declares no SHM transport: frames between '
                     'processes go over UDP', 'add an SHM transport_descriptor with a '
                     f'segment_size of 16 MiB, as in {shm_profile_path()}')
    defaults = [p for p in _children(root, 'participant')
                if p.get('is_default_profile', '').lower() == 'true']
    used = {(t.text or '').strip() for p in defaults for t in _children(p, 'transport_id')}
    for descriptor in shm:
        transport_id = _text(descriptor, 'transport_id') or '?'
        raw = _text(descriptor, 'segment_size')
        try:
            segment = int(raw) if raw else DEFAULT_SHM_SEGMENT
        except ValueError:
            return Check('FAIL', name, f'{path}: SHM transport {transport_id} has segment_size '
                         f'{raw!r}, not a number of bytes', 'write the size in bytes, e.g. '
                         '16777216')
        if transport_id not in used:
            continue
        if segment < frame_bytes:
            return Check('WARN', name, f'{path}: SHM transport {transport_id} has a '
                         f'{segment}-byte segment, smaller than a {frame_bytes}-byte frame: '
                         'frames fall back to UDP', 'set segment_size (and maxMessageSize) to '
                         '16777216')
        return Check('OK', name, f'{path}: SHM transport {transport_id}, segment {segment} '
                     'bytes, in the default participant profile')
    return Check('WARN', name, f'{path}: its SHM transport is not in the userTransports of a '
                 'participant profile with is_default_profile="true", so nodes do not use it',
                 'list its transport_id in the default participant profile')


def _builtin_names(value: str) -> set[str]:
    """Return the transport names of FASTDDS_BUILTIN_TRANSPORTS ('LARGE_DATA?max_msg_size=...')."""
    return {value.split('?', 1)[0].strip()} if value.strip() else set()


def check_builtin_transports(env: Mapping[str, str]) -> Check:
    """Say what FASTDDS_BUILTIN_TRANSPORTS gives large frames."""
    name = 'FASTDDS_BUILTIN_TRANSPORTS'
    value = env.get('FASTDDS_BUILTIN_TRANSPORTS', '')
    if not _uses_fast_dds(env):
        return Check('INFO', name, 'not read: the RMW is not Fast DDS')
    if not value.strip():
        return Check('OK', name, f'unset (DEFAULT: UDPv4 and a {_mb(DEFAULT_SHM_SEGMENT)} '
                     'shared-memory segment)')
    (transport,) = _builtin_names(value)
    if transport not in BUILTIN_TRANSPORTS:
        return Check('FAIL', name, f'{value!r} is not a Fast DDS builtin transport; Fast DDS '
                     'logs an error and uses DEFAULT', f'one of {", ".join(BUILTIN_TRANSPORTS)}')
    if transport in ('LARGE_DATA', 'LARGE_DATAv6'):
        return Check('OK', name, f'{value}: shared memory and TCP for large data; it works only '
                     'when the camera driver process has it too')
    if transport in ('UDPv4', 'UDPv6'):
        return Check('WARN', name, f'{value}: no shared memory, every frame goes over UDP',
                     'FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA in both processes, or unset it')
    if transport == 'NONE':
        level = 'OK' if env.get('FASTDDS_DEFAULT_PROFILES_FILE') else 'FAIL'
        return Check(level, name, "NONE: only the XML profile's transports carry data",
                     '' if level == 'OK' else 'unset it, or give a profile with transports')
    if transport == 'SHM':
        return Check('OK', name, 'SHM: shared memory only, no traffic with other machines')
    return Check('OK', name, value)


def read_proc_int(path: Path) -> int | None:
    """Return the integer in a /proc file, None when it cannot be read."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def recommended_buffer(frame_bytes: int) -> int:
    """Return a socket buffer limit for large frames: a power of two, >= 4 frames, >= 4 MiB."""
    return max(4 * 1024 * 1024, 1 << math.ceil(math.log2(max(4 * frame_bytes, 1))))


def check_socket_buffers(rmem_max: int | None, wmem_max: int | None,
                         frame_bytes: int = FRAME_BYTES) -> Check:
    """Compare net.core.rmem_max / wmem_max with the frame size (matters for UDP)."""
    name = 'socket buffers'
    if rmem_max is None or wmem_max is None:
        return Check('WARN', name, 'cannot read /proc/sys/net/core/rmem_max and wmem_max (not '
                     'Linux, or a restricted container)', "check the host's limits")
    size = recommended_buffer(frame_bytes)
    detail = f'rmem_max={rmem_max}, wmem_max={wmem_max} bytes, frames of {frame_bytes} bytes'
    small = [n for n, v in (('rmem_max', rmem_max), ('wmem_max', wmem_max)) if v < frame_bytes]
    if small:
        default = ' (the Linux default)' if LINUX_DEFAULT_BUFFER in (rmem_max, wmem_max) else ''
        return Check('WARN', name, f'{detail}: {" and ".join(small)} below one frame{default}; '
                     'large best-effort frames over UDP are dropped by the kernel',
                     f'sudo sysctl -w net.core.rmem_max={size} net.core.wmem_max={size}')
    return Check('OK', name, detail)


def check_discovery(env: Mapping[str, str]) -> list[Check]:
    """Report ROS_DOMAIN_ID and the discovery range (information; invalid values fail)."""
    checks = []
    domain = env.get('ROS_DOMAIN_ID', '')
    if not domain:
        checks.append(Check('INFO', 'ROS_DOMAIN_ID', '0 (unset)'))
    elif not domain.isdigit() or int(domain) > 232:
        checks.append(Check('FAIL', 'ROS_DOMAIN_ID', f'{domain!r} is not an integer in 0..232',
                            'export ROS_DOMAIN_ID=<0..232>, the same in every process'))
    else:
        checks.append(Check('INFO', 'ROS_DOMAIN_ID', f'{domain} (every process of the pipeline '
                            'needs the same)'))
    scope = env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '')
    if scope and scope not in DISCOVERY_RANGES:
        checks.append(Check('WARN', 'ROS_AUTOMATIC_DISCOVERY_RANGE', f'{scope!r} is not one of '
                            f'{", ".join(DISCOVERY_RANGES)}', 'unset it or use one of those'))
    else:
        checks.append(Check('INFO', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                            scope or 'SUBNET (unset)'))
    if env.get('ROS_LOCALHOST_ONLY'):
        checks.append(Check('INFO', 'ROS_LOCALHOST_ONLY', f'{env["ROS_LOCALHOST_ONLY"]} '
                            '(deprecated; ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST replaces it)'))
    return checks


def static_checks(env: Mapping[str, str], *, lib_dirs: Sequence[Path],
                  proc_net: Path = Path('/proc/sys/net/core'),
                  frame_bytes: int = FRAME_BYTES) -> list[Check]:
    """Return the checks that need no ROS graph, in checklist order."""
    return [check_rmw(env, lib_dirs), check_profile(env, frame_bytes),
            check_builtin_transports(env),
            check_socket_buffers(read_proc_int(proc_net / 'rmem_max'),
                                 read_proc_int(proc_net / 'wmem_max'), frame_bytes),
            *check_discovery(env)]


@dataclass(frozen=True)
class TopicSummary:
    """What was seen on a topic, as plain values (from nodes.topic_probe.TopicObservation)."""

    topic: str
    duration_s: float
    types: tuple[str, ...]
    publishers: tuple[tuple[str, str, str], ...]  # (node, reliability, durability)
    subscribed_reliability: str | None
    arrivals_s: tuple[float, ...]
    sizes_bytes: tuple[int, ...]


def rate_hz(arrivals_s: Sequence[float]) -> float | None:
    """Return the mean message rate between the first and the last arrival (None below 2)."""
    if len(arrivals_s) < 2 or arrivals_s[-1] <= arrivals_s[0]:
        return None
    return (len(arrivals_s) - 1) / (arrivals_s[-1] - arrivals_s[0])


def topic_checks(seen: TopicSummary) -> list[Check]:
    """Return the checks of one observed topic: publishers, rate and size, large best effort."""
    name = f'topic {seen.topic}'
    if not seen.publishers:
        return [Check('FAIL', name, 'no publisher found',
                      'check the name (ros2 topic list) and that both processes have the same '
                      'ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE')]
    pubs = ', '.join(f'{n} ({r}, {d})' for n, r, d in seen.publishers)
    checks = [Check('OK' if len(seen.types) == 1 else 'FAIL', f'{name} publishers',
                    f'{len(seen.publishers)} of type {"/".join(seen.types)}: {pubs}',
                    '' if len(seen.types) == 1 else 'publishers disagree on the type; fix them')]
    if len(seen.types) != 1:
        return checks
    best_effort = [n for n, r, _ in seen.publishers if r == 'best_effort']
    largest = max(seen.sizes_bytes, default=0)
    if not seen.arrivals_s:
        checks.append(Check('FAIL', f'{name} messages', f'none in {seen.duration_s:g} s '
                            f'(subscribed {seen.subscribed_reliability})',
                            'is the publisher publishing? A best-effort camera of large frames '
                            'over UDP can lose all of them: see the fixes below'
                            if best_effort else 'is the publisher publishing?'))
    else:
        rate = rate_hz(seen.arrivals_s)
        mean = sum(seen.sizes_bytes) / len(seen.sizes_bytes)
        checks.append(Check('OK', f'{name} messages', (
            f'{len(seen.arrivals_s)} in {seen.duration_s:g} s'
            + (f', {rate:.1f} Hz' if rate is not None else '')
            + f', {mean:.0f} bytes each on average (largest {largest}), '
            f'subscribed {seen.subscribed_reliability}')))
    if best_effort and (largest > UDP_FRAGMENT_BYTES or not seen.arrivals_s):
        fragments = f'~{math.ceil(largest / UDP_FRAGMENT_BYTES)} ' if largest else ''
        checks.append(Check(
            'WARN', f'{name} best effort', f'{", ".join(best_effort)} publish best effort: with '
            f'default Fast DDS each large frame crosses processes over UDP in {fragments}'
            'fragments and is lost with any one of them, so large frames are being lost',
            'make the camera driver publish reliable, or set FASTDDS_BUILTIN_TRANSPORTS='
            'LARGE_DATA in both processes, or FASTDDS_DEFAULT_PROFILES_FILE='
            f'{shm_profile_path()} in both (README: which to choose)'))
    return checks


def exit_code(checks: Sequence[Check]) -> int:
    """Return 1 when a check failed, else 0."""
    return int(any(c.level == 'FAIL' for c in checks))


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a positive number of seconds, got {text}')
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the doctor's options."""
    parser.add_argument('--topic', help='also watch this topic: publishers, QoS, rate, size')
    parser.add_argument('--duration-s', type=_positive, default=5.0, metavar='S',
                        help='how long to watch --topic (default 5)')


def observe(topic: str, duration_s: float) -> TopicSummary:
    """Watch a live topic (rclpy, in seg_perception.nodes) and summarise it."""
    from seg_perception.nodes.topic_probe import observe_topic
    seen = observe_topic(topic, duration_s)
    return TopicSummary(
        topic=seen.topic, duration_s=seen.duration_s, types=tuple(seen.types),
        publishers=tuple((p.node, p.reliability, p.durability) for p in seen.publishers),
        subscribed_reliability=seen.subscribed_reliability,
        arrivals_s=tuple(seen.arrivals_s), sizes_bytes=tuple(seen.sizes_bytes))


def main(args: argparse.Namespace) -> int:
    """Print the checklist; return 1 when a check failed.

    With --topic the topic is watched first, so the static checks measure the transports
    against the largest message seen there when it is larger than a 640x480 rgb8 frame.
    """
    seen = observe(args.topic, args.duration_s) if args.topic else None
    frame_bytes = max([FRAME_BYTES, *(seen.sizes_bytes if seen else ())])
    checks = static_checks(os.environ, lib_dirs=library_dirs(os.environ, sys.prefix),
                           frame_bytes=frame_bytes)
    if seen is not None:
        checks += topic_checks(seen)
    for check in checks:
        print(check.line())
    failed = sum(c.level == 'FAIL' for c in checks)
    warned = sum(c.level == 'WARN' for c in checks)
    print(f'{len(checks)} checks: {failed} failed, {warned} warnings')
    return exit_code(checks)
