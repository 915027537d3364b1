"""The running application's core parts, handed down to every layer.

Each layer that needs more extends this context with its own parts, so every field is typed
and nothing above is imported from here:

    AppContext          settings, db, clock, scheduler, supervisor, redis      (app/)
    MonitoringContext   + pipeline, metrics, collectors                        (monitoring/context.py)
    BotContext          + outbox, market_client, doctor_timeout_s              (bot/context.py)

The composition root (``tokenwatch.service``) builds the outermost one once; fields for parts
that are not running (no Redis, no pipeline in this process) are ``None``::

    ctx = AppContext(settings=settings, db=db, clock=SYSTEM_CLOCK)
    async with ctx.db.session() as session: ...
"""
from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.scheduler import Scheduler
from app.settings import Settings
from app.supervisor import Supervisor


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock = SYSTEM_CLOCK
    scheduler: Scheduler | None = None
    supervisor: Supervisor | None = None  # the long-lived loops (app.supervisor)
    redis: Redis | None = None
    started_at: float = 0.0
