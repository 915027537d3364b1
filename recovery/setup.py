"""Build the recovery layer: the knob registry, the controllers that turn the knobs, the action
ledger, the chat announcements and the controls /tune turns.

    recovery = await build_recovery(ctx, outbox=outbox, alert_chat_id=chat)   # after build_monitoring
    recovery.announcer.buttons = bot_buttons      # the bot's signed Revert buttons (bot.setup)
    client.latency_observer = recovery.rto        # the service wires recovery's hooks into tokens/
    pipeline.breakers.on_transition(recovery.breaker_actions)
    scheduler.add_all(recovery.jobs()); supervisor.add_all(recovery.loops())
    ...
    await recovery.stop()

One wiring function per part, each a few lines:

- ``_wire_flow``: the processor's in-flight limit and batch size (fed by its flow hook after every
  batch and run) and load shedding (cold checks and profile polls under high CPU, fed by every
  monitoring snapshot);
- ``_wire_market``: the market client's RFC 6298 timeouts (``recovery.rto``) and the breakers'
  openings and closings as actions;
- ``_wire_memory``: thresholds, cleanups, leak diagnosis (``recovery.memory``);
- ``_wire_watchdog``: the restart budget the scheduler and the supervisor ask before a restart;
- ``_wire_database``: the slow-query log and, on PostgreSQL, the pool size;
- ``_wire_ledger`` (last): every action into the ledger (``recovery.ledger``), the ones that matter
  announced (``recovery.announce``), and operator pins restored once every knob is registered.

Each controller reads what monitoring measured (the snapshot, the metric store) or the hooks the
pipeline offers, and acts only through ``ctx.knobs`` (``recovery.knobs``) and the protocols in
``recovery.controllers``.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.memory import RECLAIMERS
from app.scheduler import JobSpec
from app.supervisor import LoopSpec
from delivery.store import Outbox
from monitoring import metric_names as m
from monitoring.collector import Collector
from monitoring.host.process import ProcessCollector
from recovery.announce import Announcer
from recovery.breaker_actions import BreakerActions
from recovery.cache_lifetime import CacheLifetimeController, register_cache_knob
from recovery.context import RecoveryContext
from recovery.control import Controls
from recovery.db_pool import PoolController, PoolReading
from recovery.flow import FlowController, wire_flow
from recovery.job_knobs import register_job_knobs
from recovery.knobs import KnobRegistry
from recovery.ledger import ActionLedger
from recovery.memory import MemoryParams, MemoryPolicy
from recovery.rto import RtoBounds, RtoController
from recovery.shedding import SheddingController, register_shedding_knobs
from recovery.slow_queries import SlowQueryLog
from recovery.watchdog import Watchdog


@dataclass
class Recovery:
    """The running recovery parts; ``stop()`` undoes ``build_recovery``."""

    knobs: KnobRegistry
    flow: FlowController | None = None  # the processor's in-flight limit (when a pipeline runs)
    shedding: SheddingController | None = None  # cold checks and profile polls under high CPU
    rto: RtoController | None = None  # the market client's timeouts (the service wires it in)
    cache_lifetime: CacheLifetimeController | None = None  # pool data lives longer while the market is slow
    breaker_actions: BreakerActions | None = None  # the market breakers' listener (the service wires it in)
    memory: MemoryPolicy | None = None
    watchdog: Watchdog | None = None
    slow_queries: SlowQueryLog | None = None
    db_pool: PoolController | None = None
    ledger: ActionLedger | None = None
    controls: Controls | None = None
    announcer: Announcer | None = None
    _jobs: list[JobSpec] = field(default_factory=list)
    _loops: list[LoopSpec] = field(default_factory=list)
    _stoppers: list[Callable[[], Awaitable[object] | None]] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        return list(self._jobs)

    def loops(self) -> list[LoopSpec]:
        return list(self._loops)

    async def stop(self) -> None:
        while self._stoppers:
            result = self._stoppers.pop()()
            if result is not None:
                await result


def _register(ctx: RecoveryContext, recovery: Recovery, collector: Collector) -> None:
    """Register ``collector`` with monitoring (when it runs here) until ``recovery.stop()``."""
    registry = ctx.collectors
    if registry is None:
        return
    registry.register(collector)
    recovery._stoppers.append(lambda: registry.unregister(collector.name))


def _wire_flow(ctx: RecoveryContext, recovery: Recovery) -> None:
    processor = ctx.pipeline.processor if ctx.pipeline is not None else None
    if processor is None:
        return
    knobs = recovery.knobs
    recovery.flow = processor.flow = wire_flow(knobs, processor)
    profiles = ctx.pipeline.profiles if ctx.pipeline is not None else None
    register_shedding_knobs(knobs, processor, profiles)
    shedding = recovery.shedding = SheddingController(
        knobs, profiles_base_s=profiles.interval_s if profiles is not None else None)
    if ctx.collectors is not None:  # CPU from monitoring's process collector, every cycle
        recovery._stoppers.append(ctx.collectors.coordinator.add_listener(shedding.on_snapshot))


def _wire_market(ctx: RecoveryContext, recovery: Recovery) -> None:
    recovery.breaker_actions = BreakerActions(recovery.knobs)
    pipeline = ctx.pipeline
    if pipeline is None or pipeline.client is None:
        return
    s = ctx.settings
    recovery.rto = RtoController(recovery.knobs, pipeline.client, pipeline.breakers.endpoints,
                                 RtoBounds(s.rto_min_s, max(s.rto_min_s, s.rto_max_s)))
    if pipeline.pool_cache is not None and ctx.collectors is not None:  # pools live longer while p95 > 2 s
        register_cache_knob(recovery.knobs, pipeline.pool_cache, maximum_s=s.stale_data_s)
        cache = recovery.cache_lifetime = CacheLifetimeController(
            recovery.knobs, slow_lifetime_s=min(s.pool_cache_slow_s, s.stale_data_s))
        recovery._stoppers.append(ctx.collectors.coordinator.add_listener(cache.on_snapshot))


def _wire_memory(ctx: RecoveryContext, recovery: Recovery) -> None:
    process = next((c for c in (ctx.collectors.collectors if ctx.collectors else [])
                    if isinstance(c, ProcessCollector)), None)
    if process is None:
        return

    def busy() -> bool:  # no leak diagnosis (tracemalloc) while CPU is over load shedding's threshold
        return recovery.shedding is not None and recovery.shedding.law.hot

    policy = recovery.memory = MemoryPolicy(process.memory, clock=ctx.clock, reclaimers=RECLAIMERS,
                                            knobs=recovery.knobs, params=MemoryParams.from_settings(ctx.settings),
                                            busy=busy)
    recovery._jobs += policy.jobs()
    recovery._stoppers.append(policy.close)
    _register(ctx, recovery, policy.collector())


def _wire_watchdog(ctx: RecoveryContext, recovery: Recovery) -> None:
    watchdog = recovery.watchdog = Watchdog(ctx.clock, recovery.knobs,
                                            per_hour=ctx.settings.watchdog_restarts_per_hour)
    for part in (ctx.scheduler, ctx.supervisor):
        if part is not None:
            part.restart_gate = watchdog
    _register(ctx, recovery, watchdog.collector())
    if ctx.scheduler is not None:  # live intervals of the tunable jobs (/tune every:<job>)
        register_job_knobs(recovery.knobs, ctx.scheduler)


def _wire_database(ctx: RecoveryContext, recovery: Recovery) -> None:
    s = ctx.settings
    if s.db_slow_query_s > 0:  # statements over DB_SLOW_QUERY_S, each shape's plan taken once, off the hot path
        slow = recovery.slow_queries = SlowQueryLog(ctx.db, threshold_s=s.db_slow_query_s)
        recovery._jobs += slow.jobs()
        recovery._stoppers.append(slow.close)
        _register(ctx, recovery, slow.collector())
    if ctx.db.dialect != "postgresql" or ctx.collectors is None or ctx.db.pool_size is None:
        return
    latest = ctx.collectors.latest_value  # the pool grows while connections wait, shrinks when idle

    def readings() -> PoolReading:
        return PoolReading(latest(m.DB_POOL_ACQUIRE_SECONDS), latest(m.DB_POOL_CHECKED_OUT),
                           latest(m.DB_POOL_OVERFLOW))

    pool = recovery.db_pool = PoolController(ctx.db, readings, recovery.knobs, ctx.clock, minimum=s.db_pool_min,
                                             maximum=max(s.db_pool_min, s.db_pool_max),
                                             interval_s=s.collect_interval_s)
    recovery._jobs += pool.jobs()


async def _wire_ledger(ctx: RecoveryContext, recovery: Recovery, outbox: Outbox | None,
                       alert_chat_id: int | None) -> None:
    s = ctx.settings
    ledger = recovery.ledger = ActionLedger(ctx.db, ctx.clock, recovery.knobs, queue_max=s.recovery_ledger_queue_max,
                                            flush_s=s.recovery_ledger_flush_s,
                                            outcome_after_s=s.recovery_outcome_after_s)
    recovery.controls = Controls(recovery.knobs, ledger, ctx.clock)
    if outbox is not None:
        chat = alert_chat_id if alert_chat_id is not None else s.telegram_alert_chat_id
        recovery.announcer = Announcer(outbox, ctx.clock, chat_id=chat, window_s=s.recovery_announce_window_s)
        ledger.on_written(recovery.announcer.announce)
    await ledger.restore_pins()     # after every knob is registered
    recovery._jobs += ledger.jobs()
    recovery._stoppers.insert(0, ledger.flush)   # the last to run at stop: writes what is still queued


async def build_recovery(ctx: RecoveryContext, *, outbox: Outbox | None = None,
                         alert_chat_id: int | None = None) -> Recovery:
    recovery = Recovery(ctx.knobs or KnobRegistry(ctx.clock))
    ctx.knobs = recovery.knobs
    for wire in (_wire_flow, _wire_market, _wire_memory, _wire_watchdog, _wire_database):
        wire(ctx, recovery)
    await _wire_ledger(ctx, recovery, outbox, alert_chat_id)
    ctx.recovery = recovery
    return recovery
