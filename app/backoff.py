"""The one backoff rule: exponential growth, a cap, and jitter.

Every retry loop in tokenwatch (market fetches, the websocket's reconnect, outbox rows,
Telegram polling, supervised loops) asks this module for its next delay::

    policy = Backoff(base_s=0.25, max_s=5.0)
    await asyncio.sleep(policy.delay(attempt))       # attempt 0, 1, 2, ... ; never above max_s

    policy.delay(3, jitter=False)                    # 2.0: base * 2**3, no randomness

``jitter`` spreads retries of many clients over ``[low, high]`` times the delay (full jitter
would let a delay be ~0, which hammers a recovering server); ``random`` is injectable so
tests are deterministic.
"""
from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_DOUBLINGS = 30  # 2**30 is already far past any cap; bounds the arithmetic for huge attempt counts


@dataclass(frozen=True)
class Backoff:
    """``delay(n) = min(max_s, base_s * factor**n) * uniform(jitter_low, jitter_high)``, at least ``min_s``."""

    base_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter_low: float = 0.5
    jitter_high: float = 1.0
    min_s: float = 0.0
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)

    def delay(self, attempt: int, *, jitter: bool = True) -> float:
        """Seconds to wait before retry number ``attempt`` (0 = the first retry)."""
        n = min(max(0, int(attempt)), MAX_DOUBLINGS)
        base = min(self.max_s, self.base_s * (self.factor ** n))
        if jitter:
            base *= self.jitter_low + (self.jitter_high - self.jitter_low) * self.random()
        return max(self.min_s, base)
