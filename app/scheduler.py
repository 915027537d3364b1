"""The job scheduler: APScheduler 3.11 ``AsyncIOScheduler`` with time budgets and statistics.

APScheduler has no job timeout and cannot kill a running job, so every job body runs
under ``asyncio.timeout(budget)``; the running task is recorded so a watchdog (or an
operator through ``/jobs``) can cancel it and run the job again. Packages contribute
``JobSpec``s and the composition root registers them with stable ids::

    scheduler = Scheduler(settings, clock)
    scheduler.add(JobSpec("pipeline.process", processor.run_once, interval_s=1.0, budget_s=30))
    scheduler.add(JobSpec("digest.daily", send_digest, cron="0 9 * * *"))   # crontab, in UTC
    scheduler.start()            # inside a running event loop
    supervisor.add_all(scheduler.loops())   # the watchdog: cancels and restarts overrunning jobs
    for stats in scheduler.job_stats():
        print(stats.id, stats.last_duration_s, stats.last_error)
    await scheduler.shutdown()
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from app.clock import SYSTEM_CLOCK, Clock
from app.tasks import SHUTDOWN_GRACE_S, finish_or_cancel
from app.percentiles import median
from app.settings import Settings
from app.supervisor import LoopSpec, RestartGate, Sleep, beat

log = logging.getLogger(__name__)

DURATION_SAMPLES = 200
SKIP_LOG_INTERVAL_S = 600.0
RESTART_WAIT_S = 5.0  # how long restart() waits for a cancelled run to end
WATCHDOG_INTERVAL_S = 5.0  # how often the watchdog looks for jobs running past their budget
WATCHDOG_GRACE_S = 5.0  # past the budget, the run's own asyncio.timeout gets this long to end it first
CRON_TIMEZONE = timezone.utc


@dataclass(frozen=True)
class JobSpec:
    """One job, run every ``interval_s`` seconds or on a ``cron`` schedule (crontab, five fields,
    in UTC), exactly one of the two. ``budget_s`` defaults to the ``JOB_BUDGET_S`` setting::

        JobSpec("pipeline.process", processor.run_once, interval_s=1.0, budget_s=30)
        JobSpec("digest.daily", send_digest, cron="0 9 * * *")      # every day at 09:00 UTC

    An invalid cron expression raises ``ValueError`` naming the job and the expression.
    ``start_delay_s`` applies to interval jobs (a cron job first runs at its next fire time).
    """

    id: str
    func: Callable[[], Awaitable[object]]
    interval_s: float | None = None
    budget_s: float | None = None
    max_instances: int = 1
    coalesce: bool = True
    misfire_grace_s: int | None = None
    start_delay_s: float = 0.0
    cron: str | None = None
    #: ``(lowest, highest)`` interval an operator may set live (``/tune every:<id> <s>``); None: fixed
    tunable: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if (self.interval_s is None) == (self.cron is None):
            raise ValueError(f"job {self.id}: give exactly one of interval_s and cron")
        if self.interval_s is not None and not self.interval_s > 0:
            raise ValueError(f"job {self.id}: interval_s must be positive, got {self.interval_s!r}")
        if self.cron is not None:
            self.trigger()  # validates
        if self.tunable is not None and (self.interval_s is None or not 0 < self.tunable[0] <= self.tunable[1]):
            raise ValueError(f"job {self.id}: tunable needs an interval job and 0 < lowest <= highest")

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger for this schedule."""
        if self.cron is not None:
            try:
                return CronTrigger.from_crontab(self.cron, timezone=CRON_TIMEZONE)
            except ValueError as exc:
                raise ValueError(f"job {self.id}: invalid cron expression {self.cron!r} "
                                 f"(want five fields: minute hour day month weekday, e.g. '0 9 * * *'): "
                                 f"{exc}") from None
        assert self.interval_s is not None
        return IntervalTrigger(seconds=self.interval_s, timezone=timezone.utc)

    @property
    def schedule(self) -> str:
        """How the job is scheduled, for people: ``every 30s`` or ``cron 0 9 * * * (UTC)``."""
        if self.cron is not None:
            return f"cron {' '.join(self.cron.split())} (UTC)"
        return f"every {self.interval_s:g}s"


@dataclass
class JobStats:
    id: str
    interval_s: float | None
    budget_s: float
    schedule: str = ""
    cron: str | None = None
    runs: int = 0
    errors: int = 0
    timeouts: int = 0
    missed: int = 0
    skipped_max_instances: int = 0
    skipped_in_a_row: int = 0   # ticks skipped since the running run started (reset when it ends)
    last_start: float | None = None
    last_end: float | None = None
    last_duration_s: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    running_since: float | None = None
    next_run_time: float | None = None
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=DURATION_SAMPLES))

    @property
    def duration_p50_s(self) -> float | None:
        return median(self.durations)

    @property
    def duration_max_s(self) -> float | None:
        return max(self.durations) if self.durations else None

    def running_for_s(self, now: float) -> float | None:
        return None if self.running_since is None else max(0.0, now - self.running_since)


class Scheduler:
    """Owns the ``AsyncIOScheduler``, the job specs, their stats and their running tasks."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK,
                 scheduler: AsyncIOScheduler | None = None, *, shutdown_grace_s: float = SHUTDOWN_GRACE_S) -> None:
        self.settings = settings
        self.clock = clock
        self.shutdown_grace_s = shutdown_grace_s  # how long runs in flight may finish at shutdown
        self._aps = scheduler or AsyncIOScheduler(timezone=timezone.utc)
        self._specs: dict[str, JobSpec] = {}     # scheduled now
        self._known: dict[str, JobSpec] = {}     # scheduled now or declared (a leader's job while standing by)
        self._stats: dict[str, JobStats] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._stopping = False
        self._last_skip_log: dict[str, float] = {}
        self._cancel_reason: dict[str, str] = {}
        self._overrun_logged: dict[str, float] = {}  # job id -> running_since of the run already said
        self.overruns_cancelled = 0
        self.restart_gate: RestartGate | None = None
        #: a running job whose ticks were skipped this many times in a row is restarted by the watchdog
        self.max_skips = settings.watchdog_max_skips
        self._aps.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    # -- registration ---------------------------------------------------------
    def add(self, spec: JobSpec) -> None:
        """Register (or replace) a job under its stable id."""
        budget = spec.budget_s if spec.budget_s is not None else self.settings.job_budget_s
        known = self._known.get(spec.id)
        if known is not None and known.tunable is not None and known.interval_s != spec.interval_s \
                and spec.interval_s is not None:
            spec = replace(spec, interval_s=known.interval_s)   # an interval set live outlives a removal
        self._specs[spec.id] = self._known[spec.id] = spec
        stats = self._stats.setdefault(spec.id, JobStats(id=spec.id, interval_s=spec.interval_s, budget_s=budget))
        stats.interval_s, stats.budget_s, stats.cron, stats.schedule = spec.interval_s, budget, spec.cron, spec.schedule
        first: dict[str, datetime] = {}
        if spec.cron is None:  # a cron job's first run is its trigger's next fire time
            first["next_run_time"] = datetime.now(timezone.utc) + timedelta(seconds=spec.start_delay_s)
        self._aps.add_job(
            self._run,
            trigger=spec.trigger(),
            args=[spec.id],
            id=spec.id,
            name=spec.id,
            replace_existing=True,
            max_instances=spec.max_instances,
            coalesce=spec.coalesce,
            misfire_grace_time=spec.misfire_grace_s or self.settings.job_misfire_grace_s,
            **first,
        )

    def add_all(self, specs: list[JobSpec]) -> None:
        for spec in specs:
            self.add(spec)

    def remove(self, job_id: str, reason: str = "removed") -> bool:
        """Unschedule a job and cancel its run in flight (a process that stopped leading); its
        statistics stay for ``/jobs``. ``add`` schedules it again. False if it was not scheduled."""
        if self._specs.pop(job_id, None) is None:
            return False
        if self._aps.get_job(job_id) is not None:
            self._aps.remove_job(job_id)
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            self._cancel_reason[job_id] = f"cancelled: {reason}"
            task.cancel()
        return True

    def start(self) -> None:
        """Start ticking; needs a running event loop."""
        if not self._aps.running:
            self._aps.start()

    async def shutdown(self) -> None:
        self._stopping = True
        if self._aps.running:
            self._aps.shutdown(wait=False)
        # runs in flight may finish (within SHUTDOWN_GRACE_S), the rest are cancelled
        await finish_or_cancel(list(self._tasks.values()), self.shutdown_grace_s)

    # -- running --------------------------------------------------------------
    async def _run(self, job_id: str) -> None:
        spec = self._specs.get(job_id)
        if spec is None:
            return
        stats = self._stats[job_id]
        task = asyncio.current_task()
        if task is not None:
            self._tasks[job_id] = task
        start_mono = self.clock.monotonic()
        stats.last_start = stats.running_since = self.clock.time()
        try:
            async with asyncio.timeout(stats.budget_s):
                await spec.func()
        except TimeoutError:
            stats.timeouts += 1
            stats.errors += 1
            self._record_error(stats, f"timed out after {stats.budget_s:g}s")
            log.warning("job %s exceeded its %.1fs budget and was cancelled", job_id, stats.budget_s)
        except asyncio.CancelledError:
            # Only we cancel a job's task (restart, watchdog, shutdown). The wrapper is the top of
            # that task, so the cancellation ends here: re-raised, APScheduler would log it as a
            # crash with a traceback.
            if not self._stopping:
                stats.errors += 1
                self._record_error(stats, self._cancel_reason.pop(job_id, "cancelled"))
                log.info("job %s was cancelled and will run again", job_id)
        except Exception as exc:  # noqa: BLE001 - a job's failure never stops the scheduler
            stats.errors += 1
            self._record_error(stats, f"{type(exc).__name__}: {exc}")
            log.exception("job %s failed", job_id)
        finally:
            duration = self.clock.monotonic() - start_mono
            stats.runs += 1
            stats.last_end = self.clock.time()
            stats.last_duration_s = duration
            stats.durations.append(duration)
            stats.running_since = None
            stats.skipped_in_a_row = 0
            if self._tasks.get(job_id) is task:
                self._tasks.pop(job_id, None)
            self._cancel_reason.pop(job_id, None)

    def _record_error(self, stats: JobStats, message: str) -> None:
        stats.last_error = message[:500]
        stats.last_error_at = self.clock.time()

    def _on_event(self, event: JobEvent) -> None:
        stats = self._stats.get(event.job_id)
        if stats is None:
            return
        if event.code == EVENT_JOB_MISSED:
            stats.missed += 1
            what = "missed its run time (the loop was busy)"
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            stats.skipped_max_instances += 1
            stats.skipped_in_a_row += 1
            what = "was still running at its next tick; the tick was skipped"
        else:
            return
        # APScheduler's own lines for these are silenced (app.logging); say it at most once per
        # SKIP_LOG_INTERVAL_S per job. The counts are exported by the scheduler collector.
        now = self.clock.monotonic()
        last = self._last_skip_log.get(event.job_id)
        if last is None or now - last >= SKIP_LOG_INTERVAL_S:
            self._last_skip_log[event.job_id] = now
            log.info("job %s %s (missed %d, skipped %d so far)", event.job_id, what, stats.missed,
                     stats.skipped_max_instances)

    # -- control (recovery.controllers.JobControl) ------------------------------
    def job_ids(self) -> list[str]:
        return sorted(self._specs)

    async def run_now(self, job_id: str) -> bool:
        """Ask for the job to run at once (the next tick); False if unknown."""
        if job_id not in self._specs:
            return False
        job = self._aps.get_job(job_id)
        if job is None:
            return False
        job.modify(next_run_time=datetime.now(timezone.utc))
        self._aps.wakeup()
        return True

    async def restart(self, job_id: str) -> bool:
        """Cancel the job's running task, if any, and run it again at once."""
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=RESTART_WAIT_S)
            if not task.done():
                log.warning("job %s did not end within %.0fs of being cancelled", job_id, RESTART_WAIT_S)
        return await self.run_now(job_id)

    def declare(self, spec: JobSpec) -> None:
        """Know a job that is not scheduled here yet (a singleton, scheduled while this process
        leads): it is listed by ``tunable_jobs`` and may be retimed before it runs."""
        self._known.setdefault(spec.id, spec)

    def tunable_jobs(self) -> list[JobSpec]:
        """The interval jobs an operator may retime live (``JobSpec.tunable``), scheduled or declared."""
        return [spec for _, spec in sorted(self._known.items()) if spec.tunable is not None]

    def interval_s(self, job_id: str) -> float | None:
        spec = self._known.get(job_id)
        return spec.interval_s if spec is not None else None

    def retime(self, job_id: str, interval_s: float) -> bool:
        """Run an interval job every ``interval_s`` from now on (a live settings change). The next
        run comes ``interval_s`` from now, so the change reaches the running scheduler at once; a
        run in flight is left alone and ends under its budget. False for an unknown or cron job.

            scheduler.retime("pipeline.archive", 120.0)
        """
        spec = self._known.get(job_id)
        if spec is None or spec.interval_s is None or not interval_s > 0:
            return False
        spec = self._known[job_id] = replace(spec, interval_s=float(interval_s))
        log.info("job %s now runs %s", job_id, spec.schedule)
        if job_id not in self._specs:   # declared, not scheduled here now: it starts at this interval
            return True
        self._specs[job_id] = spec
        stats = self._stats[job_id]
        stats.interval_s, stats.schedule = spec.interval_s, spec.schedule
        if self._aps.get_job(job_id) is not None:
            self._aps.reschedule_job(job_id, trigger=spec.trigger())
        return True

    # -- reading --------------------------------------------------------------
    def job_stats(self) -> list[JobStats]:
        """Stats of every registered job, with ``next_run_time`` filled in (epoch seconds)."""
        out = []
        for job_id in sorted(self._stats):
            stats = self._stats[job_id]
            job = self._aps.get_job(job_id)
            nrt = getattr(job, "next_run_time", None) if job else None
            stats.next_run_time = nrt.timestamp() if nrt else None
            out.append(stats)
        return out

    def overrunning(self, now: float) -> list[JobStats]:
        """Jobs whose current run has gone on past their budget (for a watchdog)."""
        return [s for s in self._stats.values() if (s.running_for_s(now) or 0) > s.budget_s]

    # -- the watchdog ------------------------------------------------------------
    def stuck(self, now: float, grace_s: float = WATCHDOG_GRACE_S) -> list[tuple[JobStats, str]]:
        """Jobs the watchdog should restart, with why: a run past its budget (plus ``grace_s``),
        or a run that has held its slot for half its budget while ``max_skips`` ticks in a row were
        skipped ("maximum number of running instances reached"); a run merely longer than its
        interval (a slow batch) is left to finish."""
        out = [(s, f"over its {s.budget_s:g}s budget") for s in self.overrunning(now - grace_s)]
        seen = {s.id for s, _ in out}
        for s in self._stats.values():
            if (s.id not in seen and s.running_since is not None and self.max_skips
                    and s.skipped_in_a_row >= self.max_skips and now - s.running_since >= s.budget_s / 2):
                out.append((s, f"{s.skipped_in_a_row} ticks in a row skipped: maximum number of running "
                                f"instances reached (running {now - s.running_since:.0f}s)"))
        return out

    async def cancel_overrunning(self, grace_s: float = WATCHDOG_GRACE_S, *, gated: bool = True) -> list[str]:
        """One watchdog pass: cancel every stuck job (``stuck``) and run it again at once
        (``restart``); returns their ids. A run is logged once, however many passes see it. With
        ``gated`` (not for an operator's button) ``restart_gate`` may refuse a restart.

        ``asyncio.timeout(budget)`` normally ends a run first; this catches a run that outlived
        it (a body that swallowed the cancellation, or one stuck in a shielded call), and a run
        that, within its budget, holds its slot for many intervals."""
        restarted: list[str] = []
        now = self.clock.time()
        for stats, why in self.stuck(now, grace_s):
            if gated and self.restart_gate is not None and not self.restart_gate.allow("job", stats.id, why):
                continue
            since = stats.running_since
            if since is not None and self._overrun_logged.get(stats.id) != since:
                self._overrun_logged[stats.id] = since
                log.warning("job %s has run %.0fs (%s); the watchdog cancels and restarts it",
                            stats.id, self.clock.time() - since, why)
            self.overruns_cancelled += 1
            self._cancel_reason[stats.id] = f"cancelled by the watchdog: {why}"
            await self.restart(stats.id)
            restarted.append(stats.id)
        return restarted

    async def watch(self, interval_s: float = WATCHDOG_INTERVAL_S, sleep: Sleep = asyncio.sleep) -> None:
        """The watchdog loop (runs under the supervisor, see ``loops()``)."""
        while True:
            beat()
            await self.cancel_overrunning()
            await sleep(interval_s)

    def loops(self) -> list[LoopSpec]:
        """The scheduler's supervised loop: the overrun watchdog."""
        return [LoopSpec("scheduler.watchdog", self.watch, heartbeat_budget_s=max(60.0, 4 * WATCHDOG_INTERVAL_S))]
