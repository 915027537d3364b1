"""A smooth request limiter: evenly spaced slots, a small burst, and Retry-After pauses.

Unlike ``aiolimiter.AsyncLimiter(300, 60)`` (which lets all 300 go at once), this paces
requests at ``rate_per_min / 60`` per second (GCRA / virtual scheduling): each caller
reserves the next free slot and sleeps until it, so at most ``burst`` requests can ever
go early and any 60 s window holds at most ``floor(rate_per_min) + burst`` requests. Waiters
are served in arrival order, and waiting never blocks the event loop.

Given ``window_limit`` (the API's requests per 60 s), the limiter keeps that guarantee under
the limit whatever rate it is given, now or later (``set_rate_per_min``): the rate is capped
at ``window_limit - burst`` (and the burst at ``window_limit - 1``).

    limiter = RateLimiter(rate_per_min=291, burst=2)
    RateLimiter(300, burst=3, window_limit=300).rate_per_min   # 297.0: 297 + 3 <= 300
    await limiter.acquire()            # returns when this request may go
    limiter.pause_until(clock.monotonic() + retry_after)   # on a 429

Clock and sleep are injectable for tests (``ManualClock.monotonic`` + a fake sleep).
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Protocol, Self

from app.clock import SYSTEM_CLOCK, Clock

Sleep = Callable[[float], Awaitable[None]]


class Limiter(Protocol):
    """What the market client and the processor use of a limiter: ``RateLimiter`` here, or
    ``tokens.shared_limit.SharedRateLimiter`` (the same pacing, shared through Redis)."""

    acquired: int
    pauses: int

    @property
    def rate_per_min(self) -> float: ...

    @property
    def burst(self) -> int: ...

    def set_rate_per_min(self, rate_per_min: float) -> None: ...

    def pause_for(self, seconds: float) -> None: ...

    def delay(self) -> float: ...

    async def acquire(self) -> None: ...


class SlotWaiter:
    """The end of ``acquire`` both limiters share (this one and ``SharedRateLimiter``): sleep until
    the reserved slot, then keep it unless a Retry-After pause arrived meanwhile; and the
    ``async with limiter:`` form."""

    _clock: Clock
    _sleep: Sleep
    _paused_until: float
    acquired: int
    waited_s: float

    async def _wait_for_slot(self, wait: float) -> bool:
        """Sleep ``wait`` seconds; True when the slot stands, False when a pause moved us behind it."""
        if wait > 0:
            self.waited_s += wait
            await self._sleep(wait)
        if self._clock.monotonic() + 1e-9 >= self._paused_until:
            self.acquired += 1
            return True
        return False

    async def acquire(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class RateLimiter(SlotWaiter):
    """Smooth per-second pacing with a small burst and a pause for Retry-After.

        limiter = RateLimiter(291.0, burst=2)
        async with limiter:             # same as await limiter.acquire()
            await session.get(url)
    """

    def __init__(self, rate_per_min: float, *, burst: int = 2, clock: Clock = SYSTEM_CLOCK,
                 sleep: Sleep = asyncio.sleep, window_limit: float | None = None) -> None:
        if rate_per_min <= 0:
            raise ValueError("rate_per_min must be positive")
        if window_limit is not None and window_limit < 1:
            raise ValueError("window_limit must be at least 1 request per 60 s")
        self._clock = clock
        self._sleep = sleep
        self._burst = max(1, int(burst))
        self._max_rate = math.inf
        if window_limit is not None:
            limit = math.floor(window_limit)
            self._burst = min(self._burst, max(1, limit - 1))
            # floor(rate) + burst <= limit; a limit of 1 leaves a rate just under one per minute.
            self._max_rate = float(limit - self._burst) if limit >= 2 else 0.5
        self.window_limit = window_limit
        self._interval = 60.0 / min(rate_per_min, self._max_rate)
        self._tat = clock.monotonic()  # theoretical arrival time of the next request
        self._paused_until = 0.0
        self.acquired = 0
        self.waited_s = 0.0
        self.pauses = 0

    @property
    def rate_per_min(self) -> float:
        return 60.0 / self._interval

    @property
    def burst(self) -> int:
        return self._burst

    def set_rate_per_min(self, rate_per_min: float) -> None:
        """Change the pace; capped so that ``window_limit`` (if given) still holds."""
        if rate_per_min <= 0:
            raise ValueError("rate_per_min must be positive")
        self._interval = 60.0 / min(rate_per_min, self._max_rate)

    def pause_until(self, monotonic_t: float) -> None:
        """Hold every request until ``monotonic_t`` (e.g. now + Retry-After)."""
        if monotonic_t > self._paused_until:
            self._paused_until = monotonic_t
            self.pauses += 1
        # After a pause the budget restarts smoothly: no burst of the backlog at once.
        self._tat = max(self._tat, monotonic_t)

    def pause_for(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (a 429's Retry-After)."""
        self.pause_until(self._clock.monotonic() + max(0.0, seconds))

    def _reserve(self, now: float) -> float:
        """Reserve the next slot and return the time it starts."""
        earliest = self._tat - (self._burst - 1) * self._interval
        start = max(now, earliest, self._paused_until)
        self._tat = max(self._tat, start) + self._interval
        return start

    def delay(self) -> float:
        """Seconds a request made now would wait (without reserving)."""
        now = self._clock.monotonic()
        earliest = self._tat - (self._burst - 1) * self._interval
        return max(0.0, earliest - now, self._paused_until - now)

    async def acquire(self) -> None:
        while True:
            now = self._clock.monotonic()
            if await self._wait_for_slot(self._reserve(now) - now):
                return
