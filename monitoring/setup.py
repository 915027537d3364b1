"""Build monitoring for a running service: store, collectors, loop-lag task, HTTP endpoints.

Called by the composition root (``tokenwatch.service``)::

    monitoring = await build_monitoring(ctx)       # sets ctx.metrics and ctx.collectors
    ctx.collectors.coordinator.add_listener(fn)    # every cycle's MonitoringSnapshot (monitoring/snapshot.py)
    ctx.scheduler.add_all(monitoring.jobs())       # monitoring.collect / .rollup / .retention
    supervisor.add_all(monitoring.loops())         # monitoring.loop_lag: the event-loop lag probe
    ...
    await monitoring.stop()

Collectors registered: ``process``, ``loop_lag``, ``db``, ``redis`` (when Redis is configured),
``api`` (when ``ctx.pipeline.api_stats`` exists), ``scheduler`` (when ``ctx.scheduler`` exists),
``loops`` (when ``ctx.supervisor`` exists),
``pipeline`` (always: its figures come from the database; the source of every
``MonitoringSnapshot.pipeline``), ``pipeline_counters`` (when ``ctx.pipeline`` exists) and any
``extra_collectors``.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.clock import Clock
from app.db import Database
from app.scheduler import JobSpec
from app.settings import Settings
from app.supervisor import LoopSpec
from monitoring.context import MonitoringContext
from monitoring.collector import Collector, CollectorRegistry
from monitoring.collectors.api import ApiCollector
from monitoring.collectors.breakers import BreakerCollector
from monitoring.collectors.pool_cache import PoolCacheCollector
from monitoring.collectors.build_info import BuildInfoCollector
from monitoring.collectors.pipeline import PipelineCollector
from monitoring.collectors.pipeline_counters import PipelineCountersCollector
from monitoring.collectors.scheduler import LoopsCollector, SchedulerCollector
from monitoring.discrepancies import PoolVerifier
from monitoring.host.db_pool import DbPoolCollector
from monitoring.host.loop_lag import LoopLagMonitor
from monitoring.host.process import ProcessCollector
from monitoring.host.redis_health import RedisCollector
from monitoring.http import HttpServer
from monitoring.pipeline import PipelineParams
from monitoring.store import MetricStore
from tokens.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass
class Monitoring:
    """The running monitoring parts; ``stop()`` undoes ``build_monitoring``."""

    registry: CollectorRegistry
    store: MetricStore
    loop_lag: LoopLagMonitor
    http: HttpServer | None = None
    db_collector: DbPoolCollector | None = None
    redis_collector: RedisCollector | None = None
    owned_redis: bool = False
    pool_verifier: PoolVerifier | None = None  # when a processor is wired
    _stopped: bool = field(default=False, repr=False)

    def jobs(self) -> list[JobSpec]:
        return self.registry.jobs()

    def loops(self) -> list[LoopSpec]:
        """The supervised loops of monitoring: the event-loop lag probe."""
        return [self.loop_lag.loop_spec()]

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.http is not None:
            await self.http.stop()
        await self.loop_lag.stop()
        if self.db_collector is not None:
            self.db_collector.close()
        if self.redis_collector is not None and self.owned_redis:
            await self.redis_collector.close()


def attach_pool_verifier(pipeline: Pipeline, db: Database, settings: Settings, clock: Clock) -> PoolVerifier | None:
    """Listen to the processor's pool failures with a ``PoolVerifier`` (the batch vs per-token
    cross-check), spending ``DISCREPANCY_BUDGET_SHARE`` of the client's request budget.
    Returns the verifier, or None when the pipeline has no processor (not started)."""
    processor, client = pipeline.processor, pipeline.client
    if processor is None or client is None:
        return None
    verifier = PoolVerifier.from_settings(client, db, settings, clock=clock, rules=processor.rules)
    processor.failure_listeners.append(verifier.verify)
    return verifier


async def build_monitoring(
    ctx: MonitoringContext,
    *,
    serve_http: bool = True,
    extra_collectors: Iterable[Collector] = (),
    loop_lag_interval_s: float = 0.5,
) -> Monitoring:
    """Create the store and registry, register the standard collectors, start HTTP. The loop-lag
    probe runs under the supervisor (``Monitoring.loops()``)."""
    settings = ctx.settings
    store = MetricStore.from_settings(ctx.db, settings, ctx.clock)
    registry = CollectorRegistry(clock=ctx.clock, store=store, collect_interval_s=settings.collect_interval_s,
                                 rate_window_s=settings.rate_window_s)
    ctx.metrics, ctx.collectors = store, registry

    loop_lag = LoopLagMonitor(interval_s=loop_lag_interval_s)
    monitoring = Monitoring(registry=registry, store=store, loop_lag=loop_lag)
    registry.register(ProcessCollector(clock=ctx.clock))
    registry.register(BuildInfoCollector())
    registry.register(loop_lag)
    monitoring.db_collector = DbPoolCollector(ctx.db, ctx.clock)
    registry.register(monitoring.db_collector)

    if ctx.redis is not None:
        monitoring.redis_collector = RedisCollector(ctx.redis, ctx.clock)
    elif settings.redis_url:
        monitoring.redis_collector = RedisCollector.from_url(settings.redis_url, ctx.clock)
        monitoring.owned_redis = True
    if monitoring.redis_collector is not None:
        registry.register(monitoring.redis_collector)

    pipeline = ctx.pipeline
    if pipeline is not None:
        registry.register(ApiCollector(pipeline.api_stats.snapshot))
        registry.register(BreakerCollector(pipeline.breakers, pipeline.client))
        registry.register(PoolCacheCollector(lambda: pipeline.pool_cache))   # built when the pipeline starts
        registry.register(PipelineCountersCollector(pipeline.counters))
    if ctx.scheduler is not None:
        registry.register(SchedulerCollector(ctx.scheduler.job_stats))
    if ctx.supervisor is not None:
        registry.register(LoopsCollector(ctx.supervisor.loop_stats))
    # The pipeline's figures come from the database, so every process with one reports them (a
    # process without a running pipeline just has no stage timings or pool cross-checks).
    verifier = attach_pool_verifier(pipeline, ctx.db, settings, ctx.clock) if pipeline is not None else None
    monitoring.pool_verifier = verifier
    registry.register_pipeline(PipelineCollector(ctx.db, PipelineParams.from_settings(settings),
                                                 stage_stats=pipeline.stage_stats if pipeline is not None else None,
                                                 discrepancies=verifier.stats if verifier else None))
    for collector in extra_collectors:
        registry.register(collector)

    if serve_http:
        monitoring.http = HttpServer.from_context(ctx)
        try:
            await monitoring.http.start()
        except OSError as exc:
            log.error("cannot serve monitoring HTTP on %s:%s (HTTP_HOST/HTTP_PORT): %s",
                      settings.http_host, settings.http_port, exc)
            await monitoring.stop()
            raise
    return monitoring
