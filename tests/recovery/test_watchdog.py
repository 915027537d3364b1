"""The watchdog: a deliberately hung job (real APScheduler ticks skipped, "maximum number of running
instances reached") and a loop that stops beating are cancelled and started again, at most N times
an hour each (ManualClock), every restart an Action; then they are left and the alert's metric says so."""
from __future__ import annotations

import asyncio

from app.clock import ManualClock
from app.scheduler import JobSpec, Scheduler
from app.settings import Settings
from app.supervisor import LoopSpec, Supervisor, beat
from recovery.knobs import Action, KnobRegistry
from recovery.watchdog import Watchdog


async def until(predicate, timeout_s: float = 10.0) -> None:
    """Yield until ``predicate()``; the timeout only guards against a hang."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


def gave_up(watchdog: Watchdog, kind: str, name: str) -> float:
    [value] = [s.value for s in watchdog.samples()
               if s.name == "tokenwatch_watchdog_gave_up" and s.labels == {"kind": kind, "id": name}]
    return value


async def test_a_hung_job_that_keeps_being_skipped_is_restarted_three_times_an_hour_then_alerts(clock: ManualClock):
    starts: list[int] = []
    cancelled: list[int] = []

    async def hangs() -> None:
        starts.append(1)
        try:
            await asyncio.Event().wait()            # never finishes; its budget's own timeout never fires here
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    knobs = KnobRegistry(clock)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    watchdog = Watchdog(clock, knobs, per_hour=3)
    sched = Scheduler(Settings(watchdog_max_skips=3), clock)
    sched.restart_gate = watchdog
    sched.add(JobSpec("test.hung", hangs, interval_s=0.05, budget_s=600))
    sched.start()
    try:
        for n in range(1, 4):
            await until(lambda: len(starts) == n and sched.job_stats()[0].skipped_in_a_row >= 3)
            clock.advance(200)
            assert await sched.cancel_overrunning() == []   # skipped, but not yet half its budget: a slow run
            clock.advance(101)
            assert await sched.cancel_overrunning() == ["test.hung"]
        await until(lambda: len(starts) == 4 and sched.job_stats()[0].skipped_in_a_row >= 3)
        clock.advance(301)
        assert await sched.cancel_overrunning() == []       # the hour's restarts are spent: left as it is
        assert gave_up(watchdog, "job", "test.hung") == 1.0
        clock.advance(3600)                                # an hour later it may be restarted again
        assert await sched.cancel_overrunning() == ["test.hung"]
        assert gave_up(watchdog, "job", "test.hung") == 0.0
    finally:
        await sched.shutdown()
    assert len(cancelled) >= 4
    assert sched.job_stats()[0].last_error == "cancelled by the watchdog: over its 600s budget"  # the last one
    restarts = [a for a in actions if a.detail.startswith("restarted job test.hung")]
    assert len(restarts) == 4 and all(a.controller == "watchdog" and a.knob is None for a in restarts)
    assert all("ticks in a row skipped: maximum number of running instances reached" in a.reason for a in restarts[:3])
    assert [a.detail for a in actions if a.detail.startswith("gave up")] == [
        "gave up on job test.hung: 3 restarts within the hour"]


async def test_a_loop_that_stops_beating_is_restarted_within_its_budget_then_left(clock: ManualClock):
    starts = 0

    async def beats_once() -> None:
        nonlocal starts
        starts += 1
        beat()
        await asyncio.Event().wait()

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    knobs = KnobRegistry(clock)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    watchdog = Watchdog(clock, knobs, per_hour=2)
    sup = Supervisor(clock, sleep=no_wait, watchdog_interval_s=None)
    sup.restart_gate = watchdog
    sup.add(LoopSpec("test.silent", beats_once, heartbeat_budget_s=30))
    await sup.start()
    try:
        for n in (1, 2):
            await until(lambda: starts == n and sup.get("test.silent").state == "running")
            clock.advance(31)
            assert sup.check() == ["test.silent"]
        await until(lambda: starts == 3 and sup.get("test.silent").state == "running")
        clock.advance(31)
        assert sup.check() == []                           # the budget is spent
        assert gave_up(watchdog, "loop", "test.silent") == 1.0
        assert sup.get("test.silent").hangs == 2
    finally:
        await sup.stop()
    assert [a.detail for a in actions] == ["restarted loop test.silent (1 of 2 this hour)",
                                           "restarted loop test.silent (2 of 2 this hour)",
                                           "gave up on loop test.silent: 2 restarts within the hour"]
    assert actions[0].reason.startswith("hung: no heartbeat for 31s")


async def test_an_operator_restart_is_never_refused(clock: ManualClock):
    watchdog = Watchdog(clock, per_hour=0)
    sched = Scheduler(Settings(), clock)
    sched.restart_gate = watchdog
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    sched.add(JobSpec("test.stuck", hangs, interval_s=3600, budget_s=10))
    sched.start()
    try:
        await asyncio.wait_for(started.wait(), 5)
        clock.advance(20)
        assert await sched.cancel_overrunning(grace_s=0) == []                  # the watchdog may not
        assert await sched.cancel_overrunning(grace_s=0, gated=False) == ["test.stuck"]   # the button may
    finally:
        await sched.shutdown()
