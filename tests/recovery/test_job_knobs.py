"""Job intervals changed live from the chat reach the running scheduler at once, within the job's
bounds, without cancelling a run in flight."""
from __future__ import annotations

import asyncio
import time

from app.clock import ManualClock
from app.scheduler import JobSpec, Scheduler
from app.settings import Settings
from recovery.control import Controls
from recovery.job_knobs import register_job_knobs
from recovery.knobs import KnobRegistry
from recovery.ledger import ActionLedger

T0 = 1_700_000_000.0


async def _wait(pred, timeout=30.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


def _scheduler() -> tuple[Scheduler, list[float], asyncio.Event, asyncio.Event]:
    runs: list[float] = []
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def archive() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) == 1:          # the first run is the one in flight when the interval changes
            in_flight.set()
            await release.wait()

    sched = Scheduler(Settings())
    sched.add(JobSpec("pipeline.archive", archive, interval_s=3600.0, budget_s=120.0, tunable=(0.05, 7200.0)))
    sched.add(JobSpec("monitoring.collect", archive, interval_s=3600.0, start_delay_s=3600.0))  # fixed
    return sched, runs, in_flight, release


async def test_an_operators_interval_reaches_the_running_scheduler_and_keeps_the_run_in_flight():
    sched, runs, in_flight, release = _scheduler()
    knobs = KnobRegistry(ManualClock(T0))
    assert register_job_knobs(knobs, sched) == ["every:pipeline.archive"]   # fixed jobs are not knobs
    sched.start()
    try:
        await _wait(in_flight.is_set)     # hourly job, first run at start, still running
        assert knobs.adjust("every:pipeline.archive", 0.2, controller="operator", reason="/tune", actor="@ann") == 0.2
        stats = {s.id: s for s in sched.job_stats()}["pipeline.archive"]
        assert (stats.interval_s, stats.schedule) == (0.2, "every 0.2s")
        next_run = stats.next_run_time      # scheduled one new interval from now, not at the old hour's end
        assert next_run is not None and next_run - time.time() < 30.0
        release.set()                      # the run in flight was never cancelled: it ends normally
        await _wait(lambda: len(runs) >= 3)  # and the job now runs at its new pace
        stats = {s.id: s for s in sched.job_stats()}["pipeline.archive"]
        assert stats.errors == 0 and stats.last_error is None
    finally:
        release.set()
        await sched.shutdown()


async def test_an_interval_outside_the_jobs_bounds_is_refused_with_the_range(sqlite_db):
    sched, runs, _, release = _scheduler()
    clock = ManualClock(T0)
    knobs = KnobRegistry(clock)
    register_job_knobs(knobs, sched)
    controls = Controls(knobs, ActionLedger(sqlite_db, clock, knobs), clock)
    result = await controls.set("every:pipeline.archive", "3h", "@ann")
    assert (result.ok, result.changed) == (False, False)
    assert "outside every:pipeline.archive's range" in result.text
    assert sched.interval_s("pipeline.archive") == 3600.0
    result = await controls.set("every:pipeline.archive", "90s", "@ann")
    assert (result.ok, result.changed) == (True, True)
    assert sched.interval_s("pipeline.archive") == 90.0
