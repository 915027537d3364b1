"""Per-job figures of the scheduler (``app.scheduler.Scheduler.job_stats()``) and per-loop
figures of the supervisor (``app.supervisor.Supervisor.loop_stats()``).

    registry.register(SchedulerCollector(scheduler.job_stats))
    # tokenwatch_job_running_seconds{job="pipeline.process"} 0.0
    registry.register(LoopsCollector(supervisor.loop_stats))
    # tokenwatch_loop_state{loop="bot.outbox_sender",state="running"} 1.0
    # tokenwatch_loop_restarts_total{loop="bot.outbox_sender"} 0.0
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from app.numbers import finite_float
from app.percentiles import median
from app.supervisor import LOOP_STATES
from monitoring import metric_names as m
from monitoring.sample import Sample


class SchedulerCollector:
    """Collector ``scheduler``: per job runs, errors, timeouts, missed and skipped runs, last start/end,
    duration p50 and max over recent runs, and the age of the current run (0 when idle).

        SchedulerCollector(scheduler.job_stats)
    """

    name = "scheduler"

    def __init__(self, job_stats: Callable[[], Iterable[Any]]) -> None:
        self.job_stats = job_stats

    async def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for stats in self.job_stats():
            labels = {"job": str(stats.id)}
            for metric, attr in ((m.JOB_RUNS_TOTAL, "runs"), (m.JOB_ERRORS_TOTAL, "errors"),
                                 (m.JOB_TIMEOUTS_TOTAL, "timeouts"), (m.JOB_MISSED_TOTAL, "missed"),
                                 (m.JOB_SKIPPED_MAX_INSTANCES_TOTAL, "skipped_max_instances"),
                                 (m.JOB_LAST_START_TIMESTAMP, "last_start"), (m.JOB_LAST_END_TIMESTAMP, "last_end")):
                value = finite_float(getattr(stats, attr, None))
                if value is not None:
                    out.append(Sample(metric, value, labels))
            durations = [d for d in (finite_float(x) for x in getattr(stats, "durations", ()) or ()) if d is not None]
            if durations:
                out.append(Sample(m.JOB_DURATION_P50_SECONDS, median(durations) or 0.0, labels))
                out.append(Sample(m.JOB_DURATION_MAX_SECONDS, max(durations), labels))
            since = finite_float(getattr(stats, "running_since", None))
            out.append(Sample(m.JOB_RUNNING_SECONDS, max(0.0, now - since) if since is not None else 0.0, labels))
        return out


class LoopsCollector:
    """Collector ``loops``: per supervised loop its state (one 0/1 sample per state), restarts,
    failures, hangs, and the age of its last heartbeat (loops with a heartbeat budget).

        LoopsCollector(supervisor.loop_stats)
    """

    name = "loops"

    def __init__(self, loop_stats: Callable[[], Iterable[Any]]) -> None:
        self.loop_stats = loop_stats

    async def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for stats in self.loop_stats():
            labels = {"loop": str(stats.id)}
            for state in LOOP_STATES:
                out.append(Sample(m.LOOP_STATE, 1.0 if stats.state == state else 0.0, {**labels, "state": state}))
            out.append(Sample(m.LOOP_RESTARTS_TOTAL, float(stats.restarts), labels))
            out.append(Sample(m.LOOP_FAILURES_TOTAL, float(stats.failures), labels))
            out.append(Sample(m.LOOP_HANGS_TOTAL, float(stats.hangs), labels))
            last_beat = finite_float(stats.last_beat)
            if stats.heartbeat_budget_s is not None and last_beat is not None:
                out.append(Sample(m.LOOP_HEARTBEAT_AGE_SECONDS, max(0.0, now - last_beat), labels))
        return out
