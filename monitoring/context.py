"""What monitoring reads and publishes: the core context plus the pipeline and monitoring's parts.

    ctx = MonitoringContext(settings=settings, db=db, clock=clock, pipeline=pipeline)
    monitoring = await build_monitoring(ctx)      # sets ctx.metrics and ctx.collectors
    ctx.collectors.coordinator.latest             # the latest MonitoringSnapshot
"""
from __future__ import annotations

from dataclasses import dataclass

from app.context import AppContext
from monitoring.collector import CollectorRegistry
from monitoring.store import MetricStore
from tokens.pipeline import Pipeline


@dataclass
class MonitoringContext(AppContext):
    pipeline: Pipeline | None = None  # None in a process that runs no pipeline
    metrics: MetricStore | None = None  # set by build_monitoring
    collectors: CollectorRegistry | None = None  # set by build_monitoring
