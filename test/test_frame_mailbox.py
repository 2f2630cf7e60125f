"""LatestMailbox: newest item per key, drops counted, consumer wakes on items or close."""

from __future__ import annotations

import threading
import time

from seg_perception.frame_mailbox import LatestMailbox


def test_newest_item_wins_and_replacements_are_counted() -> None:
    box: LatestMailbox[int] = LatestMailbox()
    assert not box.put('a', 1)
    assert box.put('a', 2)
    assert not box.put('b', 3)
    assert box.take(0.0) == {'a': 2, 'b': 3}
    assert box.dropped == {'a': 1} and box.total_dropped() == 1
    assert box.take(0.0) == {}


def test_take_waits_for_an_item_and_close_wakes_it() -> None:
    box: LatestMailbox[str] = LatestMailbox()
    threading.Timer(0.05, box.put, args=('x', 'frame')).start()
    assert box.take(5.0) == {'x': 'frame'}
    threading.Timer(0.05, box.close).start()
    start = time.monotonic()
    assert box.take(5.0) == {}
    assert time.monotonic() - start < 4.0 and box.closed
    assert box.wait_closed(0.0)
