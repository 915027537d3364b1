"""Collector ``pipeline``: the token pipeline's health as samples.

Runs every query of ``monitoring.pipeline`` once per cycle (``pipeline_snapshot``) and
emits counts by status, transitions and checks per minute, processing lag by status and
band, backlog, stuck tokens, activation rates, time to activation, stall and bottleneck
flags, per-stage figures and pool-discrepancy counters::

    collector = PipelineCollector(db, PipelineParams.from_settings(settings),
                                  stage_stats=pipeline.stage_stats, discrepancies=verifier.stats)
    registry.register(collector)
    collector.last_snapshot          # the newest PipelineSnapshot (for /status), or None

The snapshot also carries what /status shows beside the figures: the last hour's failure
reasons (recounted every ``FAILURES_EVERY_S``: an hour's statistics barely move in 10 s; the counts
come from the per-minute rollup, but the advice reads the conditions of up to 500 failing checks),
the failure hint (judged on EVERY cycle with the rate
window's fetch failures first, so a market outage is never blamed on the tokens) and the newest
failed fetches (``ERRORS_SHOWN``).

The queue trend (growing vs merely non-empty queues) and the token counts by status (the archived
tokens are recounted hourly, ``monitoring.pipeline.status_counts``) live in the collector, so keep
one instance for the life of the process.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from app.db import Database
from monitoring.failure_stats import FailureStats, failure_stats, fetching_now_hint
from monitoring.pipeline.errors import last_errors
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.pipeline import PipelineParams, PipelineSnapshot, QueueTrend, pipeline_snapshot
from monitoring.pipeline.percentiles import Distribution
from monitoring.pipeline.status_counts import StatusCounts

QUANTILES = (("0.5", "p50"), ("0.95", "p95"), ("1", "max"))
FAILURE_WINDOW = ("1h", 3600.0)
ERRORS_SHOWN = 5
FAILURES_EVERY_S = 60.0


def _dist(name: str, dist: Distribution, labels: dict[str, str], quantiles=QUANTILES) -> list[Sample]:
    out = []
    for quantile, attr in quantiles:
        value = getattr(dist, attr)
        if value is not None:
            out.append(Sample(name, float(value), {**labels, "quantile": quantile}))
    return out


def snapshot_samples(snap: PipelineSnapshot) -> list[Sample]:
    """Every sample of one snapshot (pure; used by the collector and its tests)."""
    out: list[Sample] = [Sample(m.TOKENS, float(n), {"status": s}) for s, n in snap.counts.items()]
    for (frm, to), rate in snap.transitions_per_min.items():
        out.append(Sample(m.TRANSITIONS_PER_MINUTE, rate, {"from": frm or "none", "to": to}))
    out += [Sample(m.CHECKS_PER_MINUTE, rate, {"status": s}) for s, rate in snap.checks_per_min.items()]
    out.append(Sample(m.CHECK_OUTCOMES_PER_MINUTE, snap.check_rates.ok, {"outcome": "ok"}))
    out.append(Sample(m.CHECK_OUTCOMES_PER_MINUTE, snap.check_rates.failed, {"outcome": "failed"}))
    out.append(Sample(m.RATE_WINDOW_SECONDS, snap.check_rates.window_s))
    for status, dist in snap.lag.by_status.items():
        out += _dist(m.PROCESSING_LAG_SECONDS, dist, {"status": status})
    for band in ("hot", "cold"):
        band_dist = snap.lag.by_band.get(band)
        if band_dist is not None:
            out += _dist(m.PROCESSING_LAG_SECONDS, band_dist, {"band": band})
        out.append(Sample(m.DUE_TOKENS, float(band_dist.count if band_dist else 0), {"band": band}))
        out.append(Sample(m.OVERDUE_TOKENS, float(snap.lag.overdue_by_band.get(band, 0)), {"band": band}))
    out.append(Sample(m.STUCK_TOKENS, float(snap.stuck_count)))
    out += [Sample(m.STUCK_TOKENS_BY_REASON, float(n), {"reason": reason}) for reason, n in snap.stuck_by_reason.items()]
    if snap.activation.token_rate is not None:
        out.append(Sample(m.ACTIVATION_SUCCESS_RATE, snap.activation.token_rate))
    if snap.activation.check_pass_rate is not None:
        out.append(Sample(m.ACTIVATION_CHECK_PASS_RATE, snap.activation.check_pass_rate))
    out += _dist(m.TIME_TO_ACTIVATION_SECONDS, snap.time_to_activation, {}, QUANTILES[:2])
    if snap.last_check_at is not None:
        out.append(Sample(m.LAST_CHECK_AGE_SECONDS, max(0.0, snap.now - snap.last_check_at)))
    out.append(Sample(m.PIPELINE_STALLED, 1.0 if snap.stall.stalled else 0.0))
    for view in snap.stages:
        labels = {"stage": view.name}
        out.append(Sample(m.STAGE_QUEUE_SIZE, float(view.queue_size), labels))
        if view.last_at is not None:
            out.append(Sample(m.STAGE_LAST_RUN_AGE_SECONDS, max(0.0, snap.now - view.last_at), labels))
        if view.name in snap.bottleneck.shares:
            out.append(Sample(m.STAGE_TIME_SHARE, snap.bottleneck.shares[view.name], labels))
        out.append(Sample(m.PIPELINE_BOTTLENECK, 1.0 if snap.bottleneck.stage == view.name else 0.0, labels))
        out.append(Sample(m.PIPELINE_STALLED_STAGE, 1.0 if snap.stall.stage == view.name else 0.0, labels))
    return out


class PipelineCollector:
    """See the module docstring. ``stage_stats`` is a ``StageStats`` (or a callable returning one)."""

    name = "pipeline"

    def __init__(self, db: Database, params: PipelineParams | None = None, *, stage_stats: Any = None,
                 discrepancies: Any = None, trend: QueueTrend | None = None) -> None:
        self.db = db
        self.params = params or PipelineParams()
        self.stage_stats = stage_stats
        self.discrepancies = discrepancies
        self.trend = trend or QueueTrend()
        self.status_counts = StatusCounts()  # archived tokens recounted hourly, not every cycle
        self.last_snapshot: PipelineSnapshot | None = None
        self._failures: FailureStats | None = None
        self._failures_at = 0.0

    async def collect(self, now: float) -> list[Sample]:
        stats = self.stage_stats() if callable(self.stage_stats) else self.stage_stats

        async def failures_and_errors() -> tuple[FailureStats, list]:
            async with self.db.session() as session:
                failures = self._failures
                if failures is None or not 0 <= now - self._failures_at < FAILURES_EVERY_S:
                    failures = await failure_stats(session, now, windows=(FAILURE_WINDOW,), codes_windows=())
                    self._failures, self._failures_at = failures, now
                return failures, await last_errors(session, now, FAILURE_WINDOW[1], ERRORS_SHOWN)

        # the snapshot and the failure figures read independently: side by side, on their own connections
        snap, (failures, errors) = await asyncio.gather(
            pipeline_snapshot(self.db, now, self.params, stage_stats=stats, trend=self.trend,
                              status_counts=self.status_counts),
            failures_and_errors())
        hint = fetching_now_hint(snap.check_rates, snap.stall.fetch_failing) or failures.recommendation
        snap = replace(snap, failures=failures.windows[FAILURE_WINDOW[0]], recommendation=hint,
                       last_errors=tuple(errors))
        self.last_snapshot = snap
        out = snapshot_samples(snap)
        if self.discrepancies is not None:
            out.append(Sample(m.POOL_VERIFICATIONS_TOTAL, float(self.discrepancies.verifications)))
            for kind, count in sorted(self.discrepancies.by_kind.items()):
                out.append(Sample(m.POOL_DISCREPANCIES_TOTAL, float(count), {"kind": kind}))
        return out
