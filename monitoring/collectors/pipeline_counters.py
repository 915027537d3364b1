"""Collector ``pipeline_counters``: the pipeline's in-memory counters as Prometheus counters.

Reads ``tokens.counters.PipelineCounters`` (discovered, duplicates, garbage, malformed pairs by
reason, checks, check failures, failed batches, transitions by reason)::

    registry.register(PipelineCountersCollector(pipeline.counters))
    # tokenwatch_pipeline_malformed_pairs_total{reason="no_pair_address"} 3
    # tokenwatch_pipeline_check_failures_total 171

Counters are cumulative since start (they reset on restart, which ``rate()`` handles).

It also emits ``tokenwatch_discovery_silence_seconds{source}``: seconds since discovery last saw
a valid mint from that source (``PipelineCounters.last_seen_at``), counted from the collector's
first collection for an expected source (``pumpportal``) that has not spoken yet, so a market
that never talks after a start is noticed too::

    # tokenwatch_discovery_silence_seconds{source="pumpportal"} 12.0
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.numbers import finite_float
from monitoring import metric_names as m
from monitoring.sample import Sample

MAX_LABEL_CHARS = 64
EXPECTED_SOURCES = ("pumpportal",)  # discovery sources that always run (the migrations feed)  # reasons are internal codes; anything longer is cut, never dropped

SCALARS = (
    (m.PIPELINE_DISCOVERED_TOTAL, "discovered"),
    (m.PIPELINE_DUPLICATES_TOTAL, "duplicates"),
    (m.PIPELINE_GARBAGE_TOTAL, "garbage"),
    (m.PIPELINE_CHECKS_TOTAL, "checks"),
    (m.PIPELINE_CHECK_FAILURES_TOTAL, "check_failures"),
    (m.PIPELINE_BATCH_FAILURES_TOTAL, "batch_failures"),
)
BY_LABEL = (
    (m.PIPELINE_MALFORMED_PAIRS_TOTAL, "malformed_pairs", "reason"),
    (m.PIPELINE_TRANSITIONS_TOTAL, "transitions", "reason"),
    (m.PIPELINE_DISCOVERED_BY_SOURCE_TOTAL, "discovered_by_source", "source"),
)


def counters_samples(counters: Any) -> list[Sample]:
    """Samples of one ``PipelineCounters`` (or anything with the same attributes; pure)."""
    out: list[Sample] = []
    for name, attr in SCALARS:
        value = finite_float(getattr(counters, attr, None))
        if value is not None:
            out.append(Sample(name, value))
    for name, attr, label in BY_LABEL:
        by_key = getattr(counters, attr, None)
        if not isinstance(by_key, Mapping):
            continue
        for key, count in sorted(by_key.items(), key=lambda kv: str(kv[0])):
            value = finite_float(count)
            if value is not None:
                out.append(Sample(name, value, {label: str(key)[:MAX_LABEL_CHARS] or "unknown"}))
    return out


class PipelineCountersCollector:
    """See the module docstring. ``counters`` is a ``PipelineCounters`` or a callable returning one.

        PipelineCountersCollector(lambda: pipeline.counters)
    """

    name = "pipeline_counters"

    def __init__(self, counters: Any | Callable[[], Any], *,
                 expected_sources: tuple[str, ...] = EXPECTED_SOURCES) -> None:
        self.counters = counters
        self.expected_sources = expected_sources
        self._started_at: float | None = None

    async def collect(self, now: float) -> list[Sample]:
        counters = self.counters() if callable(self.counters) else self.counters
        if self._started_at is None:
            self._started_at = now
        if counters is None:
            return []
        return counters_samples(counters) + self._silence(counters, now)

    def _silence(self, counters: Any, now: float) -> list[Sample]:
        seen = getattr(counters, "last_seen_at", None)
        seen = dict(seen) if isinstance(seen, Mapping) else {}
        out = []
        for source in sorted(set(seen) | set(self.expected_sources)):
            last = finite_float(seen.get(source))
            since = last if last is not None else self._started_at
            if since is not None:
                out.append(Sample(m.DISCOVERY_SILENCE_SECONDS, max(0.0, now - since),
                                  {"source": str(source)[:MAX_LABEL_CHARS] or "unknown"}))
        return out
