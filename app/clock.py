"""Injectable clocks.

Every component that needs the time takes a ``Clock`` so tests can move time
by hand instead of sleeping::

    clock = ManualClock(1_000.0)
    clock.advance(60)
    assert clock.time() == 1_060.0

Timestamps are epoch seconds (floats) everywhere, in memory and in the database.
"""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock epoch seconds."""

    def monotonic(self) -> float:
        """Monotonic seconds, for measuring durations."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._mono = 0.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds

    def set(self, now: float) -> None:
        self._mono += max(0.0, now - self._now)
        self._now = float(now)


SYSTEM_CLOCK = SystemClock()
