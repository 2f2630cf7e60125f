"""A one-slot-per-key mailbox between ROS callbacks and a worker thread: queues never grow.

Callbacks put the newest message of each input; an unconsumed older one is replaced and counted
as dropped. The worker takes everything pending at once (one batch), so latency stays one frame.
"""

from __future__ import annotations

import threading
from typing import Generic, Hashable, TypeVar

T = TypeVar('T')


class LatestMailbox(Generic[T]):
    """Keep only the newest item per key until a consumer takes it."""

    def __init__(self) -> None:
        self._items: dict[Hashable, T] = {}
        self._cond = threading.Condition()
        self._closed = False
        self.dropped: dict[Hashable, int] = {}

    def put(self, key: Hashable, item: T) -> bool:
        """Store `item` for `key`; return True when it replaced one nobody took (a drop)."""
        with self._cond:
            replaced = key in self._items
            if replaced:
                self.dropped[key] = self.dropped.get(key, 0) + 1
            self._items[key] = item
            self._cond.notify_all()
            return replaced

    def take(self, timeout_s: float) -> dict[Hashable, T]:
        """Wait up to `timeout_s` for items; return and remove all pending ones ({} if none)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or bool(self._items), timeout=timeout_s)
            items, self._items = self._items, {}
            return items

    def wait_closed(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s` unless the mailbox is closed; return True if it is closed."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout=timeout_s)

    def close(self) -> None:
        """Wake the consumer for good; later takes return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Return True once close() was called."""
        return self._closed

    def total_dropped(self) -> int:
        """Return the number of items replaced before anyone took them, all keys together."""
        with self._cond:
            return sum(self.dropped.values())
