"""bench_driver: feed camera frames to segmentation_node and time the labels that come back.

One process plays N cameras and the consumer of their labels, so send and receive times come
from one clock (wall time, the clock the header stamps use): latency = receive time of
`<cam>/segmentation/labels` - header stamp of the input frame. Phases:

1. discovery: wait until the node subscribes to every camera and publishes every labels topic;
2. warm-up: a few frames in lock-step (not measured);
3. fixed rate: `--frames` ticks at `--rate-hz` (every tick sends one frame per camera, same stamp);
4. max rate: `--max-frames` ticks in a closed loop that keeps at most `--window` ticks in flight
   (window 2 = one frame being processed and one waiting, so the node never idles). Sends are at
   least half a frame interval apart (the recent median gap between labels): a camera never
   sends two frames at once, and a burst of two would make the node's depth-1 input queue
   drop the first, which then repeats each time two ticks settle together.

A frame is received when its labels arrive, dropped when a later frame's labels of the same
camera arrive first or when it never arrives before the drain timeout. The node's own counters
from /diagnostics (frames it received, published and dropped from its one-slot mailbox) are
recorded per phase, so a drop can be told apart: lost in transport (sent but never received by
the node) or replaced in the node (received, then overtaken by a newer frame). The figures are
written as JSON to `--output` (read by `seg_perception bench segmentation`, which starts this
process).
"""

from __future__ import annotations

import argparse
from collections import deque
import json
from pathlib import Path
import sys
import threading
import time
from typing import Any, Sequence

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from seg_perception.bench.ros_load import HOLD_POINTS
from seg_perception.conversions.image_cdr import CdrHeader, CdrStamp, decode_image, \
    encode_image, restamp
from seg_perception.time_sync import stamp_ns

RESULT_VERSION = 2
NODE_COUNTERS = ('frames_received', 'frames_published', 'frames_dropped')
GAP_WINDOW = 9  # labels whose median gap paces the max-rate phase


class DriverError(RuntimeError):
    """Raised when the benchmark cannot run (no discovery, no labels come back)."""


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='bench_driver', description=__doc__.splitlines()[0])
    p.add_argument('--cameras', type=int, default=1)
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--rate-hz', type=float, default=10.0)
    p.add_argument('--frames', type=int, default=100, help='fixed-rate ticks')
    p.add_argument('--max-frames', type=int, default=100, help='max-rate ticks')
    p.add_argument('--window', type=int, default=2, help='max-rate ticks in flight')
    p.add_argument('--warmup-frames', type=int, default=3)
    p.add_argument('--discovery-timeout-s', type=float, default=120.0)
    p.add_argument('--frame-timeout-s', type=float, default=20.0,
                   help='longest wait for any labels before giving up')
    p.add_argument('--loss-timeout-s', type=float, default=1.5,
                   help='max-rate phase: a frame not back after this long counts as lost')
    p.add_argument('--diagnostics-timeout-s', type=float, default=3.0,
                   help="wait this long for the node's /diagnostics around each phase")
    p.add_argument('--hold-dir', type=Path, default=None,
                   help='before each phase and after the last, write <dir>/<point>.ready and '
                        'wait for <dir>/<point>.go (points: %s); the benchmark times the '
                        'model alone there while the node idles' % ', '.join(HOLD_POINTS))
    p.add_argument('--hold-timeout-s', type=float, default=600.0)
    p.add_argument('--reliable-input', action='store_true',
                   help='publish frames with reliable QoS (default best effort, REP 2003)')
    p.add_argument('--output', type=Path, required=True)
    args = p.parse_args(argv)
    if args.cameras < 1 or args.width < 8 or args.height < 8 or args.rate_hz <= 0 \
            or args.frames < 1 or args.max_frames < 0 or args.window < 1:
        p.error('need cameras >= 1, width/height >= 8, rate-hz > 0, frames >= 1, '
                'max-frames >= 0, window >= 1')
    return args


class _Ledger:
    """Frames sent and labels received, keyed by (camera, stamp_ns); thread-safe."""

    def __init__(self, cameras: int) -> None:
        self.cameras = cameras
        self.cond = threading.Condition()
        self.sent: dict[tuple[int, int], int] = {}  # (cam, stamp_ns) -> send wall ns
        self.latency_ms: dict[tuple[int, int], float] = {}
        self.receive_ns: dict[tuple[int, int], int] = {}
        self.newest_received = [-1] * cameras  # per camera, newest stamp_ns received
        self.last_receive_ns = 0
        # The last gaps between consecutive labels of camera 0 (pacing of the closed loop).
        self.receive_gaps_ns: deque[int] = deque(maxlen=GAP_WINDOW)
        self._last_cam0_ns = 0

    def on_labels(self, cam: int, msg: Any) -> None:
        now_ns = time.time_ns()
        stamp = stamp_ns(msg)
        with self.cond:
            key = (cam, stamp)
            if key in self.sent and key not in self.latency_ms:
                self.latency_ms[key] = (now_ns - stamp) / 1e6
                self.receive_ns[key] = now_ns
            self.newest_received[cam] = max(self.newest_received[cam], stamp)
            self.last_receive_ns = now_ns
            if cam == 0:
                if self._last_cam0_ns:
                    self.receive_gaps_ns.append(now_ns - self._last_cam0_ns)
                self._last_cam0_ns = now_ns
            self.cond.notify_all()

    def recent_gap_ns(self) -> int:
        """Return the median of the last GAP_WINDOW gaps between labels (0 until known)."""
        with self.cond:
            gaps = list(self.receive_gaps_ns)
        return int(np.median(gaps)) if len(gaps) == GAP_WINDOW else 0

    def settled(self, stamp_ns: int) -> bool:
        """Return whether every camera's frame of this tick was received or overtaken."""
        return all((c, stamp_ns) in self.latency_ms or self.newest_received[c] > stamp_ns
                   for c in range(self.cameras))

    def summary(self, stamps: list[int], start_ns: int) -> dict[str, Any]:
        """Return sent/received/dropped counts, latency percentiles and frames/s for a phase."""
        with self.cond:
            keys = [(c, s) for s in stamps for c in range(self.cameras)]
            lat = [self.latency_ms[k] for k in keys if k in self.latency_ms]
            last = max((self.receive_ns[k] for k in keys if k in self.receive_ns), default=0)
        sent, received = len(keys), len(lat)
        duration_s = (last - start_ns) / 1e9 if received else 0.0
        out: dict[str, Any] = {'sent': sent, 'received': received, 'dropped': sent - received,
                               'duration_s': duration_s,
                               'fps': received / duration_s if duration_s > 0 else 0.0}
        out['latency_series_ms'] = [round(v, 3) for v in lat]  # in send order
        if lat:
            arr = np.asarray(lat)
            out.update({'latency_p50_ms': float(np.percentile(arr, 50)),
                        'latency_p95_ms': float(np.percentile(arr, 95)),
                        'latency_p99_ms': float(np.percentile(arr, 99)),
                        'latency_mean_ms': float(arr.mean()),
                        'latency_max_ms': float(arr.max())})
        return out


class _NodeCounters:
    """The segmentation node's per-camera frame counters, as last seen on /diagnostics."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        self.cond = threading.Condition()
        self.latest: dict[str, dict[str, int]] = {}
        self.newest_stamp_ns = 0

    def on_diagnostics(self, msg: Any) -> None:
        with self.cond:
            self.newest_stamp_ns = max(self.newest_stamp_ns, stamp_ns(msg))
            for status in msg.status:
                topic = next((t for t in self.topics if status.name.endswith(': ' + t)), None)
                if topic is None:
                    continue
                values = {kv.key: kv.value for kv in status.values}
                try:
                    self.latest[topic] = {k: int(values[k]) for k in NODE_COUNTERS}
                except (KeyError, ValueError):
                    continue
            self.cond.notify_all()

    def snapshot(self, timeout_s: float) -> dict[str, int] | None:
        """Wait for /diagnostics stamped after now; return counters summed over the cameras."""
        now_ns = time.time_ns()  # the node stamps with the same (system) clock
        with self.cond:
            self.cond.wait_for(lambda: self.newest_stamp_ns > now_ns, timeout_s)
            if len(self.latest) < len(self.topics):
                return None
            return {k: sum(c[k] for c in self.latest.values()) for k in NODE_COUNTERS}


def counter_delta(before: dict[str, int] | None,
                  after: dict[str, int] | None) -> dict[str, int] | None:
    """Return the node's counts during a phase (None when /diagnostics was not seen)."""
    if before is None or after is None:
        return None
    return {k: after[k] - before[k] for k in NODE_COUNTERS}


class BenchDriver:
    """Publishers for N camera topics and subscribers for their labels, spun in a thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('seg_bench_driver', context=self.context)
        reliability = ReliabilityPolicy.RELIABLE if args.reliable_input \
            else ReliabilityPolicy.BEST_EFFORT
        in_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
        out_qos = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                             reliability=ReliabilityPolicy.RELIABLE)
        self.ledger = _Ledger(args.cameras)
        self.node_counters = _NodeCounters([f'cam{c}/image_raw' for c in range(args.cameras)])
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.node_counters.on_diagnostics, 10)
        self.publishers = []
        self.label_topics = []
        self.messages = []
        rng = np.random.default_rng(0)
        for cam in range(args.cameras):
            self.publishers.append(self.node.create_publisher(Image, f'cam{cam}/image_raw',
                                                              in_qos))
            topic = f'cam{cam}/segmentation/labels'
            self.label_topics.append(topic)
            # Raw: only the header is read (decode_image views the pixels, copies nothing).
            self.node.create_subscription(
                Image, topic, lambda raw, c=cam: self.ledger.on_labels(c, decode_image(raw)),
                out_qos, raw=True)
            # Blocky random content (16 px cells): regions like a scene, not white noise.
            cells = rng.integers(0, 256, (args.height // 16 + 1, args.width // 16 + 1, 3),
                                 dtype=np.uint8)
            rgb = np.ascontiguousarray(np.kron(cells, np.ones((16, 16, 1), np.uint8))
                                       [:args.height, :args.width])
            # Encoded once and restamped per tick, as a camera driver with loaned messages
            # would: the driver's own CPU shares this machine with the node it measures.
            header = CdrHeader(CdrStamp(0, 0), f'cam{cam}_optical_frame')
            self.messages.append(bytearray(encode_image(rgb, 'rgb8', header)))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, name='spin', daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except (ExternalShutdownException, rclpy.executors.ShutdownException):
            pass

    # --- phases
    def wait_for_discovery(self) -> float:
        """Wait until the node matched every camera and labels topic; return seconds waited."""
        start = time.monotonic()
        deadline = start + self.args.discovery_timeout_s
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() >= 1 for p in self.publishers) and \
                    all(self.node.count_publishers(t) >= 1 for t in self.label_topics):
                return time.monotonic() - start
            time.sleep(0.05)
        raise DriverError(f'segmentation node not discovered in {self.args.discovery_timeout_s}'
                          ' s (no subscriber on cam*/image_raw or publisher of labels)')

    def _send_tick(self) -> int:
        stamp_ns = time.time_ns()
        with self.ledger.cond:
            for cam in range(self.args.cameras):
                self.ledger.sent[(cam, stamp_ns)] = stamp_ns
        sec, nanosec = divmod(stamp_ns, 1_000_000_000)
        for pub, raw in zip(self.publishers, self.messages):
            restamp(raw, sec, nanosec)
            pub.publish(bytes(raw))
        return stamp_ns

    def _wait_settled(self, stamp_ns: int, timeout_s: float) -> bool:
        with self.ledger.cond:
            return self.ledger.cond.wait_for(lambda: self.ledger.settled(stamp_ns), timeout_s)

    def warmup(self) -> int:
        """Send frames in lock-step until `warmup_frames` came back; return how many were sent."""
        sent = got = 0
        deadline = time.monotonic() + self.args.frame_timeout_s * 3
        while got < self.args.warmup_frames:
            if time.monotonic() > deadline:
                raise DriverError(f'no labels came back during warm-up ({sent} frames sent in '
                                  f'{self.args.frame_timeout_s * 3:.0f} s)')
            stamp = self._send_tick()
            sent += 1
            # Best-effort input can lose the first frames while discovery settles: resend.
            if self._wait_settled(stamp, 2.0):
                got += 1
        return sent

    def fixed_rate(self) -> dict[str, Any]:
        """Send `frames` ticks at `rate_hz`, then drain; return the phase summary."""
        period_s = 1.0 / self.args.rate_hz
        stamps = []
        start_ns = time.time_ns()
        t0 = time.monotonic()
        for i in range(self.args.frames):
            delay = t0 + i * period_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stamps.append(self._send_tick())
        self._drain(stamps)
        return {'rate_hz': self.args.rate_hz, **self.ledger.summary(stamps, start_ns)}

    def max_rate(self) -> dict[str, Any]:
        """Run a closed loop that keeps at most `window` ticks in flight; return the phase summary.

        A tick that has not settled `loss_timeout_s` after it was sent counts as lost (best
        effort input can lose a frame), so the loop goes on; the phase stops early (`stalled`) when
        no labels at all arrived for `frame_timeout_s`.
        """
        stamps: list[int] = []
        in_flight: list[int] = []
        start_ns = time.time_ns()
        loss_ns = int(self.args.loss_timeout_s * 1e9)
        stalled = False
        while len(stamps) < self.args.max_frames:
            with self.ledger.cond:
                self.ledger.cond.wait_for(
                    lambda: sum(not self.ledger.settled(s) for s in in_flight)
                    < self.args.window, self.args.loss_timeout_s)
                now_ns = time.time_ns()
                in_flight = [s for s in in_flight
                             if not self.ledger.settled(s) and now_ns - s < loss_ns]
                silent_s = (now_ns - max(self.ledger.last_receive_ns, start_ns)) / 1e9
            if silent_s > self.args.frame_timeout_s:
                print(f'max rate: no labels for {silent_s:.0f} s; phase stopped', flush=True)
                stalled = True
                break
            if len(in_flight) >= self.args.window:
                continue
            if stamps:
                pause_s = (stamps[-1] + self.ledger.recent_gap_ns() // 2 - time.time_ns()) / 1e9
                if pause_s > 0:
                    time.sleep(pause_s)
            stamp = self._send_tick()
            stamps.append(stamp)
            in_flight.append(stamp)
        self._drain(stamps)
        return {'window': self.args.window, 'stalled': stalled,
                **self.ledger.summary(stamps, start_ns)}

    def with_node_counters(self, phase: Any) -> dict[str, Any]:
        """Run a phase; add the node's received/published/dropped counts during it."""
        timeout_s = self.args.diagnostics_timeout_s
        before = self.node_counters.snapshot(timeout_s)
        result = phase()
        # Let the last frames of the phase reach the counters before the closing snapshot.
        return {**result, 'node': counter_delta(before, self.node_counters.snapshot(timeout_s))}

    def hold(self, point: str) -> None:
        """Wait at `point` until the benchmark says go (no-op without --hold-dir)."""
        if self.args.hold_dir is None:
            return
        (self.args.hold_dir / f'{point}.ready').touch()
        go = self.args.hold_dir / f'{point}.go'
        deadline = time.monotonic() + self.args.hold_timeout_s
        while not go.exists():
            if time.monotonic() > deadline:
                raise DriverError(f'no go for {point} in {self.args.hold_timeout_s:.0f} s')
            time.sleep(0.02)

    def _drain(self, stamps: list[int]) -> None:
        """Wait until the last tick settled, at most frame_timeout_s."""
        if stamps:
            self._wait_settled(stamps[-1], self.args.frame_timeout_s)

    def close(self) -> None:
        """Stop spinning and shut this process's ROS context down."""
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
        self._spinner.join(timeout=2.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run all phases and return the result document."""
    driver = BenchDriver(args)
    try:
        discovery_s = driver.wait_for_discovery()
        warmup_sent = driver.warmup()
        print(f'discovery {discovery_s:.1f} s, warm-up frames sent {warmup_sent}', flush=True)
        driver.hold(HOLD_POINTS[0])
        fixed = driver.with_node_counters(driver.fixed_rate)
        print(f'fixed rate: {json.dumps(fixed)}', flush=True)
        driver.hold(HOLD_POINTS[1])
        maximum = driver.with_node_counters(driver.max_rate) if args.max_frames else None
        print(f'max rate: {json.dumps(maximum)}', flush=True)
        driver.hold(HOLD_POINTS[2])
    finally:
        driver.close()
    return {'version': RESULT_VERSION, 'cameras': args.cameras,
            'frame_hw': [args.height, args.width], 'discovery_s': discovery_s,
            'warmup_sent': warmup_sent,
            'input_qos': 'reliable' if args.reliable_input else 'best_effort',
            'fixed_rate': fixed, 'max_rate': maximum}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the driver; write JSON to --output; exit 1 with a one-line reason on failure."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    try:
        result = run(args)
    except KeyboardInterrupt:
        return 130
    except DriverError as exc:
        print(f'bench_driver: error: {exc}', file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix('.tmp')
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
