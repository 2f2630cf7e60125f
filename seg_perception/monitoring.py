"""Counters and rate meters behind the nodes' /diagnostics, kept ROS-free so they are testable."""

from __future__ import annotations

from collections import deque
import threading
import time

import numpy as np


class RateMeter:
    """Measure an event rate in Hz over a sliding time window."""

    def __init__(self, *, window_s: float = 2.0) -> None:
        if window_s <= 0:
            raise ValueError(f'window_s must be positive, got {window_s}')
        self.window_ns = int(window_s * 1e9)
        self._times_ns: deque[int] = deque()
        self._lock = threading.Lock()
        self.total = 0
        self.last_ns: int | None = None

    def tick(self, now_ns: int | None = None) -> None:
        """Record one event (now, in monotonic nanoseconds, unless given)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            self._times_ns.append(now_ns)
            self.total += 1
            self.last_ns = now_ns
            self._trim(now_ns)

    def rate_hz(self, now_ns: int | None = None) -> float:
        """Return events per second over the window ending now."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            self._trim(now_ns)
            return len(self._times_ns) * 1e9 / self.window_ns

    def seconds_since_last(self, now_ns: int | None = None) -> float | None:
        """Return seconds since the last event, or None if there was none."""
        if self.last_ns is None:
            return None
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        return (now_ns - self.last_ns) / 1e9

    def _trim(self, now_ns: int) -> None:
        while self._times_ns and now_ns - self._times_ns[0] > self.window_ns:
            self._times_ns.popleft()


class LatencyStats:
    """Keep the last N durations (milliseconds) and report percentiles."""

    def __init__(self, *, size: int = 200) -> None:
        self._values_ms: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value_ms: float) -> None:
        """Record one duration in milliseconds."""
        with self._lock:
            self._values_ms.append(float(value_ms))

    def percentile(self, q: float) -> float:
        """Return the q-th percentile in milliseconds (NaN when empty)."""
        with self._lock:
            if not self._values_ms:
                return float('nan')
            return float(np.percentile(np.fromiter(self._values_ms, float), q))

    def mean(self) -> float:
        """Return the mean in milliseconds (NaN when empty)."""
        with self._lock:
            return float(np.mean(self._values_ms)) if self._values_ms else float('nan')


class ProblemCounter:
    """Count problems by reason, and say which reasons are new so each is logged once."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last_message: dict[str, str] = {}
        self._lock = threading.Lock()

    def report(self, reason: str, message: str = '') -> bool:
        """Count one problem; return True the first time this reason is seen."""
        with self._lock:
            first = reason not in self.counts
            self.counts[reason] = self.counts.get(reason, 0) + 1
            self.last_message[reason] = message
            return first

    def total(self) -> int:
        """Return the number of problems counted, all reasons together."""
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        """Return a copy of the counts by reason."""
        with self._lock:
            return dict(self.counts)


class StampGaps:
    """Estimate frames lost before they reached us from gaps in a camera's header stamps.

    A camera stamps its frames at a steady period; a frame lost in transport (a best-effort
    subscription over UDP drops fragmented large frames) leaves a gap of two or more periods.
    The period is the 10th percentile of the recent stamp differences (robust to losses of up to
    ~80 %), and each gap of k periods counts k - 1 lost frames. Backward or huge jumps (a clock
    reset, a bag loop) are not counted.
    """

    def __init__(self, *, size: int = 100, max_gap_periods: int = 20) -> None:
        self._gaps_ns: deque[int] = deque(maxlen=size)
        self._last_ns: int | None = None
        self._lock = threading.Lock()
        self.max_gap_periods = max_gap_periods
        self.lost = 0
        self.seen = 0

    def add(self, stamp_ns: int) -> None:
        """Record the header stamp (nanoseconds) of one received frame."""
        with self._lock:
            self.seen += 1
            last, self._last_ns = self._last_ns, stamp_ns
            if last is None or stamp_ns <= last:
                return
            gap = stamp_ns - last
            self._gaps_ns.append(gap)
            if len(self._gaps_ns) < 5:
                return
            period = float(np.percentile(np.asarray(self._gaps_ns), 10))
            periods = int(round(gap / period)) if period > 0 else 1
            if 2 <= periods <= self.max_gap_periods:
                self.lost += periods - 1

    def lost_share(self) -> float:
        """Return the estimated share of the camera's frames that never arrived (0..1)."""
        with self._lock:
            total = self.seen + self.lost
            return self.lost / total if total else 0.0
