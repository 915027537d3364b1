"""/status sections about the pipeline's health: lag and backlog, activation, last errors.

Register them on the /status seam (the composition root does this once)::

    sections = default_sections()
    register_pipeline_sections(sections)        # "pipeline_health" (20), "activation" (30), "errors" (40)
    build_dispatcher(ctx, status_sections=sections)

Each provider runs the same query functions the pipeline collector uses and renders
with ``bot.views.pipeline_status``.
"""
from __future__ import annotations

from typing import Any

from bot.status_sections import StatusSections
from bot.views.pipeline_status import render_activation_section, render_errors_section, render_health_section
from monitoring.failure_stats import failure_stats
from monitoring.pipeline import (
    LagParams,
    StuckParams,
    activation_success,
    count_stuck,
    check_outcomes_per_minute,
    detect_stall,
    last_check_time,
    last_successful_check_time,
    processing_lag,
    stage_views,
    stall_lookback_s,
    status_counts,
    time_to_activation,
)
from monitoring.pipeline.errors import last_errors
from tokens.queries import RATE_WINDOW_S


def _views(ctx: Any) -> list:
    """Stage views of the running pipeline; [] when this process runs none (no stage is blamed then)."""
    pipeline = getattr(ctx, "pipeline", None)
    stats = getattr(pipeline, "stage_stats", None) or getattr(pipeline, "stages", None)
    return stage_views(stats) if stats is not None else []


async def health_section(ctx: Any, session: Any, now: float) -> str:
    """Lag p50/p95/max by band, backlog, stuck count, stall (judged on the last SUCCESSFUL check)."""
    settings = ctx.settings
    lag = await processing_lag(session, now, LagParams.from_settings(settings))
    stuck = await count_stuck(session, now, StuckParams.from_settings(settings))
    counts = await status_counts(session)
    last_check = await last_check_time(session)
    live = counts.get("monitoring", 0) + counts.get("active", 0)
    interval = settings.hot_check_interval_s if counts.get("active", 0) else settings.cold_check_interval_s
    longest = settings.stall_intervals * max(settings.hot_check_interval_s, settings.cold_check_interval_s)
    lookback = stall_lookback_s(longest, RATE_WINDOW_S)
    last_success = await last_successful_check_time(session, now, lookback)
    rates = await check_outcomes_per_minute(session, now, RATE_WINDOW_S)
    stall = detect_stall(now, last_success, live_tokens=live, interval_s=interval,
                         stall_intervals=settings.stall_intervals, views=_views(ctx),
                         last_attempt_at=last_check, failed_checks=round(rates.failed * RATE_WINDOW_S / 60.0))
    return render_health_section(lag, stuck, stall, lookback_s=lookback)


async def activation_section(ctx: Any, session: Any, now: float) -> str:
    """Activation success rate, check pass rate, time to activation, top failure reasons (1 h) and advice."""
    window_s = float(ctx.settings.activation_window_h) * 3600.0
    rate = await activation_success(session, now, window_s)
    tta = await time_to_activation(session, now, window_s)
    failures = await failure_stats(session, now, windows=(("1h", 3600.0),), codes_windows=())
    return render_activation_section(rate, tta, failures.windows["1h"], failures.recommendation)


async def errors_section(ctx: Any, session: Any, now: float) -> str:
    """The last failed fetches in the past hour."""
    return render_errors_section(await last_errors(session, now, 3600.0, 3), now)


def register_pipeline_sections(sections: StatusSections) -> StatusSections:
    sections.add("pipeline_health", health_section, order=20)
    sections.add("activation", activation_section, order=30)
    sections.add("errors", errors_section, order=40)
    return sections
