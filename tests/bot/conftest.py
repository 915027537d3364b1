"""Fixtures every bot test may use without importing them."""
from __future__ import annotations

import time

import pytest

from app.clock import ManualClock
from app.scheduler import JobSpec, Scheduler
from app.settings import Settings
from monitoring.setup import build_monitoring
from tests.bot.frame_fixtures import FrameContext, JobProbe


@pytest.fixture
async def console_ctx(sqlite_url, sqlite_db):
    """An app context for the console chat (no Telegram): real SQLite, a scheduler with a probe job."""
    settings = Settings(_env_file=None, database_url=sqlite_url)
    clock = ManualClock(float(int(time.time())))
    scheduler = Scheduler(settings, clock)
    probe = JobProbe()
    scheduler.add(JobSpec(id="pipeline.probe", func=probe, interval_s=3600, start_delay_s=3600))
    scheduler.start()
    ctx = FrameContext(settings=settings, db=sqlite_db, clock=clock, scheduler=scheduler, probe=probe)
    monitoring = await build_monitoring(ctx, serve_http=False)  # /status reads its snapshots
    yield ctx
    await monitoring.stop()
    await scheduler.shutdown()
