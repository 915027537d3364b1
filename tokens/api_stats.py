"""Per-endpoint API statistics: requests, errors, 429s, timeouts, cache, latency percentiles.

Endpoints are named ``tokens_batch``, ``token_pairs`` and ``token_profiles``. The monitoring
package reads ``snapshot()`` to chart latency and error rates::

    stats = ApiStats()
    stats.record("tokens_batch", latency_s=0.12, status=200)
    stats.record("tokens_batch", latency_s=10.0, timeout=True)
    snap = stats.snapshot()["tokens_batch"]
    snap.p95_s, snap.error_rate, snap.rate_limited
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

LATENCY_SAMPLES = 1000
ENDPOINTS = ("tokens_batch", "token_pairs", "token_profiles")


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (``q`` in 0..100).

    The smallest value with at least ``q`` % of the values at or below it: the
    ``ceil(q / 100 * n)``-th value (1-based). ``percentile([1, 2, 3, 4, 5, 6], 50) == 3``.
    """
    n = len(sorted_values)
    if not n:
        return None
    # q * n / 100 keeps integer inputs exact (0.07 * 100 is 7.000000000000001); the epsilon
    # absorbs float noise from fractional q.
    rank = math.ceil(q * n / 100.0 - 1e-9) - 1
    return sorted_values[max(0, min(n - 1, rank))]


@dataclass
class EndpointStats:
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    timeouts: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    last_status: int | None = None
    last_error: str | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))


@dataclass(frozen=True)
class EndpointSnapshot:
    """A point-in-time copy of one endpoint's counters (counters are cumulative)."""

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
    error_rate: float  # errors (incl. timeouts and 429s) / requests, 0 when no requests
    last_error: str | None

    @property
    def errors_total(self) -> int:
        return self.errors


class ApiStats:
    """Counters per endpoint; cheap to update from the hot path.

        stats = ApiStats()
        stats.record("token_pairs", latency_s=0.05, status=200)
        stats.snapshot()["token_pairs"].p50_s   # 0.05
    """

    def __init__(self, latency_samples: int = LATENCY_SAMPLES) -> None:
        self._samples = latency_samples
        self._endpoints: dict[str, EndpointStats] = {}
        for name in ENDPOINTS:
            self._get(name)

    def _get(self, endpoint: str) -> EndpointStats:
        stats = self._endpoints.get(endpoint)
        if stats is None:
            stats = EndpointStats(latencies=deque(maxlen=self._samples))
            self._endpoints[endpoint] = stats
        return stats

    def record(self, endpoint: str, *, latency_s: float | None = None, status: int | None = None,
               error: str | None = None, timeout: bool = False) -> None:
        """Record one HTTP attempt. A 429, a status >= 400, a timeout or ``error`` counts as an error."""
        s = self._get(endpoint)
        s.requests += 1
        s.last_status = status
        if latency_s is not None and not timeout:
            s.latencies.append(latency_s)
        failed = timeout or error is not None or (status is not None and status >= 400)
        if status == 429:
            s.rate_limited += 1
        if timeout:
            s.timeouts += 1
        if failed:
            s.errors += 1
            s.last_error = error or ("timeout" if timeout else f"HTTP {status}")

    def cache_hit(self, endpoint: str) -> None:
        self._get(endpoint).cache_hits += 1

    def cache_miss(self, endpoint: str) -> None:
        self._get(endpoint).cache_misses += 1

    def total(self, attr: str) -> int:
        return sum(int(getattr(s, attr)) for s in self._endpoints.values())

    def snapshot(self) -> dict[str, EndpointSnapshot]:
        out: dict[str, EndpointSnapshot] = {}
        for name, s in self._endpoints.items():
            lat = sorted(s.latencies)
            out[name] = EndpointSnapshot(
                endpoint=name, requests=s.requests, errors=s.errors, rate_limited=s.rate_limited,
                timeouts=s.timeouts, cache_hits=s.cache_hits, cache_misses=s.cache_misses,
                p50_s=percentile(lat, 50), p95_s=percentile(lat, 95), p99_s=percentile(lat, 99),
                error_rate=(s.errors / s.requests) if s.requests else 0.0, last_error=s.last_error,
            )
        return out
