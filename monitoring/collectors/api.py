"""Per-endpoint figures of the external API client, from ``tokens.api_stats.ApiStats.snapshot()``.

    registry.register(ApiCollector(pipeline.api_stats.snapshot))
    # tokenwatch_api_latency_seconds{endpoint="tokens",quantile="0.95"} ...

The collector takes the snapshot *function*, so it works with any object shaped like
``EndpointSnapshot`` (latencies as ``p50_s``... in seconds, or ``p50_ms``... in milliseconds).
Totals are lifetime counters; the error rate, latency percentiles and the ``window_*`` gauges
cover the snapshot's recent window (``window_s``, 300 s by default).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.numbers import finite_float
from monitoring import metric_names as m
from monitoring.sample import Sample

QUANTILES = (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))




class ApiCollector:
    """Collector ``api``: latency p50/p95/p99, requests, errors, error rate, 429s, timeouts, cache hit rate.

        ApiCollector(lambda: {"tokens": snapshot})
    """

    name = "api"

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.snapshot = snapshot

    async def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for endpoint, snap in self.snapshot().items():
            labels = {"endpoint": str(endpoint)}
            for quantile, prefix in QUANTILES:
                seconds = finite_float(getattr(snap, f"{prefix}_s", None))
                if seconds is None:
                    ms = finite_float(getattr(snap, f"{prefix}_ms", None))
                    seconds = None if ms is None else ms / 1000.0
                if seconds is not None:
                    out.append(Sample(m.API_LATENCY_SECONDS, seconds, {**labels, "quantile": quantile}))
            for metric, attr in ((m.API_REQUESTS_TOTAL, "requests"), (m.API_ERRORS_TOTAL, "errors"),
                                 (m.API_RATE_LIMITED_TOTAL, "rate_limited"), (m.API_TIMEOUTS_TOTAL, "timeouts"),
                                 (m.API_ERROR_RATE, "error_rate"), (m.API_WINDOW_SECONDS, "window_s"),
                                 (m.API_WINDOW_REQUESTS, "window_requests"),
                                 (m.API_WINDOW_RATE_LIMITED, "window_rate_limited"),
                                 (m.API_WINDOW_TIMEOUTS, "window_timeouts")):
                value = finite_float(getattr(snap, attr, None))
                if value is not None:
                    out.append(Sample(metric, value, labels))
            hits = finite_float(getattr(snap, "cache_hits", None)) or 0.0
            misses = finite_float(getattr(snap, "cache_misses", None)) or 0.0
            if hits + misses > 0:
                out.append(Sample(m.API_CACHE_HIT_RATE, hits / (hits + misses), labels))
        return out
