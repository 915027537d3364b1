"""Pipeline monitoring: pure query functions over tokens, transitions and checks.

Every function takes ``(session, now, params)`` and holds its own SQL; nothing here
writes. Checks are never counted from ``checks``: the per-minute counts ``check_minutes``
(``tokens.check_rollup``, written with each batch of checks) give the check rates, the pass rate
and the failure reasons for ~10 rows a minute of window, whatever the check rate. Indexes relied
on: ``tokens(next_check_at)`` (lag, backlog), ``tokens(status, status_since)`` (stuck),
``transitions(at)`` and ``transitions(to_status, at)`` (rates, activation), ``check_minutes``'
primary key (minute first), ``checks(at)`` (last check; last successful check, looked for only in
the newest minute that had one), ``checks(at) WHERE NOT ok`` (the newest failed fetches) and
``checks(token_id, at)`` (a stuck token's last check). ``tests/monitoring/test_query_plans.py``
holds every statement of a cycle to an index on SQLite and PostgreSQL.

    from monitoring.pipeline import PipelineParams, pipeline_snapshot
    snap = await pipeline_snapshot(db, clock.time(), PipelineParams.from_settings(settings))
"""
from monitoring.pipeline.activation import ActivationSuccess, activation_success, time_to_activation
from monitoring.pipeline.lag import COLD, HOT, LagParams, LagReport, processing_lag
from monitoring.pipeline.percentiles import Distribution, distribution, percentile_disc_sql
from monitoring.pipeline.rates import checks_per_minute, transitions_per_minute
from monitoring.pipeline.snapshot import (
    PipelineParams,
    PipelineSnapshot,
    StallEvidence,
    judge_stall,
    pipeline_snapshot,
    read_stall_evidence,
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
    stage_views,
    stall_lookback_s,
)
from monitoring.pipeline.stuck import StuckPage, StuckParams, StuckToken, count_stuck, stuck_tokens

__all__ = [
    "COLD", "HOT", "ActivationSuccess",
    "last_successful_check_time", "stall_lookback_s", "BottleneckReport", "Distribution", "LagParams", "LagReport",
    "PipelineParams", "PipelineSnapshot", "QueueTrend", "StageView", "StallReport", "StuckPage",
    "StuckParams", "StuckToken", "activation_success", "checks_per_minute", "count_stuck", "detect_stall",
    "find_bottleneck", "last_check_time", "distribution", "percentile_disc_sql", "pipeline_snapshot", "processing_lag",
    "stage_views", "stuck_tokens", "time_to_activation", "transitions_per_minute",
    "StallEvidence", "judge_stall", "read_stall_evidence",
]
