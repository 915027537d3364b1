"""Per-endpoint figures of the external API client, from ``tokens.api_stats.ApiStats.snapshot()``.

    registry.register(ApiCollector(pipeline.api_stats.snapshot))
    # tokenwatch_api_latency_seconds_bucket{endpoint="tokens_batch",le="0.25"} 118.0
    # tokenwatch_api_latency_seconds_sum{endpoint="tokens_batch"} 14.2
    # tokenwatch_api_latency_seconds_count{endpoint="tokens_batch"} 120.0

``tokenwatch_api_failing_seconds`` (how long every attempt has been failing) and
``tokenwatch_api_last_success_age_seconds`` let an outage alert fire and clear within one cycle.

Latency is a Prometheus histogram since start (cumulative ``le`` buckets from
``EndpointSnapshot.latency_buckets``), which ``histogram_quantile`` can aggregate across
instances; /status's p95 is the nearest-rank p95 of the recent window
(``tokenwatch_api_latency_p95_seconds``). Totals are lifetime counters; the error rate and the
``window_*`` gauges cover the snapshot's recent window (``window_s``, 300 s by default).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client.utils import floatToGoString

from app.numbers import finite_float
from monitoring import metric_names as m
from monitoring.sample import Sample



def _le(bound: float) -> str:
    """The ``le`` label as prometheus_client writes it (``"1.0"``, ``"0.025"``, ``"+Inf"``)."""
    return floatToGoString(bound)


class ApiCollector:
    """Collector ``api``: latency histogram and window p95, requests, errors, error rate, 429s, timeouts,
    cache hit rate.

        ApiCollector(lambda: {"tokens": snapshot})
    """

    name = "api"

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.snapshot = snapshot

    async def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for endpoint, snap in self.snapshot().items():
            labels = {"endpoint": str(endpoint)}
            buckets = getattr(snap, "latency_buckets", None) or ()
            if buckets:
                for bound, count in buckets:
                    out.append(Sample(m.API_LATENCY_BUCKET, float(count), {**labels, "le": _le(float(bound))}))
                out.append(Sample(m.API_LATENCY_SUM, finite_float(getattr(snap, "latency_sum_s", 0.0)) or 0.0, labels))
                out.append(Sample(m.API_LATENCY_COUNT, float(buckets[-1][1]), labels))
            for metric, attr in ((m.API_LATENCY_P50_SECONDS, "p50_s"), (m.API_LATENCY_P95_SECONDS, "p95_s"),
                                 (m.API_LATENCY_P99_SECONDS, "p99_s")):
                quantile = finite_float(getattr(snap, attr, None))
                if quantile is not None:
                    out.append(Sample(metric, quantile, labels))
            for metric, attr in ((m.API_REQUESTS_TOTAL, "requests"), (m.API_ERRORS_TOTAL, "errors"),
                                 (m.API_RATE_LIMITED_TOTAL, "rate_limited"), (m.API_TIMEOUTS_TOTAL, "timeouts"),
                                 (m.API_ERROR_RATE, "error_rate"), (m.API_WINDOW_SECONDS, "window_s"),
                                 (m.API_WINDOW_REQUESTS, "window_requests"),
                                 (m.API_WINDOW_RATE_LIMITED, "window_rate_limited"),
                                 (m.API_WINDOW_TIMEOUTS, "window_timeouts"),
                                 (m.API_FAILING_SECONDS, "failing_s"),
                                 (m.API_LAST_SUCCESS_AGE_SECONDS, "last_success_age_s")):
                value = finite_float(getattr(snap, attr, None))
                if value is not None:
                    out.append(Sample(metric, value, labels))
            hits = finite_float(getattr(snap, "cache_hits", None)) or 0.0
            misses = finite_float(getattr(snap, "cache_misses", None)) or 0.0
            if hits + misses > 0:
                out.append(Sample(m.API_CACHE_HIT_RATE, hits / (hits + misses), labels))
        return out
