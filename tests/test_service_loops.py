"""The service runs every long-lived loop under its one supervisor: each part's loops are
registered and running, /metrics exports their state and restarts, and stopping logs no error."""
from __future__ import annotations

import asyncio
import io
import logging

import aiohttp

from app.clock import ManualClock
from app.settings import Settings
from app.supervisor import LoopSpec, Supervisor
from monitoring import metric_names as m
from monitoring.collectors.scheduler import LoopsCollector
from tokenwatch.service import Service

EXPECTED_LOOPS = {"bot.console", "bot.outbox_sender", "monitoring.loop_lag", "pipeline.discovery_ws",
                  "scheduler.watchdog", "status_line"}


async def test_service_supervises_every_loop_and_stops_cleanly(tmp_path, caplog):
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'tw.db'}", http_port=0,
                        status_line=True, collect_interval_s=1, redis_url=None)
    service = Service(settings, console_input=False, console_out=io.StringIO())
    ctx = await service.start()
    try:
        supervisor = ctx.supervisor
        assert supervisor is not None
        assert set(supervisor.loop_ids()) == EXPECTED_LOOPS
        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while not all(s.state == "running" for s in supervisor.loop_stats()):
            assert loop.time() < end, {s.id: s.state for s in supervisor.loop_stats()}
            await asyncio.sleep(0.05)
        # the console chat's /jobs lists every loop beside the jobs
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bot.console"):
            await service.bot.runner.console.handle_line("/jobs")
        shown = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.console")
        assert "pipeline.process" in shown and f"Loops ({len(EXPECTED_LOOPS)})" in shown
        assert all(f"{loop_id} — running for" in shown for loop_id in EXPECTED_LOOPS), shown
        end = loop.time() + 15
        while ctx.collectors.coordinator.latest is None:  # /metrics serves the published snapshot
            assert loop.time() < end, "no collection was published"
            await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{service.monitoring.http.url}/metrics") as resp:
                body = await resp.text()
        assert 'tokenwatch_loop_state{loop="bot.outbox_sender",state="running"} 1.0' in body
        assert 'tokenwatch_loop_restarts_total{loop="pipeline.discovery_ws"} 0.0' in body
    finally:
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            await service.stop()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert {s.state for s in supervisor.loop_stats()} == {"stopped"}


async def test_loops_collector_exports_state_restarts_and_heartbeat_age():
    clock = ManualClock(1_000.0)
    gate = asyncio.Event()
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise OSError("once")
        gate.set()
        await asyncio.Event().wait()

    async def now(seconds: float) -> None:
        await asyncio.sleep(0)

    sup = Supervisor(clock, sleep=now, watchdog_interval_s=None)
    sup.add(LoopSpec("test.flaky", flaky, heartbeat_budget_s=30))
    await sup.start()
    try:
        await asyncio.wait_for(gate.wait(), 5)
        clock.advance(12)
        samples = await LoopsCollector(sup.loop_stats).collect(clock.time())
    finally:
        await sup.stop()
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    loop = ("loop", "test.flaky")
    assert got[(m.LOOP_STATE, (loop, ("state", "running")))] == 1.0
    assert got[(m.LOOP_STATE, (loop, ("state", "failed")))] == 0.0
    assert got[(m.LOOP_RESTARTS_TOTAL, (loop,))] == 1.0
    assert got[(m.LOOP_FAILURES_TOTAL, (loop,))] == 1.0
    assert got[(m.LOOP_HANGS_TOTAL, (loop,))] == 0.0
    assert got[(m.LOOP_HEARTBEAT_AGE_SECONDS, (loop,))] == 12.0
