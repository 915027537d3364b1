"""Counters and the sliding-window rate limit of the local market.

``SlidingWindowLimiter`` is what DexScreener does to a client: at most ``limit``
requests in any ``window_s`` seconds, then 429 with ``Retry-After``. It also
remembers the most requests it ever *received* in one window (429s included),
which is how a test proves a client stayed under the limit::

    limiter = SlidingWindowLimiter(limit=300, window_s=60.0, clock=clock)
    retry_after = limiter.hit()     # None: allowed; an int: answer 429
    assert limiter.max_in_window <= 300
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from app.clock import SYSTEM_CLOCK, Clock


class SlidingWindowLimiter:
    """At most ``limit`` accepted requests in any ``window_s``-second window.

    Example::

        limiter = SlidingWindowLimiter(2, 60.0, ManualClock())
        assert limiter.hit() is None and limiter.hit() is None
        assert limiter.hit() == 60        # third request: wait 60 s
    """

    def __init__(self, limit: int, window_s: float = 60.0, clock: Clock | None = None) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.window_s = window_s
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._accepted: deque[float] = deque()
        self._received: deque[float] = deque()
        self.max_in_window = 0

    def _expire(self, queue: deque[float], now: float) -> None:
        edge = now - self.window_s
        while queue and queue[0] <= edge:
            queue.popleft()

    def note(self) -> float:
        """Count one received request without deciding on it (e.g. during a 429 storm)."""
        now = self.clock.monotonic()
        self._expire(self._received, now)
        self._received.append(now)
        self.max_in_window = max(self.max_in_window, len(self._received))
        return now

    def hit(self) -> int | None:
        """Count one request; None if allowed, else the Retry-After seconds (>= 1)."""
        now = self.note()
        self._expire(self._accepted, now)
        if len(self._accepted) >= self.limit:
            return max(1, math.ceil(self._accepted[0] + self.window_s - now))
        self._accepted.append(now)
        return None

    def in_window(self) -> int:
        """Requests received in the current window."""
        self._expire(self._received, self.clock.monotonic())
        return len(self._received)


@dataclass
class MarketStats:
    """What the market saw. ``max_in_window`` counts every request received on the
    300/min endpoints in any 60 s window (429s included); compare it to the limit.

    Example::

        assert market.stats.served_429 == 0
        assert market.stats.max_in_window <= 300
        market.stats.requests["tokens"]        # by endpoint name
    """

    requests: Counter = field(default_factory=Counter)
    served_429: int = 0
    served_429_profiles: int = 0
    faults: Counter = field(default_factory=Counter)
    ws_connections: int = 0
    ws_open: int = 0
    ws_subscribers: int = 0
    migrations_sent: int = 0
    api_limiter: SlidingWindowLimiter | None = None
    in_flight: int = 0  # accepted requests being answered right now (rate-limited endpoints)
    max_in_flight: int = 0  # the most ever answered at once: how many a client kept in flight
    profiles_limiter: SlidingWindowLimiter | None = None

    def enter(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    @property
    def max_in_window(self) -> int:
        return self.api_limiter.max_in_window if self.api_limiter else 0

    @property
    def max_in_window_profiles(self) -> int:
        return self.profiles_limiter.max_in_window if self.profiles_limiter else 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "total_requests": self.total_requests,
            "served_429": self.served_429,
            "served_429_profiles": self.served_429_profiles,
            "max_in_window": self.max_in_window,
            "max_in_window_profiles": self.max_in_window_profiles,
            "max_in_flight": self.max_in_flight,
            "faults": dict(self.faults),
            "ws_connections": self.ws_connections,
            "ws_open": self.ws_open,
            "ws_subscribers": self.ws_subscribers,
            "migrations_sent": self.migrations_sent,
        }
