"""The in-flight limit for market requests: AIMD in the manner of Netflix's concurrency-limits,
bounded by Little's law. A pure law: samples in, a limit out; no clock, no I/O.

- Each drop (a 429, a timeout, a server error: every failed attempt of a batch counts, as each is
  a request) or a slow answer (over ``slow_share`` of the request timeout: about to time out)
  multiplies the limit by ``backoff`` (0.9).
- Any other sample adds 1, but only while the limit is being used (``inflight * 2 >= limit``):
  the limit never grows while the application itself (the database, the queue, the loop) is what
  holds the requests back. Below Little's-law need (after a latency step) it goes to the need at
  once: one answer at the new latency, not a dozen slow round trips of +1.
- The requests still out tell of a latency step before any of them answers: their median age
  (``observe_waiting``, once per processor run) is a lower bound on their hold time, and when it is
  above the smoothed hold time it counts as one (a lone straggler does not move a median).
- The limit never exceeds what the rate limiter can use: by Little's law the requests in flight
  needed to hold the limiter's pace are ``rate x hold time`` (``need``); the ceiling is that with
  ``headroom`` plus the limiter's burst (requests it lets go at once after a gap). The hold time
  is smoothed fast upwards (``rise``) and slowly downwards (``fall``), so a latency step lifts the
  ceiling at once and a short lull does not drop it.

    law = AimdLimit(initial=4)
    law.update(inflight=4, dropped=False, slow=False, hold_s=3.0, rate_per_s=4.85, burst=3)   # 15.0
    law.need(4.85)           # 14.6: requests in flight that hold 4.85/s at 3 s
    law.ceiling(4.85, 3)     # 22: ceil(14.6 x 1.25) + 3
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_DROPS_PER_SAMPLE = 10  # one batch's retries never count as more than this many drops


@dataclass
class AimdLimit:
    initial: float = 4.0
    minimum: int = 1
    maximum: int = 64
    backoff: float = 0.9
    headroom: float = 1.25
    rise: float = 0.5      # weight of a hold time above the average
    fall: float = 0.05     # weight of a hold time below it
    limit: float = field(init=False)
    hold_s: float | None = field(default=None, init=False)  # smoothed time a batch holds its slot

    def __post_init__(self) -> None:
        if not 0 < self.backoff < 1:
            raise ValueError("backoff must be within (0, 1)")
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        self.limit = float(min(self.maximum, max(self.minimum, self.initial)))

    def need(self, rate_per_s: float) -> float | None:
        """Little's law: requests in flight needed to hold ``rate_per_s`` (None before any sample)."""
        return None if self.hold_s is None or not rate_per_s > 0 else rate_per_s * self.hold_s

    def ceiling(self, rate_per_s: float, burst: int = 0) -> int:
        """The most in flight the rate limiter can use, with headroom; ``maximum`` before any sample."""
        need = self.need(rate_per_s)
        if need is None or not rate_per_s > 0:  # no sample, or no pace known yet
            return self.maximum
        return int(min(self.maximum, max(self.minimum, math.ceil(need * self.headroom) + max(0, burst))))

    def _observe_hold(self, hold_s: float) -> None:
        if not hold_s >= 0:  # NaN or negative: no evidence
            return
        if self.hold_s is None:
            self.hold_s = hold_s
            return
        weight = self.rise if hold_s > self.hold_s else self.fall
        self.hold_s += weight * (hold_s - self.hold_s)

    def observe_waiting(self, age_s: float, *, inflight: int, rate_per_s: float, burst: int = 0) -> float:
        """Requests still out: their median age is a lower bound on their hold time. Above the smoothed
        hold time it is a latency step seen a round trip before its first answer: the hold time rises
        to it (``rise``) and, while the limit is in use, the limit to Little's-law need. Returns the limit."""
        if not age_s > (self.hold_s or 0.0):
            return self.limit
        self._observe_hold(age_s)
        need = self.need(rate_per_s)
        if need is not None and inflight * 2 >= self.limit:
            self.limit = max(self.limit, float(math.ceil(need)))
        self.limit = min(self.limit, float(self.ceiling(rate_per_s, burst)))
        return self.limit

    def update(self, *, inflight: int, dropped: bool | int, slow: bool, hold_s: float, rate_per_s: float,
               burst: int = 0) -> float:
        """One finished batch (``dropped``: whether, or how many of its attempts, dropped); returns the
        new limit (a float: round it to use it)."""
        self._observe_hold(hold_s)
        drops = min(MAX_DROPS_PER_SAMPLE, int(dropped)) + int(slow and not dropped)
        if drops:
            self.limit = max(float(self.minimum), self.limit * self.backoff ** drops)
        elif inflight * 2 >= self.limit:
            # additive increase, but never slower than Little's law: below the need (a latency step),
            # the limit goes straight to it instead of one per answer over several slow round trips
            need = self.need(rate_per_s)
            self.limit = max(self.limit + 1.0, float(math.ceil(need)) if need is not None else 0.0)
        self.limit = min(self.limit, float(self.ceiling(rate_per_s, burst)))
        return self.limit

    def reset(self, value: float) -> None:
        """Take ``value`` as the current limit (an operator set it, or another controller did)."""
        self.limit = float(min(self.maximum, max(self.minimum, value)))
