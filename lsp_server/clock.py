"""Time for the feedback tracker: the event loop's, or a manual one that tests move forward.

Outcomes depend on time (a suggestion not accepted within 10 s is rejected; accepted text is
checked again after 30 s, 2 min and 5 min). Tests must not sleep through that, so the tracker
takes its clock as a parameter; `hintwise serve` uses the manual one only when the environment
says HINTWISE_TEST_CLOCK=1, and the test then advances it with `hintwise/_test/advanceClock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """Wall-clock time, timers on the running asyncio loop (the server's: every caller is a
    handler or a timer on it)."""

    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


class _ManualTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time that moves only when told to; due timers run in order as it moves."""

    def __init__(self, start: float | None = None):
        self._now = time.time() if start is None else start
        self._timers: list[tuple[float, int, _ManualTimer, Callable[[], None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer()
        heapq.heappush(self._timers, (self._now + delay, next(self._order), timer, callback))
        return timer

    def advance(self, seconds: float) -> int:
        """Move time forward, running every timer that falls due; returns how many ran."""
        target = self._now + seconds
        ran = 0
        while self._timers and self._timers[0][0] <= target:
            due, _, timer, callback = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not timer.cancelled:
                callback()
                ran += 1
        self._now = target
        return ran
