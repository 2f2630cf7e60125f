"""StopSignals: a signal sets a flag instead of interrupting; repeats interrupt only if asked.

Signals are sent in a child Python process, never to the pytest process: in a ROS install the
test process also holds launch's and rclpy's process-wide signal handling (launch_pytest runs
launches in it), and a SIGINT sent there is not this test's business. Each case is a small
script whose assertions decide its exit status.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

PRELUDE = textwrap.dedent("""
    import os, signal, threading
    from seg_perception.stop_signals import StopSignals

    def deliver(signum):
        os.kill(os.getpid(), signum)  # handled in the main thread before kill() returns
""")


def _run(body: str) -> None:
    """Run PRELUDE + body in a child interpreter; fail with its output unless it exits 0."""
    proc = subprocess.run([sys.executable, '-c', PRELUDE + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f'exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}'


def test_first_sigint_sets_the_flag_and_handlers_are_restored() -> None:
    _run("""
        before = signal.getsignal(signal.SIGINT)
        with StopSignals() as stop:
            assert not stop.is_set()
            deliver(signal.SIGINT)
            assert stop.is_set() and stop.received == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) is before
    """)


def test_a_repeated_signal_interrupts_only_when_asked() -> None:
    _run("""
        try:
            with StopSignals():
                deliver(signal.SIGINT)
                deliver(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError('the second SIGINT did not interrupt')
        with StopSignals((signal.SIGINT, signal.SIGTERM), repeat_interrupts=False) as stop:
            for _ in range(3):
                deliver(signal.SIGTERM)
            deliver(signal.SIGINT)
        assert stop.is_set() and stop.received == signal.SIGTERM
    """)


def test_outside_the_main_thread_it_leaves_handlers_alone() -> None:
    _run("""
        before = signal.getsignal(signal.SIGINT)
        seen = []

        def worker():
            with StopSignals() as stop:
                seen.append((signal.getsignal(signal.SIGINT), stop.is_set()))

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(timeout=10)
        assert seen == [(before, False)], seen
    """)
