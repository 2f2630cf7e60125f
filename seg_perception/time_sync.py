"""Approximate time synchronisation of several message streams (message_filters' role, ROS-free).

Follows the Python message_filters.ApproximateTimeSynchronizer: each input keeps a queue of at
most `queue_size` messages keyed by stamp; when a message arrives, the closest candidates of the
other inputs within `slop_ns` of it are combined, and the first combination whose stamps all lie
within `slop_ns` of each other is emitted. Differences from message_filters, on purpose:
the slop test is inclusive (so `slop_ns=0` means exact matching), and once a set is emitted the
older messages of every input are dropped (they can no longer be part of an in-order set), as
are late messages older than the last emitted stamp of their input. Dropped messages are counted.

A stamp further than `max_jump_ns` from the newest one seen (a camera clock jump after NTP, a bag
loop restarting, one frame stamped in the far future) resets every queue instead of poisoning
the synchronizer for good (later normal stamps would all be "too late"); resets are counted in
`stamp_jumps`. A reset needs two messages beyond the jump: a single straggler from before it is
dropped instead.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from typing import Any, Callable


def stamp_ns(msg: Any) -> int:
    """Return a message's header stamp in nanoseconds (any object with header.stamp)."""
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


class TimeSyncError(ValueError):
    """Invalid synchroniser settings or input."""


class ApproximateTimeSynchronizer:
    """Emit one message per input whose stamps lie within `slop_ns` of each other."""

    def __init__(self, *, num_inputs: int, queue_size: int, slop_ns: int,
                 callback: Callable[..., Any], max_jump_ns: int | None = None) -> None:
        """Check the settings; `callback(*msgs)` gets one message per input, in input order.

        `max_jump_ns`: largest forward or backward stamp jump that is not a reset (None: off).
        """
        if int(num_inputs) < 2:
            raise TimeSyncError(f'num_inputs must be >= 2, got {num_inputs}')
        if int(queue_size) < 1:
            raise TimeSyncError(f'queue_size must be >= 1, got {queue_size}')
        if int(slop_ns) < 0:
            raise TimeSyncError(f'slop_ns must be >= 0, got {slop_ns}')
        if not callable(callback):
            raise TimeSyncError(f'callback must be callable, got {callback!r}')
        if max_jump_ns is not None and int(max_jump_ns) <= int(slop_ns):
            raise TimeSyncError(f'max_jump_ns must be > slop_ns ({slop_ns}), got {max_jump_ns}')
        self.max_jump_ns = None if max_jump_ns is None else int(max_jump_ns)
        self.stamp_jumps = 0
        self._newest_ns: int | None = None
        self._pending_jump: tuple[int, int, Any] | None = None    # (stamp, input, message)
        self.num_inputs = int(num_inputs)
        self.queue_size = int(queue_size)
        self.slop_ns = int(slop_ns)
        self._callback = callback
        self._lock = threading.Lock()
        # per input: sorted stamps and stamp -> message
        self._stamps: list[list[int]] = [[] for _ in range(self.num_inputs)]
        self._messages: list[dict[int, Any]] = [{} for _ in range(self.num_inputs)]
        self._last_emitted_ns: list[int | None] = [None] * self.num_inputs
        self.emitted = 0
        self.dropped = [0] * self.num_inputs

    def add(self, input_index: int, stamp_ns: int, msg: Any) -> bool:
        """Queue `msg` of input `input_index`; call the callback and return True on a match."""
        if not 0 <= input_index < self.num_inputs:
            raise TimeSyncError(
                f'input_index {input_index} out of range for {self.num_inputs} inputs')
        stamp_ns = int(stamp_ns)
        with self._lock:
            matched = self._add_locked(input_index, stamp_ns, msg)
        if matched is None:
            return False
        self._callback(*matched)
        return True

    def queued(self, input_index: int) -> int:
        """Return how many messages of an input wait for partners."""
        with self._lock:
            return len(self._stamps[input_index])

    def _reset_locked(self) -> None:
        """Forget every queued message and emitted stamp (dropping the queued ones)."""
        for index in range(self.num_inputs):
            self.dropped[index] += len(self._stamps[index])
            self._stamps[index].clear()
            self._messages[index].clear()
            self._last_emitted_ns[index] = None
        self._newest_ns = None

    def _add_locked(self, index: int, stamp_ns: int, msg: Any) -> tuple[Any, ...] | None:
        newest = self._newest_ns
        if (self.max_jump_ns is not None and newest is not None
                and abs(stamp_ns - newest) > self.max_jump_ns):
            pending = self._pending_jump
            if pending is None or abs(stamp_ns - pending[0]) > self.max_jump_ns:
                # One message far from the others may be a straggler: hold it until a second
                # message confirms the jump (a new clock epoch sends a whole set).
                if pending is not None:
                    self.dropped[pending[1]] += 1
                self._pending_jump = (stamp_ns, index, msg)
                return None
            self._pending_jump = None
            self.stamp_jumps += 1
            self._reset_locked()
            self._newest_ns = pending[0]
            self._match_locked(*pending)         # cannot match alone: the queues are empty
        elif self._pending_jump is not None:
            self.dropped[self._pending_jump[1]] += 1    # it was a straggler after all
            self._pending_jump = None
        self._newest_ns = stamp_ns if self._newest_ns is None else max(self._newest_ns, stamp_ns)
        return self._match_locked(stamp_ns, index, msg)

    def _match_locked(self, stamp_ns: int, index: int, msg: Any) -> tuple[Any, ...] | None:
        last = self._last_emitted_ns[index]
        if last is not None and stamp_ns <= last:
            self.dropped[index] += 1  # too late: its input already emitted a newer set
            return None
        stamps, messages = self._stamps[index], self._messages[index]
        if stamp_ns in messages:
            self.dropped[index] += 1  # same stamp twice: the newer message replaces the older
        else:
            bisect.insort(stamps, stamp_ns)
        messages[stamp_ns] = msg
        while len(stamps) > self.queue_size:
            del messages[stamps.pop(0)]
            self.dropped[index] += 1
        if stamp_ns not in messages:
            return None
        candidates = []
        for other in range(self.num_inputs):
            if other == index:
                continue
            near = [s for s in self._stamps[other] if abs(s - stamp_ns) <= self.slop_ns]
            if not near:
                return None
            candidates.append(sorted(near, key=lambda s: abs(s - stamp_ns)))
        for combination in itertools.product(*candidates):
            chosen = list(combination)
            chosen.insert(index, stamp_ns)
            if max(chosen) - min(chosen) <= self.slop_ns:
                return self._emit_locked(chosen)
        return None

    def _emit_locked(self, chosen: list[int]) -> tuple[Any, ...]:
        result = []
        for index, stamp in enumerate(chosen):
            stamps, messages = self._stamps[index], self._messages[index]
            position = bisect.bisect_left(stamps, stamp)
            for older in stamps[:position]:
                del messages[older]
            self.dropped[index] += position
            del stamps[:position + 1]
            result.append(messages.pop(stamp))
            self._last_emitted_ns[index] = stamp
        self.emitted += 1
        return tuple(result)
