"""Turn Ctrl-C (SIGINT) and SIGTERM into a stop flag that long loops poll between steps.

A KeyboardInterrupt can land between any two bytecodes, e.g. after a frame was counted but
before the loop moved on, so code that keeps books (frames processed / dropped) cannot finish
them reliably. With `StopSignals` the signal only sets a flag; the loop checks it where its
state is consistent. With `repeat_interrupts`, a second signal of the same kind raises
KeyboardInterrupt as usual, so a user can still abort something that does not poll the flag.
Without it (e.g. a recorder finalising its file while launch sends SIGINT twice) repeats are
ignored.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Sequence

__all__ = ['StopSignals']


class StopSignals:
    """Context manager: while active, `signals` set `requested` instead of interrupting.

    Handlers can only be installed from the main thread; elsewhere the manager is inert (the
    flag stays False and signals keep their previous behaviour).
    """

    def __init__(self, signals: Sequence[int] = (signal.SIGINT,), *,
                 repeat_interrupts: bool = True) -> None:
        self.signals = tuple(signals)
        self.repeat_interrupts = repeat_interrupts
        self.requested = False
        self.received: int | None = None  # the first signal that requested the stop
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: the first signal sets the flag, a repeated one may interrupt."""
        if self.requested:
            if self.repeat_interrupts and signum == self.received:
                raise KeyboardInterrupt
            return
        self.requested = True
        self.received = signum

    def is_set(self) -> bool:
        """Return True once a stop was requested (a callable to hand to polling loops)."""
        return self.requested

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self) for s in self.signals}
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
