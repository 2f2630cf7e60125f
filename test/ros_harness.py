"""Test harness for real ROS 2 integration tests: isolation, background executors, processes.

Every test process gets its own ROS_DOMAIN_ID and localhost-only discovery, so parallel runs on one
machine never see each other, and ROS logs go to build/ros_log instead of the home folder.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Sequence

from seg_perception.process_group import ros_arguments

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / 'build'
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


def isolate_ros_environment() -> int:
    """Give this test process a private DDS domain and local-only discovery; return the domain."""
    domain = int(os.environ.get('SEG_TEST_DOMAIN_ID', 0)) or 1 + os.getpid() % 100
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.pop('ROS_LOCALHOST_ONLY', None)
    log_dir = BUILD_DIR / 'ros_log'
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ['ROS_LOG_DIR'] = str(log_dir)
    os.environ.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    # exported graphs of the runtime backends go to build/, not the user's ~/.cache
    os.environ['SEG_PERCEPTION_CACHE'] = str(BUILD_DIR / 'cache')
    return domain


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout_s` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


class MessageCollector:
    """Store messages of one subscription (with their receive time) for assertions."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.receive_times_ns: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.messages.append(msg)
            self.receive_times_ns.append(time.monotonic_ns())

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)

    def wait_for(self, count: int, timeout_s: float) -> list[Any]:
        """Wait until `count` messages arrived; fail the test with a clear message otherwise."""
        if not wait_until(lambda: len(self) >= count, timeout_s):
            raise AssertionError(f'received {len(self)} of {count} messages in {timeout_s} s')
        with self._lock:
            return list(self.messages)


class RosTestNode:
    """An rclpy node spinning in a background thread with its own context.

    Use as a context manager; `subscribe()` returns a MessageCollector.
    """

    def __init__(self, name: str = 'test_probe') -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: B902 - context shut down while spinning
                if not self.context.ok():
                    return
                raise

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10) -> MessageCollector:
        """Subscribe to `topic` and collect what arrives."""
        collector = MessageCollector()
        self.node.create_subscription(msg_type, topic, collector, qos)
        return collector

    def wait_for_subscribers(self, publisher: Any, count: int = 1,
                             timeout_s: float = 10.0) -> None:
        """Wait until `publisher` is matched by `count` subscriptions (discovery done)."""
        if not wait_until(lambda: publisher.get_subscription_count() >= count, timeout_s):
            raise AssertionError(f'{publisher.topic_name}: no subscriber matched in {timeout_s} s')

    def wait_for_publishers(self, topic: str, count: int = 1, timeout_s: float = 10.0) -> None:
        """Wait until `topic` has `count` publishers."""
        if not wait_until(lambda: self.node.count_publishers(topic) >= count, timeout_s):
            raise AssertionError(f'{topic}: no publisher appeared in {timeout_s} s')

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self.context.ok():
            self._rclpy.shutdown(context=self.context)
        self._thread.join(timeout=2.0)

    def __enter__(self) -> 'RosTestNode':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NodeProcess:
    """A node run as a separate OS process (real DDS between processes), stopped with SIGINT."""

    def __init__(self, module: str, *, args: Sequence[str] = (),
                 params: dict[str, Any] | None = None, remaps: dict[str, str] | None = None,
                 name: str | None = None, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, '-m', module, *args, *ros_arguments(params=params, remaps=remaps)]
        log_dir = BUILD_DIR / 'test_logs'
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = name or module.rsplit('.', 1)[-1]
        self.log_path = log_dir / f'{stem}_{os.getpid()}_{time.monotonic_ns()}.log'
        self._log = open(self.log_path, 'wb')
        self.command = cmd
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})},
                                        cwd=REPO_ROOT)

    @property
    def output(self) -> str:
        """Return what the process printed so far."""
        if not self._log.closed:  # stop() closes it; the file stays readable
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def is_running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to exit by itself; return its exit status."""
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 10.0) -> int:
        """Send SIGINT (as Ctrl-C would), wait, kill if needed; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5.0)
                self._log.write(f'[test harness] no exit within {timeout_s} s of SIGINT; '
                                'killed\n'.encode())
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> 'NodeProcess':
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
