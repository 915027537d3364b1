"""The composition root: the one place that builds and wires every part.

    service = Service(settings)
    await service.start()      # migrate, market (sim), pipeline, scheduler, monitoring, bot, outbox
    ...
    await service.stop()

``run_service(settings)`` is what ``tokenwatch run`` calls: start, wait for SIGINT/SIGTERM, stop.
Each part contributes its scheduler jobs (``jobs()``), its long-lived loops (``loops()``, run
by one ``Supervisor``) and its collectors; nothing else in the code base wires parts together.
On stop the loops end first (graceful ``stop`` of each, then cancellation), then the parts.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.migrate import upgrade
from app.scheduler import Scheduler
from app.supervisor import Supervisor
from app.settings import Settings
from tokenwatch.status_line import StatusLine
from bot.context import BotContext
from alerts.rules import load_configured_rules
from alerts.setup import build_alerts
from alerts.watch import build_watch
from bot.console import CONSOLE_CHAT_ID
from delivery import Outbox
from bot.routers.graph import build_pictures
from charts.digest_chart import DigestChart
from bot.setup import RunningBot, build_bot
from monitoring.setup import Monitoring, build_monitoring
from recovery.setup import build_recovery
from simulator.server import LocalMarket, market_from_settings
from tokens.pipeline import Pipeline

# Everything is imported up front, before the loop runs: a first import inside a running
# service would block the event loop for seconds.
log = logging.getLogger("tokenwatch")


def alert_chat_id(settings: Settings) -> int | None:
    """Where alerts go: ``TELEGRAM_ALERT_CHAT_ID``; without Telegram, the console chat (the terminal)."""
    if settings.telegram_alert_chat_id is not None:
        return settings.telegram_alert_chat_id
    return CONSOLE_CHAT_ID if not settings.telegram_bot_token else None


class Service:
    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK, *, console_input: bool = True,
                 console_out=None) -> None:
        self.settings = settings
        self.clock = clock
        self.console_input = console_input
        self.console_out = console_out
        self.ctx: BotContext | None = None
        self.market: LocalMarket | None = None  # the local market when MARKET=sim
        self.monitoring: Monitoring | None = None
        self.bot: RunningBot | None = None
        self._stoppers: list = []  # async callables, run in reverse order on stop

    async def start(self) -> BotContext:
        s = self.settings
        rules = await asyncio.to_thread(load_configured_rules, s)  # a bad rules file stops here, first
        db = Database.from_settings(s)
        await upgrade(s.database_url)
        ctx = BotContext(settings=s, db=db, clock=self.clock, started_at=self.clock.time())
        self.ctx = ctx
        self._stoppers.append(db.dispose)

        # market: the local one in-process, or the live URLs
        dex_url, ws_url = s.dexscreener_base_url, s.pumpportal_ws_url
        if s.market == "sim":
            market = self.market = market_from_settings(s)
            await market.start()
            self._stoppers.append(market.stop)
            dex_url, ws_url = market.dexscreener_base_url, market.pumpportal_ws_url
            log.info("local market on %s (websocket %s), seed %d (SIM_SEED=%d replays this run)",
                     dex_url, ws_url, market.seed, market.seed)

        if s.redis_url:
            import redis.asyncio as aioredis

            ctx.redis = aioredis.from_url(s.redis_url)
            self._stoppers.append(ctx.redis.aclose)

        # pipeline
        ctx.pipeline = Pipeline(s, db, self.clock, dex_url, ws_url)
        await ctx.pipeline.start()
        self._stoppers.append(ctx.pipeline.stop)

        # scheduler (periodic jobs) and supervisor (long-lived loops)
        ctx.scheduler = Scheduler(s, self.clock)
        ctx.scheduler.add_all(ctx.pipeline.jobs())
        supervisor = ctx.supervisor = Supervisor(self.clock)
        supervisor.add_all(ctx.pipeline.loops())
        supervisor.add_all(ctx.scheduler.loops())

        # monitoring
        monitoring = self.monitoring = await build_monitoring(ctx)
        ctx.scheduler.add_all(monitoring.jobs())
        supervisor.add_all(monitoring.loops())
        self._stoppers.append(monitoring.stop)

        # recovery: the knob registry and the controllers that turn the knobs, within their bounds;
        # every action in the ledger, the ones that matter told in the alert chat (through the outbox)
        outbox = ctx.outbox = Outbox(db, self.clock)
        recovery = await build_recovery(ctx, outbox=outbox, alert_chat_id=alert_chat_id(s))
        if ctx.pipeline.client is not None:  # recovery's hooks on the market client's hot path
            ctx.pipeline.client.latency_observer = recovery.rto
        if recovery.breaker_actions is not None:
            ctx.pipeline.breakers.on_transition(recovery.breaker_actions)
        ctx.scheduler.add_all(recovery.jobs())
        supervisor.add_all(recovery.loops())
        self._stoppers.append(recovery.stop)

        # alerts: rules over every monitoring snapshot -> incidents -> the outbox (built before the
        # bot, whose buttons the alert messages carry)
        alerts = await build_alerts(ctx, outbox, alert_chat_id=alert_chat_id(s), rules=rules)
        quiet = alerts.quiet
        if recovery.announcer is not None and quiet is not None:   # no self-healing news in maintenance
            recovery.announcer.quiet = lambda now: quiet.current_maintenance(now) is not None
        ctx.scheduler.add_all(alerts.jobs())
        self._stoppers.append(alerts.stop)

        # bot and delivery
        bot = self.bot = await build_bot(ctx, console_input=self.console_input, console_out=self.console_out)
        ctx.scheduler.add_all(bot.jobs())
        supervisor.add_all(bot.loops())
        self._stoppers.append(bot.stop)

        if s.status_line:
            supervisor.add_all(StatusLine(ctx).loops())

        # pictures: /graph's render worker (a process pool) and /dashboard's refresh job
        pictures = await build_pictures(ctx)
        ctx.scheduler.add_all(pictures.jobs())
        self._stoppers.append(pictures.stop)

        # watching the watcher (heartbeat, started/stopping notices) and digests
        watch = build_watch(ctx, ctx.outbox, incidents=alerts.incidents, quiet=alerts.quiet,
                            chart=DigestChart(ctx.metrics, pictures.worker, settings=s) if ctx.metrics else None,
                            alert_chat_id=alert_chat_id(s))
        alerts.digest = watch.digest
        ctx.scheduler.add_all(watch.jobs())

        ctx.scheduler.start()
        self._stoppers.append(ctx.scheduler.shutdown)
        await supervisor.start()
        self._stoppers.append(supervisor.stop)  # popped first: the loops end before the parts close
        await watch.on_started()
        self._stoppers.append(watch.on_stopping)  # popped before supervisor.stop: the sender still runs
        log.info("tokenwatch started (database %s, market %s)", db.dialect, s.market)
        return ctx

    async def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                await stopper()
            except Exception:  # noqa: BLE001 - stop everything we can
                log.exception("error while stopping %s", getattr(stopper, "__qualname__", stopper))


async def run_service(settings: Settings) -> None:
    """Start, run until SIGINT/SIGTERM, stop."""
    service = Service(settings, console_input=sys.stdin.isatty())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        await stop.wait()
    finally:
        log.info("stopping")
        await service.stop()
