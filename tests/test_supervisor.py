"""The supervisor restarts failed loops with backoff, cancels hung ones, leaves fatal ones
failed and stops cleanly. Driven by a ManualClock and a recorded (not waited) backoff."""
from __future__ import annotations

import asyncio
import logging

import pytest

from app.backoff import Backoff
from app.clock import ManualClock
from app.supervisor import FatalLoopError, LoopSpec, Supervisor, beat

BACKOFF = Backoff(base_s=1.0, max_s=8.0, jitter_low=1.0, jitter_high=1.0)


class RecordedSleep:
    """The backoff waits are recorded and returned at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


async def until(predicate, timeout_s: float = 5.0) -> None:
    """Yield to the loop until ``predicate()``; the timeout only guards against a hang."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0)


async def never(seconds: float) -> None:
    """A sleep that does not end (until cancelled): the test itself is the watchdog."""
    await asyncio.Event().wait()


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


async def test_a_loop_that_raises_is_restarted_with_backoff_and_counted(clock: ManualClock, sleep, caplog):
    runs = 0
    healthy = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 4:
            raise ConnectionError(f"down #{runs}")
        healthy.set()
        await asyncio.Event().wait()

    sup = Supervisor(clock, sleep=sleep, watchdog_interval_s=None)
    sup.add(LoopSpec("test.flaky", flaky, backoff=BACKOFF, stable_after_s=60))
    with caplog.at_level(logging.DEBUG, logger="app.supervisor"):
        await sup.start()
        await asyncio.wait_for(healthy.wait(), 5)
        stats = sup.get("test.flaky")
        assert stats is not None
        assert sleep.delays == [1.0, 2.0, 4.0, 8.0]  # exponential, capped at max_s
        assert stats.state == "running" and stats.restarts == 4 and stats.failures == 4
        assert stats.last_error == "ConnectionError: down #4"
        clock.advance(61)
        sup.check()  # the run lasted stable_after_s: recovered, the backoff starts over
        await sup.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "down #1" in warnings[0].getMessage()  # said once, not per failure
    assert any("recovered" in r.getMessage() and "4 restarts" in r.getMessage() for r in caplog.records)
    assert stats.state == "stopped" and stats.consecutive_failures == 0


async def test_a_loop_that_returns_is_restarted_unless_it_may_finish(clock, sleep):
    calls = {"forever": 0, "finite": 0}
    second = asyncio.Event()

    async def forever() -> None:
        calls["forever"] += 1
        if calls["forever"] == 2:
            second.set()
            await asyncio.Event().wait()

    async def finite() -> None:
        calls["finite"] += 1

    sup = Supervisor(clock, sleep=sleep, watchdog_interval_s=None)
    sup.add_all([LoopSpec("test.forever", forever, backoff=BACKOFF),
                 LoopSpec("test.finite", finite, restart_on_return=False)])
    await sup.start()
    await asyncio.wait_for(second.wait(), 5)
    await until(lambda: sup.get("test.finite").state == "stopped")
    assert sup.get("test.forever").last_error == "returned unexpectedly"
    assert calls["finite"] == 1 and sup.get("test.finite").restarts == 0
    await sup.stop()


async def test_a_hung_loop_is_cancelled_and_restarted(clock: ManualClock, sleep):
    starts = 0
    cancelled = asyncio.Event()
    restarted = asyncio.Event()

    async def hangs_after_one_beat() -> None:
        nonlocal starts
        starts += 1
        if starts == 2:
            restarted.set()
        beat()
        try:
            await asyncio.Event().wait()  # stuck: never beats again
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sup = Supervisor(clock, sleep=sleep, watchdog_interval_s=None)
    sup.add(LoopSpec("test.hangs", hangs_after_one_beat, backoff=BACKOFF, heartbeat_budget_s=30))
    await sup.start()
    await until(lambda: starts == 1)
    clock.advance(29)
    assert sup.check() == []  # within its budget
    clock.advance(2)
    assert sup.check() == ["test.hangs"]
    await asyncio.wait_for(restarted.wait(), 5)
    stats = sup.get("test.hangs")
    assert cancelled.is_set() and stats.hangs == 1 and stats.restarts == 1
    assert stats.last_error is not None and stats.last_error.startswith("hung: no heartbeat for 31s")
    assert sleep.delays == [1.0]
    await sup.stop()


async def test_beats_from_the_loop_keep_it_alive(clock: ManualClock, sleep):
    tick = asyncio.Event()
    ticks = 0

    async def beating() -> None:
        nonlocal ticks
        while True:
            await tick.wait()
            tick.clear()
            ticks += 1
            beat()

    sup = Supervisor(clock, sleep=sleep, watchdog_interval_s=None)
    sup.add(LoopSpec("test.beating", beating, heartbeat_budget_s=10))
    await sup.start()
    for n in range(1, 6):
        clock.advance(8)
        tick.set()
        await until(lambda: ticks == n)
        assert sup.check() == []
    assert sup.get("test.beating").restarts == 0 and sup.get("test.beating").last_beat == clock.time()
    await sup.stop()


async def test_a_late_watchdog_pardons_instead_of_judging(clock: ManualClock):
    async def quiet() -> None:
        await asyncio.Event().wait()

    sup = Supervisor(clock, sleep=never, watchdog_interval_s=1.0)
    sup.add(LoopSpec("test.quiet", quiet, heartbeat_budget_s=2))
    await sup.start()
    try:
        await until(lambda: sup.get("test.quiet").state == "running")
        assert sup.check() == []
        clock.advance(100)  # the event loop was blocked for 100 s: nobody could beat
        assert sup.check() == [], "a blocked event loop is not the loop's fault"
        clock.advance(2.5)
        assert sup.check() == ["test.quiet"]  # ... but the next pass judges again
    finally:
        await sup.stop()


async def test_a_fatal_loop_is_not_restarted_until_an_operator_asks(clock, sleep, caplog):
    runs = 0

    async def refused() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise FatalLoopError("the Bot API refused TELEGRAM_BOT_TOKEN (401)")
        await asyncio.Event().wait()

    sup = Supervisor(clock, sleep=sleep, watchdog_interval_s=None)
    sup.add(LoopSpec("test.fatal", refused, backoff=BACKOFF))
    with caplog.at_level(logging.INFO, logger="app.supervisor"):
        await sup.start()
        await until(lambda: sup.get("test.fatal").state == "failed")
        for _ in range(20):
            await asyncio.sleep(0)
        stats = sup.get("test.fatal")
        assert runs == 1 and stats.restarts == 0 and sleep.delays == []
        assert stats.last_error == "the Bot API refused TELEGRAM_BOT_TOKEN (401)"
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
        assert await sup.restart("test.fatal")
        await until(lambda: runs == 2)
        assert stats.state == "running" and stats.restarts == 1
    await sup.stop()


async def test_operator_restart_cancels_the_running_body(clock, sleep):
    starts = 0

    async def body() -> None:
        nonlocal starts
        starts += 1
        await asyncio.Event().wait()

    sup = Supervisor(clock, sleep=sleep, watchdog_interval_s=None)
    sup.add(LoopSpec("test.body", body))
    await sup.start()
    await until(lambda: starts == 1)
    assert await sup.restart("test.body")
    await until(lambda: starts == 2)
    stats = sup.get("test.body")
    assert stats.restarts == 1 and stats.failures == 0 and stats.last_error is None and sleep.delays == []
    assert not await sup.restart("test.unknown")
    await sup.stop()


async def test_stop_is_clean_graceful_first_then_cancelled(clock, caplog):
    stop_asked = asyncio.Event()
    graceful_ended = False
    stubborn_cancelled = asyncio.Event()

    async def graceful() -> None:
        nonlocal graceful_ended
        await stop_asked.wait()
        graceful_ended = True

    async def ask_stop() -> None:
        stop_asked.set()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stubborn_cancelled.set()
            raise

    async def broken() -> None:
        raise RuntimeError("always")

    sup = Supervisor(clock, sleep=never, watchdog_interval_s=1.0)
    sup.add_all([LoopSpec("test.graceful", graceful, stop=ask_stop), LoopSpec("test.stubborn", stubborn),
                 LoopSpec("test.broken", broken, backoff=Backoff(base_s=3600, max_s=3600))])
    await sup.start()
    await until(lambda: sup.get("test.broken").state == "restarting")
    with caplog.at_level(logging.WARNING):
        await sup.stop()
    assert graceful_ended and stubborn_cancelled.is_set()
    assert {s.id: s.state for s in sup.loop_stats()} == {
        "test.broken": "stopped", "test.graceful": "stopped", "test.stubborn": "stopped"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sup.get("test.graceful").last_error is None  # ending on stop is no failure


def test_loop_spec_limits_are_validated():
    async def body() -> None: ...

    with pytest.raises(ValueError, match="heartbeat_budget_s"):
        LoopSpec("x", body, heartbeat_budget_s=0)
    with pytest.raises(ValueError, match="non-empty"):
        LoopSpec(" ", body)
    sup = Supervisor()
    sup.add(LoopSpec("x", body))
    with pytest.raises(ValueError, match="already registered"):
        sup.add(LoopSpec("x", body))
