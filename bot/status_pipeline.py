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
    PipelineParams,
    activation_success,
    count_stuck,
    judge_stall,
    processing_lag,
    read_stall_evidence,
    stage_views,
    time_to_activation,
)
from monitoring.pipeline.errors import last_errors
from tokens.queries import RATE_WINDOW_S, counts_by_status


def _views(ctx: Any) -> list:
    """Stage views of the running pipeline; [] when this process runs none (no stage is blamed then)."""
    pipeline = getattr(ctx, "pipeline", None)
    stats = getattr(pipeline, "stage_stats", None) or getattr(pipeline, "stages", None)
    return stage_views(stats) if stats is not None else []


async def health_section(ctx: Any, session: Any, now: float) -> str:
    """Lag p50/p95/max by band, backlog, stuck count, stall (judged on the last SUCCESSFUL check)."""
    params = PipelineParams.from_settings(ctx.settings, rate_window_s=RATE_WINDOW_S)
    lag = await processing_lag(session, now, params.lag)
    stuck = await count_stuck(session, now, params.stuck)
    evidence = await read_stall_evidence(session, now, params)
    stall = judge_stall(now, params, await counts_by_status(session), evidence, _views(ctx))
    return render_health_section(lag, stuck, stall, lookback_s=evidence.lookback_s)


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
