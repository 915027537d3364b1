"""One pass over every pipeline query: what the collector emits and /status shows.

    params = PipelineParams.from_settings(settings)
    snap = await pipeline_snapshot(db, now, params, stage_stats=stats, trend=trend)
    snap.counts["monitoring"], snap.lag.by_band["hot"].p95, snap.stuck_count, snap.stall.stalled
    snap.check_rates.ok, snap.check_rates.failed     # successful vs failed checks per minute

Stall detection uses the last SUCCESSFUL check (``checks.ok``), so a total fetch outage,
during which failed checks keep being recorded, reports a stall at the ``fetch`` stage.

The queries run in two sessions side by side (the stuck count, which reads every live token, on its
own); each is a range scan on an index, and checks are counted from the per-minute counts (see
``monitoring/pipeline/__init__.py``).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.db import Database
from monitoring.pipeline.activation import ActivationSuccess, activation_success, time_to_activation
from monitoring.pipeline.lag import LagParams, LagReport, processing_lag
from monitoring.pipeline.percentiles import Distribution
from monitoring.pipeline.rates import (
    checks_per_minute,
    transitions_per_minute,
)
from monitoring.pipeline.stages import (
    BottleneckReport,
    QueueTrend,
    StageView,
    StallReport,
    detect_stall,
    find_bottleneck,
    last_check_time,
    last_successful_check_time,
    oldest_live_since,
    stage_views,
    stall_lookback_s,
)
from monitoring.pipeline.status_counts import StatusCounts
from monitoring.pipeline.stuck import StuckParams, count_stuck_by_reason
from tokens.queries import CheckRates, check_outcomes_per_minute, counts_by_status

if TYPE_CHECKING:  # pragma: no cover - monitoring.failure_stats imports this package
    from monitoring.failure_stats import FailureWindow
    from monitoring.pipeline.errors import CheckError


@dataclass(frozen=True)
class PipelineParams:
    """Every threshold the pipeline queries use; ``from_settings`` maps the settings."""

    lag: LagParams = field(default_factory=LagParams)
    stuck: StuckParams = field(default_factory=StuckParams)
    rate_window_s: float = 60.0  # RATE_WINDOW_S
    activation_window_s: float = 3600.0
    stall_intervals: int = 3

    @classmethod
    def from_settings(cls, settings: Any, *, rate_window_s: float | None = None) -> "PipelineParams":
        return cls(
            lag=LagParams.from_settings(settings),
            stuck=StuckParams.from_settings(settings),
            rate_window_s=float(rate_window_s if rate_window_s is not None else settings.rate_window_s),
            activation_window_s=float(settings.activation_window_h) * 3600.0,
            stall_intervals=int(settings.stall_intervals),
        )


@dataclass(frozen=True)
class StallEvidence:
    """What a stall is judged on: the last check of any outcome, the last SUCCESSFUL one (looked
    for within ``lookback_s``), and the ok/failed check rates over the rate window."""

    last_check_at: float | None
    last_success_at: float | None
    rates: CheckRates
    lookback_s: float
    live_since: float | None = None   # the longest-live token's status_since, read only with no success


async def read_stall_evidence(session: Any, now: float, params: PipelineParams) -> StallEvidence:
    lookback = stall_lookback_s(params.stall_intervals * max(params.lag.hot_interval_s, params.lag.cold_interval_s),
                                params.rate_window_s)
    last_success = await last_successful_check_time(session, now, lookback)
    return StallEvidence(
        await last_check_time(session),
        last_success,
        await check_outcomes_per_minute(session, now, params.rate_window_s),
        lookback,
        await oldest_live_since(session) if last_success is None else None,
    )


def judge_stall(now: float, params: PipelineParams, counts: dict[str, int], evidence: StallEvidence,
                views: list[StageView], trend: QueueTrend | None = None) -> StallReport:
    """``detect_stall`` with the interval of the tokens that are live (hot when any is active)."""
    live = counts.get("monitoring", 0) + counts.get("active", 0)
    interval = params.lag.hot_interval_s if counts.get("active", 0) else params.lag.cold_interval_s
    return detect_stall(now, evidence.last_success_at, live_tokens=live, interval_s=interval,
                        stall_intervals=params.stall_intervals, views=views, trend=trend,
                        last_attempt_at=evidence.last_check_at,
                        failed_checks=round(evidence.rates.failed * params.rate_window_s / 60.0),
                        live_since=evidence.live_since)


@dataclass(frozen=True)
class PipelineSnapshot:
    now: float
    counts: dict[str, int]
    transitions_per_min: dict[tuple[str | None, str], float]
    checks_per_min: dict[str, float]
    lag: LagReport
    stuck_count: int
    activation: ActivationSuccess
    time_to_activation: Distribution
    last_check_at: float | None  # the last check of any outcome (failed fetches included)
    stages: list[StageView]
    stall: StallReport
    bottleneck: BottleneckReport
    check_rates: CheckRates = field(default_factory=CheckRates)
    last_success_at: float | None = None  # the last successful check, within the stall lookback
    # filled by the pipeline collector (monitoring.collectors.pipeline), for /status:
    failures: "FailureWindow | None" = None  # failure reasons over the last hour
    recommendation: str | None = None  # the failure hint (about fetching first when fetches fail)
    last_errors: "tuple[CheckError, ...]" = ()  # the newest failed fetches in the last hour
    lookback_s: float | None = None  # how far back the last successful check was looked for
    stuck_by_reason: dict[str, int] = field(default_factory=dict)  # reason class -> count, largest first

    @property
    def live_tokens(self) -> int:
        return self.counts.get("monitoring", 0) + self.counts.get("active", 0)


async def pipeline_snapshot(
    db: Database,
    now: float,
    params: PipelineParams | None = None,
    *,
    stage_stats: Any = None,
    trend: QueueTrend | None = None,
    status_counts: StatusCounts | None = None,
) -> PipelineSnapshot:
    """Run every pipeline query once and derive stall and bottleneck reports.

    ``trend`` (kept by the caller across calls) is fed the current stage views first.
    ``status_counts`` (kept by the caller too) counts tokens by status without reading the archived
    ones every time; without it every token is counted (``counts_by_status``).
    """
    params = params or PipelineParams()

    async def _stuck() -> dict[str, int]:
        # one pass over the live tokens gives the stuck count and its reasons (a COUNT alone reads as much);
        # the cycle's longest read, so it runs on its own connection beside the others
        async with db.session() as session:
            return await count_stuck_by_reason(session, now, params.stuck)

    async def _read(session):
        return (
            await status_counts.read(session, now) if status_counts is not None else await counts_by_status(session),
            await transitions_per_minute(session, now, params.rate_window_s),
            await checks_per_minute(session, now, params.rate_window_s),
            await processing_lag(session, now, params.lag),
            await activation_success(session, now, params.activation_window_s),
            await time_to_activation(session, now, params.activation_window_s),
            await read_stall_evidence(session, now, params),
        )

    async def _rest():
        async with db.session() as session:
            return await _read(session)

    stuck_reasons, (counts, moves, checks, lag, act, tta, evidence) = await asyncio.gather(_stuck(), _rest())
    stuck = sum(stuck_reasons.values())
    views = stage_views(stage_stats) if stage_stats is not None else []
    if trend is not None:
        trend.observe(views)
    stall = judge_stall(now, params, counts, evidence, views, trend)
    neck = find_bottleneck(views, trend)
    return PipelineSnapshot(now, counts, moves, checks, lag, stuck, act, tta, evidence.last_check_at, views, stall,
                            neck, evidence.rates, evidence.last_success_at, lookback_s=evidence.lookback_s,
                            stuck_by_reason=stuck_reasons)
