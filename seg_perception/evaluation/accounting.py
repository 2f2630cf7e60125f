"""Account for every input frame of an evaluation (processed, or dropped with a reason).

The invariant a report relies on: frames in = processed + dropped, and the dropped frames are
split by reason (the reasons' counts add up to `dropped`). Latency figures are percentiles of
per-frame milliseconds; throughput is processed frames over the wall time they span.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ['AccountingError', 'DROP_REASONS', 'FrameAccounting', 'latency_summary',
           'throughput_fps']

#: reason -> what it means, for reports
DROP_REASONS = {
    'superseded': 'the segmentation node keeps only the newest frame; a newer one arrived '
                  'before this one was processed',
    'in_flight_at_stop': 'no output before the run stopped (the last frames of a run)',
    'bad_input': 'the frame could not be decoded or segmented',
    'interrupted': 'the run was interrupted (Ctrl-C) before this frame was processed',
}


class AccountingError(ValueError):
    """Raised when a frame is accounted twice or with an unknown status."""


@dataclass
class FrameAccounting:
    """Per-frame fate of the input frames: processed, or dropped with a reason."""

    processed: int = 0
    reasons: Counter = field(default_factory=Counter)
    _seen: set = field(default_factory=set, repr=False)

    def add_processed(self, key: Any) -> None:
        """Count the frame `key` (a stamp, an index) as processed."""
        self._claim(key)
        self.processed += 1

    def add_dropped(self, key: Any, reason: str) -> None:
        """Count the frame `key` as dropped for `reason` (see DROP_REASONS)."""
        if not reason:
            raise AccountingError('a dropped frame needs a reason')
        self._claim(key)
        self.reasons[reason] += 1

    def __contains__(self, key: Any) -> bool:
        """Return True if the frame `key` has been accounted already."""
        return key in self._seen

    def _claim(self, key: Any) -> None:
        if key in self._seen:
            raise AccountingError(f'frame {key!r} is accounted twice')
        self._seen.add(key)

    @property
    def frames_in(self) -> int:
        """Return the number of accounted input frames."""
        return self.processed + self.dropped

    @property
    def dropped(self) -> int:
        """Return the number of dropped frames (all reasons)."""
        return int(sum(self.reasons.values()))

    def summary(self) -> dict[str, Any]:
        """Return frames in/processed/dropped and the dropped counts by reason (JSON-friendly)."""
        return {'frames_in': self.frames_in, 'frames_processed': self.processed,
                'frames_dropped': self.dropped,
                'dropped_by_reason': dict(sorted(self.reasons.items()))}


def check_accounting(summary: dict[str, Any]) -> None:
    """Raise AccountingError unless in = processed + dropped and the reasons add up."""
    if summary['frames_in'] != summary['frames_processed'] + summary['frames_dropped']:
        raise AccountingError(f'frames in {summary["frames_in"]} != processed '
                              f'{summary["frames_processed"]} + dropped '
                              f'{summary["frames_dropped"]}')
    by_reason = sum(summary.get('dropped_by_reason', {}).values())
    if by_reason != summary['frames_dropped']:
        raise AccountingError(f'dropped reasons add up to {by_reason}, not '
                              f'{summary["frames_dropped"]}')


def latency_summary(latencies_ms: Sequence[float] | Iterable[float]) -> dict[str, Any]:
    """Return count, mean, p50, p95, p99 and max of latencies in ms (None when there are none)."""
    values = np.asarray(list(latencies_ms), dtype=np.float64)
    if values.size == 0:
        return {'count': 0, 'mean_ms': None, 'p50_ms': None, 'p95_ms': None, 'p99_ms': None,
                'max_ms': None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {'count': int(values.size), 'mean_ms': round(float(values.mean()), 2),
            'p50_ms': round(float(p50), 2), 'p95_ms': round(float(p95), 2),
            'p99_ms': round(float(p99), 2), 'max_ms': round(float(values.max()), 2)}


def throughput_fps(times_ns: Sequence[int], *, span_s: float | None = None) -> float | None:
    """Return frames per second of output events at `times_ns` (or over `span_s` when given)."""
    count = len(times_ns)
    if span_s is not None:
        return round(count / span_s, 3) if span_s > 0 and count else None
    if count < 2:
        return None
    span = (max(times_ns) - min(times_ns)) * 1e-9
    return round((count - 1) / span, 3) if span > 0 else None
