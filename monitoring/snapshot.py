"""One picture of health per collection cycle, published to listeners.

The ``monitoring.collect`` job (``CollectorRegistry.run_collection``) runs every collector once,
then builds ONE :class:`MonitoringSnapshot` (every collector's latest samples, collector health,
the pipeline snapshot, the time and the rate window) and publishes it through the registry's
:class:`SnapshotCoordinator`, in the manner of Home Assistant's ``DataUpdateCoordinator``: one
fetch, many listeners. ``/status``, the terminal status line, ``/readyz`` and ``/metrics`` read
``coordinator.latest`` instead of running their own queries, so they never disagree; the alert
engine plugs in as a listener::

    coordinator = registry.coordinator              # ctx.collectors.coordinator in the service

    async def evaluate_rules(snap: MonitoringSnapshot) -> None:
        if snap.stalled:
            await incidents.open("pipeline_stalled", snap.pipeline.stall.stage_reason, at=snap.at)

    remove = coordinator.add_listener(evaluate_rules)   # sync or async callables
    snap = coordinator.latest                           # None before the first collection
    snap = await registry.fresh_snapshot(max_age_s=0)    # collect now (shared with a running cycle)
    remove()

Listeners run in the order added, after every collection (a /status Refresh is a full cycle,
so they hear it too), each under ``listener_timeout_s``.
A listener that raises or times out never stops the others or the collection: its failure is
counted (``coordinator.listener_failures``) and logged once when it starts failing and once when
it recovers, not on every cycle.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitoring import metric_names as m
from monitoring.sample import Sample, canonical_labels

if TYPE_CHECKING:  # pragma: no cover
    from monitoring.pipeline.snapshot import PipelineSnapshot

log = logging.getLogger(__name__)

Listener = Callable[["MonitoringSnapshot"], "Awaitable[None] | None"]


@dataclass(frozen=True)
class CollectorHealth:
    """One collector's state at the end of a cycle (a frozen copy)."""

    name: str
    ok: bool
    errors: int = 0
    last_error: str | None = None
    last_success_at: float | None = None
    last_duration_s: float = 0.0


@dataclass(frozen=True)
class MonitoringSnapshot:
    """Everything one collection cycle measured.

    ``at`` is the collection time (epoch s), ``rate_window_s`` the one window every per-minute
    rate is averaged over, ``pipeline`` the pipeline snapshot of THIS cycle (``None`` when the
    pipeline collector is not registered or failed this cycle: see ``collectors["pipeline"]``).
    """

    at: float
    cycle: int
    rate_window_s: float
    collect_interval_s: float
    samples: Mapping[tuple[str, str], Sample] = field(default_factory=dict)
    collectors: Mapping[str, CollectorHealth] = field(default_factory=dict)
    pipeline: PipelineSnapshot | None = None

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """The latest value of one series, or ``None``."""
        sample = self.samples.get((name, canonical_labels(labels)))
        return None if sample is None else sample.value

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.at)

    @property
    def stalled(self) -> bool:
        return self.pipeline is not None and self.pipeline.stall.stalled

    @property
    def database_up(self) -> bool | None:
        """From the ``db`` collector's probe in this cycle; ``None`` when it did not report."""
        value = self.value(m.DB_UP)
        return None if value is None else value >= 1.0

    def failing_collectors(self) -> list[CollectorHealth]:
        return [h for h in self.collectors.values() if not h.ok]

    def not_ready_reason(self, now: float, max_age_s: float, *, database: bool = True) -> str | None:
        """Why the service is not ready according to this snapshot, or ``None`` when it is.
        ``database=False`` skips the snapshot's database probe (the caller just pinged it live)."""
        age = self.age_s(now)
        if age > max_age_s:
            return f"last metrics collection {age:.0f}s ago (limit {max_age_s:.0f}s)"
        if database and self.database_up is False:
            return "database unreachable"
        pipeline = self.collectors.get("pipeline")
        if pipeline is not None and not pipeline.ok:
            return f"pipeline figures unavailable: {pipeline.last_error or 'collector failing'}"
        if self.pipeline is not None and self.pipeline.stall.stalled:
            stall = self.pipeline.stall
            where = f" at {stall.stage}: {stall.stage_reason}" if stall.stage else ""
            silent = "" if stall.silent_for_s is None else f" for {stall.silent_for_s:.0f}s"
            return f"pipeline stalled: no successful check{silent}{where}"
        return None


class SnapshotCoordinator:
    """Holds the latest snapshot and tells listeners about each new one (see the module docstring)."""

    def __init__(self, *, listener_timeout_s: float = 5.0) -> None:
        self.listener_timeout_s = listener_timeout_s
        self.latest: MonitoringSnapshot | None = None
        self._listeners: list[Listener] = []
        self._failing: dict[int, bool] = {}
        self.listener_failures = 0

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(snapshot)`` after every collection; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
            self._failing.pop(id(listener), None)

        return remove

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def publish(self, snapshot: MonitoringSnapshot) -> None:
        """Make ``snapshot`` the latest, then run every listener, each isolated from the others."""
        self.latest = snapshot
        for listener in list(self._listeners):
            await self._notify(listener, snapshot)

    async def _notify(self, listener: Listener, snapshot: MonitoringSnapshot) -> None:
        name = getattr(listener, "__qualname__", None) or repr(listener)
        problem: str | None = None
        try:
            result = listener(snapshot)
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, timeout=self.listener_timeout_s)
        except asyncio.TimeoutError:
            problem = f"timed out after {self.listener_timeout_s:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one listener never stops the others
            problem = f"{type(exc).__name__}: {exc}"
        was_failing = self._failing.get(id(listener), False)
        if problem is not None:
            self.listener_failures += 1
            if not was_failing:
                log.warning("snapshot listener %s failing: %s", name, problem)
            self._failing[id(listener)] = True
        elif was_failing:
            log.info("snapshot listener %s recovered", name)
            self._failing[id(listener)] = False
