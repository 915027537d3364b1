"""Fixtures for the alert tests.

- the engine on a real database, a manual clock and the real outbox: what the outbox holds is what
  operators would receive (``harness``);
- the fake Bot API server with the real outbox sender running under a ``Supervisor``, as the
  service runs it (``delivery``, for the watcher and digest tests).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import col, select

from alerts.engine import AlertEngine
from alerts.models import AlertEvent
from alerts.observation import Observation
from alerts.rules import RuleSet, parse_rules
from app.clock import SYSTEM_CLOCK, ManualClock
from app.db import Database
from app.memory import Reclaimers
from app.settings import Settings
from app.supervisor import LoopSpec, Supervisor
from delivery import BotTransport, Outbox, OutboxSender
from delivery.models import OutboxMessage
from simulator.telegram_api import FakeTelegram
from tests.bot.telegram_harness import telegram_harness
from tests.bot.test_outbox import fast_settings

ALERT_CHAT = -100500
ESCALATION_CHAT = -100900
ADMINS = [111, 222]

RULES: list[dict[str, Any]] = [
    {"name": "market_api_down", "metric": "tokenwatch_collector_up", "op": "<", "threshold": 1, "for": "30s",
     "keep_firing_for": "20s", "severity": "critical", "group": "market",
     "summary": "Market API down ({endpoint})", "runbook": "Check the provider's status page"},
    {"name": "pipeline_stalled", "metric": "tokenwatch_collector_up", "op": "<", "threshold": 1, "for": "0s",
     "keep_firing_for": "10s", "severity": "critical", "group": "pipeline", "depends_on": ["market_api_down"],
     "summary": "Processing stopped at {stage}"},
    {"name": "backlog_high", "metric": "tokenwatch_collector_up", "threshold": 500, "for": "0s",
     "keep_firing_for": "10s", "severity": "warning", "group": "pipeline", "depends_on": ["market_api_down"],
     "summary": "Backlog {value} over {threshold}"},
    {"name": "api_slow", "metric": "tokenwatch_event_loop_lag_seconds", "threshold": 2, "for": "1m",
     "keep_firing_for": "20s", "severity": "warning", "group": "api", "unit": "s",
     "summary": "API {endpoint} p95 {value} over {threshold}", "runbook": "DexScreener answers slowly",
     "remediation": [{"label": "Restart fetcher", "action": "pipeline.restart"}],
     "maintenance": {"for": "5m"}},
    {"name": "api_errors", "metric": "tokenwatch_event_loop_lag_seconds", "threshold": 5, "for": "0s",
     "keep_firing_for": "10s", "severity": "critical", "group": "api", "summary": "API errors {value}/min"},
    {"name": "memory_high", "metric": "tokenwatch_process_memory_share", "threshold": 0.8, "unit": "ratio",
     "for": "0s", "keep_firing_for": "10s", "severity": "warning", "group": "host", "cleanup_first": True,
     "summary": "Memory at {value} of the limit"},
    {"name": "stuck_tokens", "metric": "tokenwatch_collector_up", "threshold": 0, "for": "0s",
     "keep_firing_for": "10s", "severity": "warning", "group": "tokens", "summary": "Token {token} stuck: {reason}"},
    {"name": "telegram_failing", "metric": "tokenwatch_collector_up", "threshold": 0, "for": "0s",
     "keep_firing_for": "10s", "severity": "critical", "group": "delivery", "notify": "out_of_band",
     "summary": "Telegram delivery failing"},
]


def make_rules(extra: list[dict[str, Any]] | None = None) -> RuleSet:
    return parse_rules({"rule": RULES + (extra or [])})


def make_settings(**over: Any) -> Settings:
    base: dict[str, Any] = dict(
        telegram_alert_chat_id=ALERT_CHAT, telegram_escalation_chat_id=ESCALATION_CHAT,
        telegram_admin_ids=ADMINS, alert_ack_timeout_s=3600.0,
        alert_escalation_warning="15m:chat,30m:dm,60m:escalation_chat,90m:webhook",
        alert_escalation_critical="5m:chat,10m:dm,15m:escalation_chat,20m:webhook",
        alert_flap_changes=4, alert_flap_window_s=600.0, alert_flap_settle_s=300.0,
        alert_repeat_fires=5, alert_repeat_window_s=3600.0)
    base.update(over)
    return Settings(_env_file=None, **base)


def obs(rule: str, value: float | None, breached: bool = True, *, at: float = 0.0, threshold: float = 1.0,
        context: dict[str, str] | None = None, **labels: str) -> Observation:
    return Observation(rule=rule, labels=labels, value=value, threshold=threshold, breached=breached, at=at,
                       context=context or {})


@dataclass
class Harness:
    db: Database
    clock: ManualClock
    settings: Settings
    rules: RuleSet
    outbox: Outbox
    engine: AlertEngine
    reclaimers: Reclaimers = field(default_factory=Reclaimers)

    async def feed(self, *observations: Observation) -> None:
        await self.engine.observe(list(observations), self.clock.time())

    async def advance(self, seconds: float, step: float = 2.0) -> None:
        """Move the clock, ticking every ``step`` seconds like the scheduled job."""
        end = self.clock.time() + seconds
        while self.clock.time() < end:
            self.clock.advance(min(step, end - self.clock.time()))
            await self.engine.tick(self.clock.time())

    async def rows(self) -> list[OutboxMessage]:
        async def q(session):
            return list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())
        return await self.db.run(q)

    async def messages(self, chat: int | None = ALERT_CHAT) -> list[OutboxMessage]:
        """New messages (not edits): what makes a phone buzz."""
        return [r for r in await self.rows() if r.method == "send" and (chat is None or r.chat_id == chat)]

    async def last_edit(self) -> OutboxMessage:
        return [r for r in await self.rows() if r.method == "edit"][-1]

    async def events(self, kind: str | None = None) -> list[AlertEvent]:
        async def q(session):
            stmt = select(AlertEvent).order_by(col(AlertEvent.id))
            if kind is not None:
                stmt = stmt.where(AlertEvent.kind == kind)
            return list((await session.exec(stmt)).all())
        return await self.db.run(q)

    def restart(self, **kwargs: Any) -> AlertEngine:
        return AlertEngine(self.db, self.clock, self.settings, self.rules, Outbox(self.db, self.clock),
                           reclaimers=self.reclaimers, **kwargs)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def harness(db, clock, settings) -> Harness:
    rules = make_rules()
    outbox = Outbox(db, clock)
    reclaimers = Reclaimers()
    engine = AlertEngine(db, clock, settings, rules, outbox, reclaimers=reclaimers)
    await engine.start()
    h = Harness(db, clock, settings, rules, outbox, engine, reclaimers)
    yield h
    await engine.close()




@dataclass
class Delivery:
    fake: FakeTelegram
    outbox: Outbox
    sender: OutboxSender
    supervisor: Supervisor

    async def start(self) -> None:
        await self.supervisor.start()

    async def stop(self) -> None:
        await self.supervisor.stop()


@pytest.fixture
async def delivery(db):
    """Fake Telegram (limits enforced, HTML judged by ``simulator.telegram_html``) + Outbox +
    OutboxSender as a supervised loop (not started: call ``await delivery.start()``)."""
    async with telegram_harness(enforce_limits=True) as (fake, bot):
        fake.add_chat(ALERT_CHAT, "supergroup", title="alerts")
        outbox = Outbox(db, SYSTEM_CLOCK)
        sender = OutboxSender(db, outbox, BotTransport(bot), fast_settings(), SYSTEM_CLOCK,
                              retry_base_s=0.02, retry_max_s=0.1, poll_interval_s=0.05)
        supervisor = Supervisor(SYSTEM_CLOCK)
        supervisor.add(LoopSpec("bot.outbox_sender", sender.run, stop=sender.stop))
        world = Delivery(fake, outbox, sender, supervisor)
        try:
            yield world
        finally:
            await supervisor.stop()
