"""The composition root: the one place that builds and wires every part.

    service = Service(settings)
    await service.start()      # migrate, market (sim), pipeline, scheduler, monitoring, bot, outbox
    ...
    await service.stop()

``run_service(settings)`` is what ``tokenwatch run`` calls: start, wait for SIGINT/SIGTERM, stop.
Each part contributes its scheduler jobs (``jobs()``), its long-lived loops (``loops()``, run
by one ``Supervisor``) and its collectors; nothing else in the code base wires parts together.
On stop the loops end first (graceful ``stop`` of each, then cancellation), then the parts.

Several processes (README "Several processes"): every job and loop a part contributes is a
singleton -- run only by the leader, through the ``LeaderGate`` -- unless its id is in
``EVERY_PROCESS`` (the pipeline's share of the checks, each process measuring and healing
itself). ``Service(settings, role="worker")`` (``tokenwatch worker``) builds only the pipeline,
monitoring and recovery and runs only ``EVERY_PROCESS``; ``role="run"`` builds everything and
leads or stands by (``app/leadership.py``: Redis, else a PostgreSQL advisory lock, else alone).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterable
from typing import Literal

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.leader_gate import LeaderGate
from app.leadership import leadership_from_settings, process_id
from app.migrate import upgrade
from app.processes import ProcessRegistry
from app.scheduler import JobSpec, Scheduler
from app.sd_notify import SdNotify
from app.supervisor import LoopSpec, Supervisor
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
from tokenwatch.cluster import ClusterCollector, processes_section

# Everything is imported up front, before the loop runs: a first import inside a running
# service would block the event loop for seconds.
log = logging.getLogger("tokenwatch")

Role = Literal["run", "worker"]

# Jobs and loops every process runs; every other one a part contributes is a singleton (the leader's).
EVERY_PROCESS = frozenset({
    # the pipeline: checks are leased from the database (FOR UPDATE SKIP LOCKED on PostgreSQL),
    # discovery is idempotent, so any number of processes share them
    "pipeline.process", "pipeline.profiles", "pipeline.discovery_ws",
    # the API limit shared by every process behind one address (its membership heartbeat)
    "pipeline.shared_limit",
    # systemd's watchdog: every process's own event loop
    "systemd.watchdog",
    # each process measures itself (only the leader writes the metric store and alerts)
    "monitoring.collect", "monitoring.loop_lag", "status_line", "processes.heartbeat",
    # each process heals itself: its own pool, memory, slow queries, action ledger
    "recovery.db_pool", "recovery.slow_queries", "recovery.memory", "recovery.ledger_flush",
    # the process's own machinery
    "scheduler.watchdog", "leadership",
})


def alert_chat_id(settings: Settings) -> int | None:
    """Where alerts go: ``TELEGRAM_ALERT_CHAT_ID``; without Telegram, the console chat (the terminal)."""
    if settings.telegram_alert_chat_id is not None:
        return settings.telegram_alert_chat_id
    return CONSOLE_CHAT_ID if not settings.telegram_bot_token else None


class Service:
    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK, *, console_input: bool = True,
                 console_out=None, role: Role = "run") -> None:
        if role not in ("run", "worker"):
            raise ValueError(f"role must be 'run' or 'worker', got {role!r}")
        self.settings = settings
        self.role = role
        self.systemd = SdNotify.from_env()   # READY/WATCHDOG/STOPPING to systemd (a no-op without NOTIFY_SOCKET)
        self.process_id = process_id()
        self.gate: LeaderGate | None = None       # None in a worker
        self.processes: ProcessRegistry | None = None
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
        worker = self.role == "worker"
        rules = None if worker else await asyncio.to_thread(load_configured_rules, s)  # a bad file stops here, first
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

        # scheduler (periodic jobs) and supervisor (long-lived loops); the leader gate holds the singletons
        scheduler = ctx.scheduler = Scheduler(s, self.clock)
        supervisor = ctx.supervisor = Supervisor(self.clock)
        gate = None
        if not worker:
            gate = self.gate = LeaderGate(leadership_from_settings(s, self.process_id, self.clock), scheduler,
                                          supervisor, renew_s=s.leader_renew_s, clock=self.clock)
        place = self._place
        place(ctx.pipeline.jobs(), ctx.pipeline.loops())
        place(loops=scheduler.loops())
        place(loops=self.systemd.loops())   # WATCHDOG=1 from this event loop (a hung loop is restarted)
        if gate is not None and gate.leadership.kind != "single":   # alone (SQLite), it just leads
            place(loops=gate.loops())

        # monitoring
        monitoring = self.monitoring = await build_monitoring(ctx)
        place(monitoring.jobs(), monitoring.loops())
        self._stoppers.append(monitoring.stop)

        # the process registry: every process's heartbeat row (/status, /metrics)
        registry = self.processes = ProcessRegistry(
            db, self.clock, process_id=self.process_id,
            role=(lambda: "worker") if gate is None else (lambda: gate.role),
            fence=(lambda: None) if gate is None else (lambda: gate.leadership.fence if gate.is_leader() else None),
            leadership="none" if gate is None else gate.leadership.kind, heartbeat_s=s.process_heartbeat_s)
        place([JobSpec("processes.heartbeat", registry.heartbeat, interval_s=s.process_heartbeat_s,
                       budget_s=max(10.0, s.process_heartbeat_s)),
               JobSpec("processes.prune", registry.prune, interval_s=3600.0, budget_s=60.0)])
        if ctx.collectors is not None:
            ctx.collectors.register(ClusterCollector(registry, gate))

        # recovery: the knob registry and the controllers that turn the knobs, within their bounds;
        # every action in the ledger, the ones that matter told in the alert chat (through the outbox)
        outbox = ctx.outbox = Outbox(db, self.clock)
        recovery = await build_recovery(ctx, outbox=outbox, alert_chat_id=alert_chat_id(s))
        if ctx.pipeline.client is not None:  # recovery's hooks on the market client's hot path
            ctx.pipeline.client.latency_observer = recovery.rto
        if recovery.breaker_actions is not None:
            ctx.pipeline.breakers.on_transition(recovery.breaker_actions)
        place(recovery.jobs(), recovery.loops())
        self._stoppers.append(recovery.stop)

        if worker or gate is None:
            return await self._start_worker(ctx, registry)

        # alerts: rules over every monitoring snapshot -> incidents -> the outbox (built before the
        # bot, whose buttons the alert messages carry)
        alerts = await build_alerts(ctx, outbox, alert_chat_id=alert_chat_id(s), rules=rules)
        quiet = alerts.quiet
        if recovery.announcer is not None and quiet is not None:   # no self-healing news in maintenance
            recovery.announcer.quiet = lambda now: quiet.current_maintenance(now) is not None
        place(alerts.jobs(), alerts.loops())
        self._stoppers.append(alerts.stop)

        # bot and delivery: only the leader polls Telegram and sends (checked before every send)
        bot = self.bot = await build_bot(ctx, console_input=self.console_input, console_out=self.console_out)
        place(bot.jobs(), bot.loops())
        bot.sender.may_send = gate.is_leader
        bot.runner.dp["parts"].status_sections.add(
            "processes", processes_section(registry, gate, kind=gate.leadership.kind), order=60)
        self._stoppers.append(bot.stop)

        if s.status_line:
            place(loops=StatusLine(ctx).loops())

        # pictures: /graph's render worker (a process pool) and /dashboard's refresh job
        pictures = await build_pictures(ctx)
        place(pictures.jobs())
        self._stoppers.append(pictures.stop)

        # watching the watcher (heartbeat, started/stopping notices) and digests
        watch = build_watch(ctx, ctx.outbox, incidents=alerts.incidents, quiet=alerts.quiet,
                            chart=DigestChart(ctx.metrics, pictures.worker, settings=s) if ctx.metrics else None,
                            alert_chat_id=alert_chat_id(s))
        alerts.digest = watch.digest
        place(watch.jobs())

        # leading: alerts evaluate and the metric store is written only by the leader; a process
        # that takes over reloads what the last leader left (incidents, silences, tunings)
        store = monitoring.registry.store
        just_built = [True]   # build_alerts loaded the state just now: the first term needs no reload

        async def lead() -> None:
            if just_built[0]:
                alerts.paused = False
            else:
                await alerts.resume()
            monitoring.registry.store = store
            await watch.on_started()

        async def stand_by() -> None:
            alerts.pause()
            monitoring.registry.store = None

        gate.add(on_elected=lead, on_deposed=stand_by)
        gate.rival = lambda: any(p.up and p.role == "leader" and not p.this for p in registry.latest)
        await stand_by()
        await gate.step()   # a lone process leads at once; with a leader elsewhere this one stands by
        just_built[0] = False

        scheduler.start()
        self._stoppers.append(scheduler.shutdown)
        self._stoppers.append(registry.remove)
        self._stoppers.append(gate.stop)        # after the loops: the singletons end, the lease goes
        await supervisor.start()
        self._stoppers.append(supervisor.stop)  # popped first: the loops end before the parts close

        async def stopping_notice() -> None:
            if gate.is_leader():
                await watch.on_stopping()

        self._stoppers.append(stopping_notice)  # popped before supervisor.stop: the sender still runs
        log.info("tokenwatch started (database %s, market %s, %s, leadership %s)", db.dialect, s.market,
                 gate.role, gate.leadership.kind)
        return ctx

    async def _start_worker(self, ctx: BotContext, registry: ProcessRegistry) -> BotContext:
        """``tokenwatch worker``: the pipeline, monitoring (no store writes) and recovery only."""
        assert ctx.scheduler is not None and ctx.supervisor is not None and self.monitoring is not None
        self.monitoring.registry.store = None
        if self.settings.is_sqlite:
            log.warning("tokenwatch worker on SQLite shares its work with nobody: workers need the PostgreSQL "
                        "database of a `tokenwatch run` (DATABASE_URL)")
        ctx.scheduler.start()
        self._stoppers.append(ctx.scheduler.shutdown)
        self._stoppers.append(registry.remove)
        await ctx.supervisor.start()
        self._stoppers.append(ctx.supervisor.stop)
        log.info("tokenwatch worker started (database %s, market %s): the pipeline only", ctx.db.dialect,
                 self.settings.market)
        return ctx

    def _place(self, jobs: Iterable[JobSpec] = (), loops: Iterable[LoopSpec] = ()) -> None:
        """Every process runs the ``EVERY_PROCESS`` jobs and loops; the rest are the leader's
        (the gate's), and a worker does not run them at all."""
        assert self.ctx is not None and self.ctx.scheduler is not None and self.ctx.supervisor is not None
        jobs, loops = list(jobs), list(loops)
        self.ctx.scheduler.add_all([j for j in jobs if j.id in EVERY_PROCESS])
        self.ctx.supervisor.add_all([lp for lp in loops if lp.id in EVERY_PROCESS])
        if self.gate is not None:
            self.gate.add(jobs=[j for j in jobs if j.id not in EVERY_PROCESS],
                          loops=[lp for lp in loops if lp.id not in EVERY_PROCESS])

    async def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                await stopper()
            except Exception:  # noqa: BLE001 - stop everything we can
                log.exception("error while stopping %s", getattr(stopper, "__qualname__", stopper))


async def run_service(settings: Settings, role: Role = "run") -> None:
    """Start, run until SIGINT/SIGTERM, stop."""
    service = Service(settings, console_input=sys.stdin.isatty(), role=role)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        service.systemd.ready(f"tokenwatch {role} started")
        await stop.wait()
    finally:
        log.info("stopping")
        service.systemd.stopping()
        await service.stop()
        service.systemd.close()
