"""build_monitoring wires the standard collectors, the store and the HTTP endpoints."""
from __future__ import annotations

import aiohttp

from app.clock import ManualClock
from monitoring.context import MonitoringContext
from app.scheduler import Scheduler
from app.settings import Settings
from monitoring import metric_names as m
from monitoring.setup import build_monitoring


async def test_build_monitoring_end_to_end(sqlite_db, sqlite_url, clock: ManualClock) -> None:
    settings = Settings(database_url=sqlite_url, http_port=0, redis_url=None, collect_interval_s=5)
    ctx = MonitoringContext(settings=settings, db=sqlite_db, clock=clock)
    ctx.scheduler = Scheduler(settings, clock)
    monitoring = await build_monitoring(ctx)
    try:
        assert ctx.collectors is monitoring.registry and ctx.metrics is monitoring.store
        names = {c.name for c in monitoring.registry.collectors}
        assert {"process", "loop_lag", "db", "scheduler"} <= names and "redis" not in names
        collect = next(j for j in monitoring.jobs() if j.id == "monitoring.collect")
        assert collect.interval_s == 5
        await collect.func()
        point = await monitoring.store.latest(m.PROCESS_RESIDENT_BYTES)
        assert point is not None and point.value > 0
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{monitoring.http.url}/metrics") as resp:
                body = await resp.text()
            async with http.get(f"{monitoring.http.url}/readyz") as resp:
                assert resp.status == 200
        assert "tokenwatch_process_resident_bytes " in body
        assert 'tokenwatch_db_up 1.0' in body
    finally:
        await monitoring.stop()
    assert not monitoring.loop_lag.running
