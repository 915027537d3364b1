"""/status sections about the pipeline's health: lag and backlog, activation, last errors.

Register them on the /status seam (the composition root does this once)::

    sections = default_sections()
    register_pipeline_sections(sections)        # "pipeline_health" (20), "activation" (30), "errors" (40)
    build_dispatcher(ctx, status_sections=sections)

Each provider reads the cycle's ``MonitoringSnapshot`` (``snapshot.pipeline``: the pipeline
collector's figures, stall and failure hint) and renders with ``bot.views.pipeline_status``; none
runs a query, so the sections cannot disagree with each other or with /metrics.
"""
from __future__ import annotations

from typing import Any

from bot.context import BotContext
from bot.status_sections import StatusSections
from bot.views.pipeline_status import (
    ERRORS_WINDOW_S,
    render_activation_section,
    render_errors_section,
    render_health_section,
)
from bot.views.status import render_pipeline_unavailable
from monitoring.pipeline.capacity import capacity_status
from monitoring.snapshot import MonitoringSnapshot


async def health_section(ctx: BotContext, snapshot: MonitoringSnapshot, now: float) -> str:
    """Lag p50/p95/max by band, backlog, stuck count, stall (judged on the last SUCCESSFUL check), and
    capacity: what the API limit serves, over capacity when the tracked tokens exceed it."""
    p = snapshot.pipeline
    if p is None:
        return render_pipeline_unavailable(snapshot, "Processing")
    return render_health_section(p.lag, p.stuck_count, p.stall, lookback_s=p.lookback_s,
                                 capacity=capacity_status(p, ctx.settings))


async def activation_section(ctx: BotContext, snapshot: MonitoringSnapshot, now: float) -> str:
    """Activation success rate, check pass rate, time to activation, top failure reasons (1 h) and the hint."""
    p = snapshot.pipeline
    if p is None:
        return render_pipeline_unavailable(snapshot, "Activation")
    return render_activation_section(p.activation, p.time_to_activation, p.failures, p.recommendation)


def register_pipeline_sections(sections: StatusSections) -> StatusSections:
    async def errors_section(ctx: BotContext, snapshot: MonitoringSnapshot, now: float) -> str:
        """The newest failed fetches, Telegram delivery failures and handler errors of the past hour."""
        fetches = snapshot.pipeline.last_errors if snapshot.pipeline is not None else ()
        others = [e for errors in sections.error_sources.values() for e in errors.latest(since=now - ERRORS_WINDOW_S)]
        return render_errors_section(fetches, others, now)

    sections.add("pipeline_health", health_section, order=20)
    sections.add("activation", activation_section, order=30)
    sections.add("errors", errors_section, order=40)
    return sections
