"""The scheduler runs jobs under a time budget and keeps their statistics."""
from __future__ import annotations

import asyncio

from app.scheduler import JobSpec, Scheduler
from app.settings import Settings


async def _wait(pred, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


async def test_hung_job_is_cancelled_by_its_budget_and_runs_again():
    calls = []

    async def hangs():
        calls.append(1)
        await asyncio.sleep(3600)

    sched = Scheduler(Settings())
    sched.add(JobSpec("test.hangs", hangs, interval_s=0.2, budget_s=0.1))
    sched.start()
    try:
        await _wait(lambda: sched.job_stats()[0].timeouts >= 2)
    finally:
        await sched.shutdown()
    stats = sched.job_stats()[0]
    assert len(calls) >= 2, "a hung run must not hold the job's slot forever"
    assert stats.last_error and "timed out" in stats.last_error
    assert stats.running_since is None


async def test_failing_job_records_error_and_keeps_scheduling():
    async def boom():
        raise ValueError("bad payload")

    ok_runs = []

    async def fine():
        ok_runs.append(1)

    sched = Scheduler(Settings())
    sched.add_all([JobSpec("test.boom", boom, interval_s=0.1), JobSpec("test.fine", fine, interval_s=0.1)])
    sched.start()
    try:
        await _wait(lambda: {s.id: s for s in sched.job_stats()}["test.boom"].errors >= 2 and len(ok_runs) >= 2)
    finally:
        await sched.shutdown()
    boom_stats = {s.id: s for s in sched.job_stats()}["test.boom"]
    assert boom_stats.last_error == "ValueError: bad payload"
    assert boom_stats.runs >= 2 and boom_stats.duration_p50_s is not None


async def test_restart_cancels_running_task_and_reruns():
    started = []

    async def slow():
        started.append(1)
        await asyncio.sleep(3600)

    sched = Scheduler(Settings())
    sched.add(JobSpec("test.slow", slow, interval_s=3600, budget_s=3600))
    sched.start()
    try:
        await _wait(lambda: len(started) == 1)
        assert await sched.restart("test.slow")
        await _wait(lambda: len(started) == 2)
        assert not await sched.restart("test.unknown")
    finally:
        await sched.shutdown()
    assert sched.job_stats()[0].last_error == "cancelled"


async def test_shutdown_while_a_job_runs_logs_no_error(caplog):
    started = []

    async def long_job():
        started.append(1)
        await asyncio.sleep(3600)

    sched = Scheduler(Settings())
    sched.add(JobSpec("test.long", long_job, interval_s=3600, budget_s=3600))
    sched.start()
    await _wait(lambda: started)
    with caplog.at_level("WARNING"):
        await sched.shutdown()
        await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], \
        "stopping the service must not look like a crash"
    assert sched.job_stats()[0].last_error is None


async def test_skipped_ticks_are_counted_and_said_once(caplog):
    async def slow():
        await asyncio.sleep(0.5)

    sched = Scheduler(Settings())
    sched.add(JobSpec("test.slow_tick", slow, interval_s=0.05, budget_s=5))
    with caplog.at_level("INFO", logger="app.scheduler"):
        sched.start()
        try:
            await _wait(lambda: sched.job_stats()[0].skipped_max_instances >= 3)
        finally:
            await sched.shutdown()
    said = [r for r in caplog.records if "tick was skipped" in r.getMessage()]
    assert len(said) == 1


async def test_watchdog_cancels_an_overrunning_job_and_it_runs_again(clock, caplog):
    """A run that outlived its budget (here: one that swallows its first cancellation, as a
    shielded call would) is cancelled by the watchdog, said once, and the job runs again."""
    from app.clock import ManualClock

    assert isinstance(clock, ManualClock)
    starts: list[int] = []
    second_run = asyncio.Event()

    async def stuck():
        starts.append(1)
        if len(starts) == 2:
            second_run.set()
            return
        await asyncio.Event().wait()

    sched = Scheduler(Settings(), clock)
    sched.add(JobSpec("test.stuck", stuck, interval_s=3600, budget_s=3600))  # the budget's timeout never fires in real time
    with caplog.at_level("WARNING", logger="app.scheduler"):
        sched.start()
        try:
            await _wait(lambda: len(starts) == 1)
            assert await sched.cancel_overrunning() == []  # within budget: left alone
            clock.advance(3601)
            assert [s.id for s in sched.overrunning(clock.time())] == ["test.stuck"]
            assert await sched.cancel_overrunning(grace_s=5) == []  # the run's own timeout goes first
            clock.advance(5)
            assert await sched.cancel_overrunning(grace_s=5) == ["test.stuck"]
            await asyncio.wait_for(second_run.wait(), 5)
        finally:
            await sched.shutdown()
    stats = sched.job_stats()[0]
    assert stats.last_error == "cancelled by the watchdog: over its 3600s budget"
    assert stats.runs == 2 and stats.running_since is None
    said = [r for r in caplog.records if "watchdog cancels" in r.getMessage()]
    assert len(said) == 1


async def test_watchdog_runs_as_a_supervised_loop(clock):
    from app.supervisor import LoopSpec, Supervisor

    passes: list[float] = []
    sched = Scheduler(Settings(), clock)
    loops = sched.loops()
    assert [spec.id for spec in loops] == ["scheduler.watchdog"]
    assert loops[0].heartbeat_budget_s is not None  # a hung watchdog is itself noticed

    async def one_pass_then_wait(seconds: float) -> None:
        passes.append(seconds)
        await asyncio.Event().wait()

    sup = Supervisor(clock, watchdog_interval_s=None)
    sup.add(LoopSpec("scheduler.watchdog", lambda: sched.watch(sleep=one_pass_then_wait)))
    await sup.start()
    await _wait(lambda: passes)
    assert sup.get("scheduler.watchdog").state == "running"
    await sup.stop()


def test_cron_job_spec_computes_the_next_run():
    from datetime import datetime, timezone

    async def digest():
        return None

    spec = JobSpec("digest.daily", digest, cron="0 9 * * *")
    trigger = spec.trigger()
    after = datetime(2026, 3, 5, 10, 30, tzinfo=timezone.utc)
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 3, 6, 9, 0, tzinfo=timezone.utc)
    before = datetime(2026, 3, 5, 8, 59, tzinfo=timezone.utc)
    assert trigger.get_next_fire_time(None, before) == datetime(2026, 3, 5, 9, 0, tzinfo=timezone.utc)
    weekly = JobSpec("digest.weekly", digest, cron="30 7 * * mon").trigger()
    assert weekly.get_next_fire_time(None, after) == datetime(2026, 3, 9, 7, 30, tzinfo=timezone.utc)  # a Monday
    assert spec.schedule == "cron 0 9 * * * (UTC)"
    assert JobSpec("x", digest, interval_s=30).schedule == "every 30s"


async def test_cron_job_is_scheduled_at_its_next_fire_time():
    import time
    from datetime import datetime, timedelta, timezone

    async def digest():
        return None

    def next_hour(t: float) -> float:
        now = datetime.fromtimestamp(t, timezone.utc)
        return (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0).timestamp()

    sched = Scheduler(Settings())
    before = time.time()
    sched.add(JobSpec("digest.hourly", digest, cron="0 * * * *"))
    sched.start()
    try:
        stats = sched.job_stats()[0]
    finally:
        await sched.shutdown()
    # the hour may turn between the two readings; the next run is the top of an hour after "now"
    assert stats.next_run_time in {next_hour(before), next_hour(time.time())}
    assert stats.cron == "0 * * * *" and stats.interval_s is None


def test_bad_schedules_fail_with_a_clear_error():
    import pytest

    async def digest():
        return None

    with pytest.raises(ValueError, match=r"job digest.daily: invalid cron expression '0 25 \* \* \*'"):
        JobSpec("digest.daily", digest, cron="0 25 * * *")
    with pytest.raises(ValueError, match="five fields"):
        JobSpec("digest.daily", digest, cron="every day")
    with pytest.raises(ValueError, match="exactly one of interval_s and cron"):
        JobSpec("both", digest, interval_s=5, cron="* * * * *")
    with pytest.raises(ValueError, match="exactly one of interval_s and cron"):
        JobSpec("neither", digest)
