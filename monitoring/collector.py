"""Collectors and the registry that runs them ("collect when asked").

A collector is any object with a ``name`` and ``async collect(now) -> list[Sample]``.
The registry runs every collector on each cycle, isolated from the others: one that
raises or hangs is timed out, counted (``tokenwatch_collector_errors_total``) and
logged once when it starts failing and once when it recovers, never on every cycle.

    class QueueDepth:
        name = "queue"

        async def collect(self, now: float) -> list[Sample]:
            return [Sample("tokenwatch_queue_depth", float(len(queue)))]

    registry = CollectorRegistry(clock=clock, store=store, collect_interval_s=10)
    registry.register(QueueDepth())
    samples = await registry.collect_all(clock.time())
    registry.latest()[("tokenwatch_queue_depth", "")].value
    scheduler.add_all(registry.jobs())     # monitoring.collect / .rollup / .retention

Each ``run_collection`` (the ``monitoring.collect`` job) ends by publishing one
``MonitoringSnapshot`` through ``registry.coordinator`` (see ``monitoring/snapshot.py``): that is
what /status, the status line, /readyz, /metrics and the alert engine read.
"""
from __future__ import annotations

import asyncio
import logging

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from app.clock import SYSTEM_CLOCK, Clock
from app.scheduler import JobSpec
from monitoring import metric_names as m
from monitoring.sample import Sample, canonical_labels, sample_problem
from monitoring.snapshot import CollectorHealth, MonitoringSnapshot, SnapshotCoordinator

if TYPE_CHECKING:  # pragma: no cover
    from monitoring.collectors.pipeline import PipelineCollector
    from monitoring.store import MetricStore

log = logging.getLogger(__name__)

@runtime_checkable
class Collector(Protocol):
    """Anything that measures something when asked."""

    name: str

    async def collect(self, now: float) -> list[Sample]: ...

@dataclass
class CollectorState:
    """What the registry knows about one collector."""

    name: str
    ok: bool = True
    errors: int = 0
    bad_samples: int = 0
    last_error: str | None = None
    last_duration_s: float = 0.0
    last_success_at: float | None = None

class CollectorRegistry:
    """Runs registered collectors, keeps the latest value of every series.

        registry = CollectorRegistry(clock=clock, store=store, collect_interval_s=10)
        registry.register(ProcessCollector(clock=clock))
        await registry.run_collection()      # collect_all + store.write, as the job does
        registry.latest()                    # {(name, "k=v,..."): Sample}
        registry.coordinator.latest          # the MonitoringSnapshot of the last cycle
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: MetricStore | None = None,
        collect_interval_s: float = 10.0,
        collector_timeout_s: float | None = None,
        rollup_interval_s: float = 60.0,
        retention_interval_s: float = 3600.0,
        stale_after_s: float | None = None,
        rate_window_s: float = 60.0,
    ) -> None:
        self.clock = clock
        self.store = store
        self.collect_interval_s = collect_interval_s
        self.collector_timeout_s = collector_timeout_s or max(0.1, min(5.0, collect_interval_s * 0.8))
        self.rollup_interval_s = rollup_interval_s
        self.retention_interval_s = retention_interval_s
        #: a series not refreshed for this long leaves latest() (and /metrics), like Prometheus staleness
        self.stale_after_s = stale_after_s or max(60.0, 5 * collect_interval_s)
        self._collectors: dict[str, Collector] = {}
        self._states: dict[str, CollectorState] = {}
        self._latest: dict[tuple[str, str], Sample] = {}
        self.last_collection_at: float | None = None
        self.cycles = 0
        self.store_write_errors = 0
        self._store_ok = True
        #: the one window every per-minute rate in a snapshot is averaged over (RATE_WINDOW_S)
        self.rate_window_s = float(rate_window_s)
        self.coordinator = SnapshotCoordinator()
        self._pipeline: PipelineCollector | None = None
        self._cycle_lock = asyncio.Lock()

    # --- registration ---------------------------------------------------------
    def register(self, collector: Collector) -> Collector:
        """Add ``collector``; its ``name`` must be unique. Returns it for chaining."""
        name = getattr(collector, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError("a collector needs a non-empty str name")
        if name in self._collectors:
            raise ValueError(f"collector {name!r} is already registered")
        self._collectors[name] = collector
        self._states[name] = CollectorState(name)
        return collector

    def register_pipeline(self, collector: PipelineCollector) -> PipelineCollector:
        """Register the pipeline collector; its snapshot of each cycle becomes ``MonitoringSnapshot.pipeline``."""
        self.register(collector)
        self._pipeline = collector
        self.rate_window_s = float(collector.params.rate_window_s)  # one window for every rate
        return collector

    def unregister(self, name: str) -> None:
        self._collectors.pop(name, None)
        self._states.pop(name, None)
        if self._pipeline is not None and self._pipeline.name == name:
            self._pipeline = None

    @property
    def collectors(self) -> list[Collector]:
        return list(self._collectors.values())

    def states(self) -> dict[str, CollectorState]:
        """Per-collector health, for /status."""
        return dict(self._states)

    # --- collection -------------------------------------------------------------
    async def _run_one(self, collector: Collector, now: float) -> list[Sample]:
        state = self._states[collector.name]
        started = self.clock.monotonic()
        problem: str | None = None
        samples: list[Sample] = []
        try:
            result = await asyncio.wait_for(collector.collect(now), timeout=self.collector_timeout_s)
            samples = list(result or [])
        except asyncio.TimeoutError:
            problem = f"timed out after {self.collector_timeout_s:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            problem = f"{type(exc).__name__}: {exc}"[:500]
        state.last_duration_s = max(0.0, self.clock.monotonic() - started)
        if problem is not None:
            state.errors += 1
            state.last_error = problem
            if state.ok:
                log.warning("collector %s failing: %s", collector.name, problem)
            state.ok = False
            return []
        if not state.ok:
            log.info("collector %s recovered", collector.name)
        state.ok = True
        state.last_success_at = now
        good: list[Sample] = []
        for sample in samples:
            why = sample_problem(sample)
            if why is not None:
                state.bad_samples += 1
                log.debug("collector %s: dropped sample: %s", collector.name, why)
                continue
            good.append(sample if sample.ts is not None else replace(sample, ts=now))
        return good

    def _own_samples(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for name, state in self._states.items():
            labels = {"collector": name}
            out.append(Sample(m.COLLECTOR_ERRORS_TOTAL, float(state.errors), labels, now))
            out.append(Sample(m.COLLECTOR_DURATION_SECONDS, state.last_duration_s, labels, now))
            out.append(Sample(m.COLLECTOR_UP, 1.0 if state.ok else 0.0, labels, now))
            out.append(Sample(m.COLLECTOR_BAD_SAMPLES_TOTAL, float(state.bad_samples), labels, now))
        out.append(Sample(m.COLLECTION_LAST_TIMESTAMP, now, {}, now))
        return out

    async def collect_all(self, now: float) -> list[Sample]:
        """Run every collector concurrently (each isolated); return all samples, own metrics included."""
        collectors = list(self._collectors.values())
        results = await asyncio.gather(*(self._run_one(c, now) for c in collectors))
        samples = [s for chunk in results for s in chunk]
        samples.extend(self._own_samples(now))
        for sample in samples:
            self._latest[(sample.name, sample.labels_key)] = sample
        cutoff = now - self.stale_after_s
        for key in [k for k, s in self._latest.items() if s.ts is not None and s.ts < cutoff]:
            del self._latest[key]
        self.last_collection_at = now
        self.cycles += 1
        return samples

    def latest(self) -> dict[tuple[str, str], Sample]:
        """The newest sample of every series seen: ``{(name, canonical_labels): Sample}``."""
        return dict(self._latest)

    def latest_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        sample = self._latest.get((name, canonical_labels(labels)))
        return None if sample is None else sample.value

    def build_snapshot(self, now: float) -> MonitoringSnapshot:
        """The snapshot of the cycle that just ran at ``now`` (pure; ``run_collection`` publishes it)."""
        pipeline = None
        if self._pipeline is not None:
            state = self._states.get(self._pipeline.name)
            snap = self._pipeline.last_snapshot
            if state is not None and state.ok and snap is not None and snap.now == now:
                pipeline = snap  # only this cycle's: a stale picture of the pipeline is worse than none
        health = {name: CollectorHealth(name, st.ok, st.errors, st.last_error, st.last_success_at,
                                        st.last_duration_s) for name, st in self._states.items()}
        return MonitoringSnapshot(at=now, cycle=self.cycles, rate_window_s=self.rate_window_s,
                                  collect_interval_s=self.collect_interval_s, samples=dict(self._latest),
                                  collectors=health, pipeline=pipeline)

    async def run_collection(self) -> list[Sample]:
        """One cycle as the ``monitoring.collect`` job runs it: collect, write to the store, then
        publish the cycle's ``MonitoringSnapshot`` to ``coordinator`` listeners.

        A store failure is counted and logged on change of state; the samples stay in
        :meth:`latest` so /metrics and /status keep working while the database is down.
        Cycles never overlap (a refresh asked for by /status waits for a running one).
        """
        async with self._cycle_lock:
            return await self._run_cycle()

    async def fresh_snapshot(self, max_age_s: float | None = None) -> MonitoringSnapshot:
        """The latest snapshot if it is at most ``max_age_s`` old, else run a collection first;
        ``None`` always collects anew (/status's Refresh). Cycles never overlap: a collection
        already running is waited for (and shared when it is recent enough)."""
        asked_at = self.clock.time()
        async with self._cycle_lock:
            latest = self.coordinator.latest
            if latest is None or max_age_s is None or asked_at - latest.at > max_age_s:
                await self._run_cycle()
        latest = self.coordinator.latest
        assert latest is not None
        return latest

    async def _run_cycle(self) -> list[Sample]:
        now = self.clock.time()
        samples = await self.collect_all(now)
        if self.store is not None:
            try:
                await self.store.write(samples)
            except Exception as exc:  # noqa: BLE001
                self.store_write_errors += 1
                if self._store_ok:
                    log.warning("metric store write failing: %s: %s", type(exc).__name__, exc)
                self._store_ok = False
            else:
                if not self._store_ok:
                    log.info("metric store write recovered")
                self._store_ok = True
        await self.coordinator.publish(self.build_snapshot(now))
        return samples

    async def _rollup(self) -> None:
        if self.store is not None:
            await self.store.rollup(self.clock.time())

    async def _retention(self) -> None:
        if self.store is not None:
            await self.store.apply_retention(self.clock.time())

    async def _collect_job(self) -> None:
        await self.run_collection()

    def jobs(self) -> list[JobSpec]:
        """Scheduler jobs: ``monitoring.collect`` (every ``collect_interval_s``),
        ``monitoring.rollup`` (60 s) and ``monitoring.retention`` (hourly)."""
        specs: Iterable[tuple[str, Callable[[], Awaitable[None]], float, float, tuple[float, float] | None]] = (
            ("monitoring.collect", self._collect_job, self.collect_interval_s, max(1.0, self.collect_interval_s),
             None),  # fixed: rates and staleness are computed in collection intervals
            ("monitoring.rollup", self._rollup, self.rollup_interval_s, 60.0, (30.0, 600.0)),
            ("monitoring.retention", self._retention, self.retention_interval_s, 300.0, (300.0, 86400.0)),
        )
        return [JobSpec(id=i, func=f, interval_s=iv, budget_s=b, tunable=t) for i, f, iv, b, t in specs]
