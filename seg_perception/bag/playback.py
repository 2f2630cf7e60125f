"""Bag playback logic shared by the player node: timing, topic selection, remapping."""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Callable, Iterable, Iterator, Sequence

from seg_perception.bag.reader import BagError, BagMessage, BagReader

__all__ = ['PlaybackClock', 'loop_period_ns', 'parse_remaps', 'play_messages']


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """Return {from: to} of 'from:=to' strings; raise BagError naming a malformed one."""
    remaps = {}
    for item in items:
        source, sep, target = item.partition(':=')
        if not sep or not source or not target:
            raise BagError(f'malformed remap {item!r}; expected /from:=/to')
        remaps[source] = target
    return remaps


@dataclass
class PlaybackClock:
    """Map bag log times to wall-clock deadlines at a rate factor, and sleep until them."""

    rate: float = 1.0
    now_s: Callable[[], float] = time.monotonic
    sleep_s: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.rate > 0.0:
            raise BagError(f'playback rate must be > 0, got {self.rate}')
        self._origin: tuple[int, float] | None = None

    def restart(self) -> None:
        """Forget the time origin: the next message plays at once."""
        self._origin = None

    def next_pass(self, period_ns: int) -> None:
        """Shift the origin by one pass of `period_ns` bag time, for looping at the bag's pace."""
        if self._origin is not None:
            first_ns, start_s = self._origin
            self._origin = (first_ns, start_s + max(0, int(period_ns)) * 1e-9 / self.rate)

    def deadline_s(self, log_time_ns: int) -> float:
        """Return the wall time at which the message logged at `log_time_ns` is due."""
        if self._origin is None:
            self._origin = (int(log_time_ns), self.now_s())
        first_ns, start_s = self._origin
        return start_s + (int(log_time_ns) - first_ns) * 1e-9 / self.rate

    def bag_time_ns(self) -> int | None:
        """Return the bag time playback is at now (what /clock shows); None before it starts.

        As `ros2 bag play --clock`: the time runs on between messages at `rate`, from the first
        message's log time. Between loop passes it holds at the first message's time rather
        than running before it.
        """
        if self._origin is None:
            return None
        first_ns, start_s = self._origin
        return first_ns + max(0, int(round((self.now_s() - start_s) * self.rate * 1e9)))

    def wait_for(self, log_time_ns: int, *, should_stop: Callable[[], bool] = lambda: False,
                 max_sleep_s: float = 0.1) -> bool:
        """Sleep until the message is due, in short steps; return False if told to stop."""
        deadline = self.deadline_s(log_time_ns)
        while True:
            if should_stop():
                return False
            remaining = deadline - self.now_s()
            if remaining <= 0.0:
                return True
            self.sleep_s(min(remaining, max_sleep_s))


#: bag time of one pass when looping over a single message
SINGLE_MESSAGE_PERIOD_NS = 1_000_000_000


def loop_period_ns(first_ns: int, last_ns: int, count: int) -> int:
    """Return the bag time one loop pass lasts: its span plus one mean message gap."""
    if count < 2 or last_ns <= first_ns:
        return SINGLE_MESSAGE_PERIOD_NS
    span = last_ns - first_ns
    return span + span // (count - 1)


def play_messages(reader: BagReader, *, topics: Iterable[str] | None = None,
                  start_offset_ns: int = 0, loop: bool = False,
                  on_loop: Callable[[int], None] = lambda period_ns: None
                  ) -> Iterator[BagMessage]:
    """Yield the selected messages in log-time order, again and again when `loop` is set.

    Before each new pass `on_loop(period_ns)` gets the bag time a pass lasts (see
    `loop_period_ns`), so a PlaybackClock can keep a steady pace across passes.
    """
    selected = None if topics is None else reader.check_topics(topics)
    while True:
        count, first_ns, last_ns = 0, 0, 0
        for message in reader.messages(topics=selected, start_offset_ns=start_offset_ns):
            if count == 0:
                first_ns = message.log_time_ns
            count, last_ns = count + 1, message.log_time_ns
            yield message
        if not loop:
            return
        if count == 0:
            raise BagError(f'nothing to loop over in {str(reader.path)!r} after the start offset')
        on_loop(loop_period_ns(first_ns, last_ns, count))
