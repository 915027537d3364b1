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
