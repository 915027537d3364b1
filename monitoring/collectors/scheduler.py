"""Per-job figures of the scheduler, from ``app.scheduler.Scheduler.job_stats()``.

    registry.register(SchedulerCollector(scheduler.job_stats))
    # tokenwatch_job_running_seconds{job="pipeline.process"} 0.0
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from app.numbers import finite_float
from app.percentiles import median
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
