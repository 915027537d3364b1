"""Build the recovery layer: the knob registry and the controllers that turn the knobs.

    recovery = await build_recovery(ctx)          # after build_monitoring, before build_alerts
    scheduler.add_all(recovery.jobs()); supervisor.add_all(recovery.loops())
    ...
    await recovery.stop()

Each controller reads what monitoring measured (the snapshot, the metric store) or the hooks the
pipeline offers, and acts only through ``ctx.knobs`` (``recovery.knobs``) and the protocols in
``recovery.controllers``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from collections.abc import Awaitable, Callable

from app.memory import RECLAIMERS
from app.scheduler import JobSpec
from app.supervisor import LoopSpec
from monitoring.host.process import ProcessCollector
from recovery.context import RecoveryContext
from recovery.knobs import KnobRegistry
from recovery.memory import MemoryParams, MemoryPolicy
from monitoring import metric_names as m
from recovery.db_pool import PoolController, PoolReading
from recovery.slow_queries import SlowQueryLog
from recovery.watchdog import Watchdog


@dataclass
class Recovery:
    """The running recovery parts; ``stop()`` undoes ``build_recovery``."""

    knobs: KnobRegistry
    memory: MemoryPolicy | None = None
    watchdog: Watchdog | None = None
    slow_queries: SlowQueryLog | None = None
    db_pool: PoolController | None = None
    _jobs: list[JobSpec] = field(default_factory=list)
    _loops: list[LoopSpec] = field(default_factory=list)
    _stoppers: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        return list(self._jobs)

    def loops(self) -> list[LoopSpec]:
        return list(self._loops)

    async def stop(self) -> None:
        while self._stoppers:
            result = self._stoppers.pop()()
            if result is not None:
                await result


async def build_recovery(ctx: RecoveryContext) -> Recovery:
    knobs = ctx.knobs = ctx.knobs or KnobRegistry(ctx.clock)
    recovery = Recovery(knobs)
    process = next((c for c in (ctx.collectors.collectors if ctx.collectors else [])
                    if isinstance(c, ProcessCollector)), None)
    if process is not None:  # the memory policy: thresholds, cleanups, leak diagnosis
        policy = recovery.memory = MemoryPolicy(process.memory, clock=ctx.clock, reclaimers=RECLAIMERS,
                                                knobs=knobs, params=MemoryParams.from_settings(ctx.settings))
        recovery._jobs += policy.jobs()
        assert ctx.collectors is not None
        ctx.collectors.register(policy.collector())
        collectors = ctx.collectors
        recovery._stoppers += [policy.close, lambda: collectors.unregister(policy.collector().name)]
    # the watchdog's restart budget: the scheduler and the supervisor ask it before a restart
    watchdog = recovery.watchdog = Watchdog(ctx.clock, knobs, per_hour=ctx.settings.watchdog_restarts_per_hour)
    for part in (ctx.scheduler, ctx.supervisor):
        if part is not None:
            part.restart_gate = watchdog
    if ctx.collectors is not None:
        ctx.collectors.register(watchdog.collector())
        registry = ctx.collectors
        recovery._stoppers.append(lambda: registry.unregister(watchdog.collector().name))
    # the slow-query log: statements over DB_SLOW_QUERY_S, each shape's plan taken once, off the hot path
    if ctx.settings.db_slow_query_s > 0:
        slow = recovery.slow_queries = SlowQueryLog(ctx.db, threshold_s=ctx.settings.db_slow_query_s)
        recovery._jobs += slow.jobs()
        recovery._stoppers.append(slow.close)
        if ctx.collectors is not None:
            ctx.collectors.register(slow.collector())
            registry2 = ctx.collectors
            recovery._stoppers.append(lambda: registry2.unregister(slow.collector().name))
    # the PostgreSQL pool: grows while connections wait, shrinks when idle (knob db_pool_size)
    if ctx.db.dialect == "postgresql" and ctx.collectors is not None and ctx.db.pool_size is not None:
        latest = ctx.collectors.latest_value

        def readings() -> PoolReading:
            return PoolReading(latest(m.DB_POOL_ACQUIRE_SECONDS), latest(m.DB_POOL_CHECKED_OUT),
                               latest(m.DB_POOL_OVERFLOW))

        s = ctx.settings
        pool = recovery.db_pool = PoolController(ctx.db, readings, knobs, ctx.clock, minimum=s.db_pool_min,
                                                 maximum=max(s.db_pool_min, s.db_pool_max),
                                                 interval_s=s.collect_interval_s)
        recovery._jobs += pool.jobs()
    return recovery
