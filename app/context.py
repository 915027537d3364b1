"""The running application's parts, handed to the bot's handlers and to collectors.

Built once by the composition root (``tokenwatch.service``); fields for parts that are not
running (no Redis, console chat instead of Telegram) are ``None``. Typed loosely at
run time so this bottom-layer module imports nothing from the packages above it.

    ctx = AppContext(settings=settings, db=db, clock=SYSTEM_CLOCK)
    async with ctx.db.session() as session: ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from app.scheduler import Scheduler
    from app.supervisor import Supervisor


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock = SYSTEM_CLOCK
    scheduler: "Scheduler | None" = None
    supervisor: "Supervisor | None" = None  # the long-lived loops (app.supervisor)
    pipeline: Any = None  # tokens.pipeline.Pipeline
    metrics: Any = None  # monitoring.store.MetricStore
    collectors: Any = None  # monitoring.collector.CollectorRegistry
    outbox: Any = None  # delivery.Outbox
    redis: Any = None  # redis.asyncio.Redis
    market: Any = None  # simulator.server.LocalMarket when MARKET=sim
    started_at: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)
