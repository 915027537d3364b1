"""Per-endpoint API statistics: requests, errors, 429s, timeouts, cache, latency percentiles.

Endpoints are named ``tokens_batch``, ``token_pairs`` and ``token_profiles``. The monitoring
package reads ``snapshot()`` to chart latency and error rates. Two views of the same requests:

- lifetime totals (``requests``, ``errors``, ``rate_limited``, ``timeouts``): counters since
  start, for Prometheus ``rate()``;
- a recent window (``window_s``, default the last 300 s on the injected clock): ``error_rate``,
  the ``window_*`` counts and the latency percentiles, so a fault that ended a few minutes
  ago no longer shows. Memory is bounded (at most ``max_events`` requests per endpoint);
- a latency histogram since start (``LATENCY_BUCKETS_S``, cumulative, for Prometheus'
  ``histogram_quantile``; answered requests only, timeouts are counted apart);
- the current failure streak, for outage alerts that must fire and clear fast (unlike the
  windowed error rate): ``failing_s`` is how long every attempt has been failing (from the
  first failure after the last good answer until now; 0 as soon as one answer is
  good, and 0 for fewer than ``STREAK_MIN_FAILURES`` failures or when the latest failure is older
  than the window), ``last_success_age_s`` the time since the last good answer. A 4xx other than
  429 is an answer (the API is up), so it ends a streak like a 2xx.

Percentiles are nearest-rank (``app.percentiles.percentile``, the one definition)::

    stats = ApiStats(clock=clock, window_s=300)
    stats.record("tokens_batch", latency_s=0.12, status=200)
    stats.record("tokens_batch", latency_s=10.0, timeout=True)
    snap = stats.snapshot()["tokens_batch"]
    snap.p95_s, snap.error_rate, snap.window_rate_limited, snap.rate_limited  # window, window, window, lifetime
"""
from __future__ import annotations

import bisect
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import NamedTuple

from app.clock import SYSTEM_CLOCK, Clock
from app.percentiles import percentile

WINDOW_S = 300.0
MAX_EVENTS = 10_000  # per endpoint: 300 s at 30 requests/s
STREAK_MIN_FAILURES = 3  # failed attempts in a row before ``failing_s`` counts (one retried request is not an outage)
ENDPOINTS = ("tokens_batch", "token_pairs", "token_profiles")
#: upper bounds (seconds) of the latency histogram's buckets; +Inf is implied
LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class RequestTally:
    """The attempts one task (and the tasks it starts) made, by outcome; see ``tally_requests``."""

    attempts: int = 0
    rate_limited: int = 0
    timeouts: int = 0
    errors: int = 0  # 5xx, connection errors, unreadable bodies


_TALLY: ContextVar[RequestTally | None] = ContextVar("tokenwatch_request_tally", default=None)


def tally_requests() -> RequestTally:
    """Count every attempt ``ApiStats.record`` sees from now on in this task (and in tasks it starts)
    into a new tally; call it at the start of a task of its own (``asyncio.create_task`` copies the
    context, so the tally never leaks to the caller)::

        async def batch():
            tally = tally_requests()
            await client.fetch_batch(mints)
            tally.rate_limited, tally.timeouts
    """
    tally = RequestTally()
    _TALLY.set(tally)
    return tally


class _Event(NamedTuple):
    at: float  # clock.monotonic()
    latency_s: float | None
    failed: bool
    rate_limited: bool
    timeout: bool


@dataclass
class EndpointStats:
    """Lifetime counters of one endpoint plus its recent requests (bounded)."""

    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    timeouts: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    last_status: int | None = None
    last_error: str | None = None
    events: deque[_Event] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))  # per bucket, +Inf last
    latency_sum_s: float = 0.0
    last_ok_at: float | None = None  # clock.monotonic() of the last answer (2xx, or 4xx other than 429)
    streak_start_at: float | None = None  # first failure after the last answer (None: not failing)
    streak_last_at: float | None = None  # latest failure of the streak
    streak_failures: int = 0


@dataclass(frozen=True)
class EndpointSnapshot:
    """A point-in-time copy of one endpoint's figures.

    ``requests``/``errors``/``rate_limited``/``timeouts`` are lifetime counters; ``error_rate``,
    ``window_*`` and the percentiles cover the last ``window_s`` seconds only.
    """

    endpoint: str
    requests: int
    errors: int
    rate_limited: int
    timeouts: int
    cache_hits: int
    cache_misses: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    error_rate: float  # errors (incl. timeouts and 429s) / requests in the window, 0 when none
    last_error: str | None
    window_s: float = WINDOW_S
    window_requests: int = 0
    window_errors: int = 0
    window_rate_limited: int = 0
    window_timeouts: int = 0
    #: cumulative histogram since start: ((upper bound, answered requests at or under it), ...), +Inf last
    latency_buckets: tuple[tuple[float, int], ...] = ()
    latency_sum_s: float = 0.0
    #: how long every attempt has been failing (see the module docstring); 0 when answering
    failing_s: float = 0.0
    #: seconds since the last good answer; None before the first one
    last_success_age_s: float | None = None

    @property
    def latency_count(self) -> int:
        return self.latency_buckets[-1][1] if self.latency_buckets else 0


class ApiStats:
    """Counters per endpoint; cheap to update from the hot path.

        stats = ApiStats(clock=clock)
        stats.record("token_pairs", latency_s=0.05, status=200)
        stats.snapshot()["token_pairs"].p50_s   # 0.05 (over the last 300 s)
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK,
                 window_s: float = WINDOW_S, max_events: int = MAX_EVENTS) -> None:
        self.clock = clock
        self.window_s = float(window_s)
        self.max_events = max(1, int(max_events))
        self._endpoints: dict[str, EndpointStats] = {}
        for name in ENDPOINTS:
            self._get(name)

    def _get(self, endpoint: str) -> EndpointStats:
        stats = self._endpoints.get(endpoint)
        if stats is None:
            stats = EndpointStats(events=deque(maxlen=self.max_events))
            self._endpoints[endpoint] = stats
        return stats

    def _prune(self, s: EndpointStats, now: float) -> None:
        cutoff = now - self.window_s
        while s.events and s.events[0].at < cutoff:
            s.events.popleft()

    def record(self, endpoint: str, *, latency_s: float | None = None, status: int | None = None,
               error: str | None = None, timeout: bool = False) -> None:
        """Record one HTTP attempt. A 429, a status >= 400, a timeout or ``error`` counts as an error."""
        s = self._get(endpoint)
        now = self.clock.monotonic()
        s.requests += 1
        s.last_status = status
        failed = timeout or error is not None or (status is not None and status >= 400)
        if status == 429:
            s.rate_limited += 1
        if timeout:
            s.timeouts += 1
        if failed:
            s.errors += 1
            s.last_error = error or ("timeout" if timeout else f"HTTP {status}")
        answered = None if timeout else latency_s
        if answered is not None and answered >= 0 and answered == answered:  # not NaN
            s.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS_S, answered)] += 1
            s.latency_sum_s += answered
        s.events.append(_Event(now, answered, failed, status == 429, timeout))
        tally = _TALLY.get()
        if tally is not None:
            tally.attempts += 1
            if status == 429:
                tally.rate_limited += 1
            elif timeout:
                tally.timeouts += 1
            elif error is not None or (status is not None and status >= 500):
                tally.errors += 1
        down = timeout or error is not None or status is None or status >= 500 or status == 429
        if down:
            if s.streak_start_at is None:
                s.streak_start_at, s.streak_failures = now, 0
            s.streak_last_at = now
            s.streak_failures += 1
        else:
            s.last_ok_at = now
            s.streak_start_at = s.streak_last_at = None
            s.streak_failures = 0
        self._prune(s, now)

    def cache_hit(self, endpoint: str) -> None:
        self._get(endpoint).cache_hits += 1

    def cache_miss(self, endpoint: str) -> None:
        self._get(endpoint).cache_misses += 1

    def total(self, attr: str) -> int:
        """A lifetime total summed over endpoints (``requests``, ``errors``, ``timeouts``...)."""
        return sum(int(getattr(s, attr)) for s in self._endpoints.values())

    def snapshot(self) -> dict[str, EndpointSnapshot]:
        now = self.clock.monotonic()
        out: dict[str, EndpointSnapshot] = {}
        for name, s in self._endpoints.items():
            self._prune(s, now)
            events = list(s.events)
            lat = sorted(e.latency_s for e in events if e.latency_s is not None)
            n = len(events)
            failed = sum(1 for e in events if e.failed)
            out[name] = EndpointSnapshot(
                endpoint=name, requests=s.requests, errors=s.errors, rate_limited=s.rate_limited,
                timeouts=s.timeouts, cache_hits=s.cache_hits, cache_misses=s.cache_misses,
                p50_s=percentile(lat, 0.5), p95_s=percentile(lat, 0.95), p99_s=percentile(lat, 0.99),
                error_rate=(failed / n) if n else 0.0, last_error=s.last_error,
                window_s=self.window_s, window_requests=n, window_errors=failed,
                window_rate_limited=sum(1 for e in events if e.rate_limited),
                window_timeouts=sum(1 for e in events if e.timeout),
                latency_buckets=_cumulative(s.bucket_counts), latency_sum_s=s.latency_sum_s,
                failing_s=self._failing_s(s, now),
                last_success_age_s=None if s.last_ok_at is None else max(0.0, now - s.last_ok_at),
            )
        return out

    def _failing_s(self, s: EndpointStats, now: float) -> float:
        if s.streak_start_at is None or s.streak_last_at is None or s.streak_failures < STREAK_MIN_FAILURES:
            return 0.0
        if now - s.streak_last_at > self.window_s:  # nobody asked lately: no current evidence
            return 0.0
        # up to now, not to the latest failure: with the circuit breaker open only probes go out, seconds
        # apart, and the endpoint has been failing all along (no answer since the streak began)
        return max(0.0, now - s.streak_start_at)


def _cumulative(counts: list[int]) -> tuple[tuple[float, int], ...]:
    out: list[tuple[float, int]] = []
    running = 0
    for bound, count in zip((*LATENCY_BUCKETS_S, float("inf")), counts):
        running += count
        out.append((bound, running))
    return tuple(out)
