"""tokenwatch_build_info{version,python} 1 on /metrics of a wired monitoring stack."""
from __future__ import annotations

import sys
from importlib import metadata

import aiohttp

from app.clock import ManualClock
from monitoring.context import MonitoringContext
from app.scheduler import Scheduler
from app.settings import Settings
from monitoring.setup import build_monitoring


async def test_metrics_show_the_running_build(sqlite_db, sqlite_url, clock: ManualClock) -> None:
    settings = Settings(database_url=sqlite_url, http_port=0, redis_url=None)
    ctx = MonitoringContext(settings=settings, db=sqlite_db, clock=clock)
    ctx.scheduler = Scheduler(settings, clock)
    monitoring = await build_monitoring(ctx)
    try:
        await monitoring.registry.run_collection()  # collects and publishes the snapshot /metrics reads
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{monitoring.http.url}/metrics") as resp:
                body = await resp.text()
    finally:
        await monitoring.stop()
    python = "{}.{}.{}".format(*sys.version_info[:3])
    assert "# TYPE tokenwatch_build_info gauge" in body
    assert f'tokenwatch_build_info{{python="{python}",version="{metadata.version("tokenwatch")}"}} 1.0' in body
