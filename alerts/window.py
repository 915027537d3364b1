"""The recent history of every series the rules read, in memory, fed one snapshot per cycle.

A series is a metric name plus its canonical labels (``monitoring.sample.canonical_labels``).
Only the names the rules need are kept, and only as far back as the longest rule window
(``span_s``), so memory stays bounded however long the process runs::

    window = SeriesWindow({"tokenwatch_api_requests_total"}, span_s=600)
    window.observe(snapshot)                        # every cycle (samples at their own ts)
    await window.seed(store, now)                   # once at start: a restart keeps its window
    series = window.matching("tokenwatch_api_requests_total", {"endpoint": "tokens_batch"})
    series[0].aggregate("rate", now=now, window_s=300)          # per second, counter resets handled
    series[0].aggregate("percentile", now=now, window_s=300, quantile=0.95)

Aggregations (``AGGREGATIONS``) over the points with ``ts`` in ``[now - window_s, now]``:
``last`` (the newest point, whatever its age: the caller judges staleness), ``avg``, ``max``,
``min``, ``increase`` (sum of the rises between consecutive points; after a counter reset, a
drop, the new value counts as the rise from 0, as Prometheus does; 0 with one point), ``rate``
(``increase`` divided by the time the points span; ``None`` with fewer than two points) and
``percentile`` (nearest rank, ``app.percentiles``). Every aggregation is ``None`` without points.
"""
from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.percentiles import percentile
from monitoring.sample import canonical_labels, parse_labels

if TYPE_CHECKING:  # pragma: no cover
    from monitoring.snapshot import MonitoringSnapshot
    from monitoring.store import MetricStore

log = logging.getLogger(__name__)

AGGREGATIONS = ("last", "avg", "max", "min", "rate", "increase", "percentile")
#: hard cap per series whatever the span (a 1-hour window at a 10 s cycle is 360 points)
MAX_POINTS_PER_SERIES = 5_000


@dataclass
class Series:
    """One series' recent points: parallel lists of times (ascending) and values."""

    name: str
    key: str
    labels: Mapping[str, str]
    ts: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def points(self) -> list[tuple[float, float]]:
        return list(zip(self.ts, self.values))

    @property
    def last_ts(self) -> float | None:
        return self.ts[-1] if self.ts else None

    @property
    def last_value(self) -> float | None:
        return self.values[-1] if self.values else None

    def add(self, ts: float, value: float) -> bool:
        """Append a point newer than the newest one (an older or equal ts is ignored: a stale
        sample repeated by the snapshot, or seeded history overlapping live points)."""
        if self.ts and ts <= self.ts[-1]:
            return False
        self.ts.append(ts)
        self.values.append(value)
        if len(self.ts) > MAX_POINTS_PER_SERIES:
            del self.ts[0], self.values[0]
        return True

    def prune(self, cutoff: float) -> None:
        """Drop points older than ``cutoff`` but keep the newest one (``last`` of a quiet series)."""
        if self.ts and self.ts[0] < cutoff:
            k = min(bisect_left(self.ts, cutoff), len(self.ts) - 1)
            if k:
                del self.ts[:k], self.values[:k]

    def aggregate(self, how: str, *, now: float, window_s: float = 0.0, quantile: float | None = None) -> float | None:
        """The aggregation ``how`` (see the module docstring) over ``[now - window_s, now]``."""
        if how == "last":
            return self.last_value
        ts = self.ts
        lo = bisect_left(ts, now - window_s)
        hi = len(ts) if not ts or ts[-1] <= now else bisect_right(ts, now)
        if hi <= lo:
            return None
        values = self.values[lo:hi]
        if how == "avg":
            return sum(values) / len(values)
        if how == "max":
            return max(values)
        if how == "min":
            return min(values)
        if how in ("increase", "rate"):
            rise = _increase(values)
            if how == "increase":
                return rise
            span = ts[hi - 1] - ts[lo]
            return rise / span if hi - lo >= 2 and span > 0 else None
        if how == "percentile":
            if quantile is None:
                raise ValueError("percentile needs a quantile")
            return percentile(sorted(values), quantile)
        raise ValueError(f"unknown aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}")


def _increase(values: list[float]) -> float:
    rise = 0.0
    for before, after in zip(values, values[1:]):
        rise += after - before if after >= before else after  # a drop is a counter reset
    return rise


class SeriesWindow:
    """See the module docstring. ``names`` None keeps every series (tests, benchmarks)."""

    def __init__(self, names: Collection[str] | None, span_s: float) -> None:
        self.names = None if names is None else frozenset(names)
        self.span_s = max(0.0, float(span_s))
        self._by_name: dict[str, dict[str, Series]] = {}

    def __len__(self) -> int:
        return sum(len(by_key) for by_key in self._by_name.values())

    def _series(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> Series:
        by_key = self._by_name.setdefault(name, {})
        series = by_key.get(key)
        if series is None:
            series = by_key[key] = Series(name, key, dict(labels) if labels is not None else parse_labels(key))
        return series

    def wants(self, name: str) -> bool:
        return self.names is None or name in self.names

    def add(self, name: str, labels: Mapping[str, str] | None, ts: float, value: float) -> None:
        if self.wants(name):
            self._series(name, canonical_labels(labels), labels or {}).add(ts, value)

    def observe(self, snapshot: MonitoringSnapshot) -> None:
        """Take every wanted sample of ``snapshot`` (at its own ``ts``, else the snapshot's time)
        and forget points older than the span."""
        at = snapshot.at
        for (name, key), sample in snapshot.samples.items():
            if self.names is not None and name not in self.names:
                continue
            by_key = self._by_name.get(name)
            series = by_key.get(key) if by_key is not None else None
            if series is None:
                series = self._series(name, key, sample.labels)
            series.add(sample.ts if sample.ts is not None else at, float(sample.value))
        self.prune(at)

    def prune(self, now: float) -> None:
        cutoff = now - self.span_s
        for by_key in self._by_name.values():
            for series in by_key.values():
                series.prune(cutoff)

    def forget_older_than(self, cutoff: float) -> None:
        """Drop whole series whose newest point is older than ``cutoff`` (gone for good)."""
        for name, by_key in list(self._by_name.items()):
            for key in [k for k, s in by_key.items() if (s.last_ts or 0.0) < cutoff]:
                del by_key[key]
            if not by_key:
                del self._by_name[name]

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> Series | None:
        return self._by_name.get(name, {}).get(canonical_labels(labels))

    def matching(self, name: str, matchers: Mapping[str, str]) -> list[Series]:
        """Every series of ``name`` whose labels include ``matchers`` exactly."""
        by_key = self._by_name.get(name)
        if not by_key:
            return []
        if not matchers:
            return list(by_key.values())
        items = list(matchers.items())
        return [s for s in by_key.values() if all(s.labels.get(k) == v for k, v in items)]

    async def seed(self, store: MetricStore, now: float, names: Iterable[str] | None = None) -> int:
        """Load the last ``span_s`` of raw history of the wanted names from the metric store;
        returns the number of points loaded. Call once at start, before the first ``observe``."""
        wanted = list(names if names is not None else (self.names or ()))
        since = now - self.span_s
        loaded = 0
        for name in sorted(wanted):
            for labels in await store.series_labels(name, since=since):
                series = self._series(name, canonical_labels(labels), labels)
                for point in await store.query(name, labels=labels, since=since, until=now + 1e-6, resolution=0):
                    loaded += series.add(point.ts, point.value)
        return loaded
