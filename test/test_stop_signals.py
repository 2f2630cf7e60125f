"""StopSignals: a signal sets a flag instead of interrupting; repeats interrupt only if asked."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from seg_perception.stop_signals import StopSignals


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)  # handled in the main thread before kill() returns to Python


def test_first_sigint_sets_the_flag_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        assert not stop.is_set()
        _deliver(signal.SIGINT)
        assert stop.is_set() and stop.received == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def test_a_repeated_signal_interrupts_only_when_asked() -> None:
    with pytest.raises(KeyboardInterrupt):
        with StopSignals():
            _deliver(signal.SIGINT)
            _deliver(signal.SIGINT)
    with StopSignals((signal.SIGINT, signal.SIGTERM), repeat_interrupts=False) as stop:
        for _ in range(3):
            _deliver(signal.SIGTERM)
        _deliver(signal.SIGINT)
    assert stop.is_set() and stop.received == signal.SIGTERM


def test_outside_the_main_thread_it_leaves_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def worker() -> None:
        with StopSignals() as stop:
            seen.append((signal.getsignal(signal.SIGINT), stop.is_set()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=10)
    assert seen == [(before, False)]
