"""The REAL alert layer on the bot frame's context, for the chat front's tests.

``build_alerts`` (engine, silences and maintenance, tuning) plus the digest, on the frame's SQLite
database and manual clock, sending through a real :class:`~delivery.Outbox`; incidents are made
by feeding the engine observations, as the evaluator does every monitoring cycle::

    world = await AlertWorld.build(frame_ctx)            # sets frame_ctx.alerts and frame_ctx.outbox
    await world.fire(obs("api_slow", 3.1, endpoint="pairs"))   # -> [incident id]
    await world.start_sender(running_bot)                # the outbox's messages reach the fake Telegram

The rules select ``source=test`` series, which monitoring never reports, so a /status collection
(whose snapshot the evaluator reads) leaves the test's incidents alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.observation import Observation
from alerts.parts import Alerts
from alerts.rules import RuleSet, parse_rules
from alerts.setup import build_alerts
from alerts.watch import build_watch
from app.supervisor import LoopSpec, Supervisor
from delivery import Outbox, OutboxSender
from monitoring.sample import Sample

TEST = {"source": "test"}


def rule_dicts(*, runbook: str = "Check the provider's status page", summary: str = "",
               remediation_label: str = "Restart stuck jobs") -> list[dict[str, Any]]:
    return [
        {"name": "market_api_down", "metric": "tokenwatch_api_failing_seconds", "labels": TEST, "op": ">=",
         "threshold": 20, "severity": "critical", "group": "market", "unit": "s", "runbook": runbook,
         "summary": summary or "Market API down: {endpoint} failing for {value}"},
        {"name": "backlog_high", "metric": "tokenwatch_due_tokens", "labels": TEST, "threshold": 100,
         "severity": "warning", "group": "pipeline", "depends_on": ["market_api_down"],
         "summary": summary or "Backlog {value} tokens"},
        {"name": "api_slow", "metric": "tokenwatch_api_latency_p95_seconds", "labels": TEST, "threshold": 2,
         "severity": "warning", "group": "api", "unit": "s", "summary": summary or "API {endpoint} p95 {value}",
         "remediation": [{"label": remediation_label, "action": "restart_stuck_jobs"}],
         "tune": {"min": 1, "max": 5}},
        {"name": "memory_high", "metric": "tokenwatch_process_memory_share", "labels": TEST, "threshold": 0.8,
         "severity": "warning", "group": "host", "unit": "ratio", "summary": summary or "Memory at {value}",
         "tune": {"min": 0.5, "max": 0.95}},
    ]


def scenario_rules(**kw: Any) -> RuleSet:
    return parse_rules({"rule": rule_dicts(**kw)})


THRESHOLDS = {r["name"]: float(r["threshold"]) for r in rule_dicts()}


def obs(rule: str, value: float | None, breached: bool = True, **labels: str) -> Observation:
    """One series' reading as the evaluator reports it (labels besides ``source=test``)."""
    return Observation(rule=rule, labels={**TEST, **labels}, value=value, threshold=THRESHOLDS.get(rule, 1.0),
                       breached=breached, at=0.0, context={})


@dataclass
class AlertWorld:
    ctx: Any
    alerts: Alerts
    outbox: Outbox
    supervisor: Supervisor | None = None
    sender: OutboxSender | None = None
    _stops: list[Any] = field(default_factory=list)

    @classmethod
    async def build(cls, ctx: Any, rules: RuleSet | None = None, *, alert_chat_id: int) -> "AlertWorld":
        outbox = ctx.outbox if ctx.outbox is not None else Outbox(ctx.db, ctx.clock)
        ctx.outbox = outbox
        alerts = await build_alerts(ctx, outbox, alert_chat_id=alert_chat_id, rules=rules or scenario_rules())
        alerts.digest = build_watch(ctx, outbox, incidents=alerts.incidents, quiet=alerts.quiet,
                                    alert_chat_id=alert_chat_id).digest
        return cls(ctx, alerts, outbox)

    @property
    def engine(self) -> Any:
        return self.alerts.incidents

    async def fire(self, *observations: Observation) -> list[int]:
        """Feed one evaluation cycle; return the ids of the incidents that opened."""
        assert self.alerts.incidents is not None
        before = {v.id for v in await self.alerts.incidents.open_incidents()}
        await self.alerts.incidents.observe(list(observations), self.ctx.clock.time())
        return sorted(v.id for v in await self.alerts.incidents.open_incidents() if v.id not in before)

    async def clear(self, *observations: Observation) -> None:
        """The same series, healthy again (rules here resolve at once: keep_firing_for 0)."""
        assert self.alerts.incidents is not None
        await self.alerts.incidents.observe([Observation(rule=o.rule, labels=o.labels, value=0.0, threshold=o.threshold,
                                                         breached=False, at=0.0, context={}) for o in observations],
                                            self.ctx.clock.time())

    async def seed_history(self, metric: str, value: float, *, days: float = 7, every_s: float = 600.0) -> None:
        """``days`` of steady, healthy readings of ``metric`` (``source=test``), rolled up as in service:
        what /tune suggests a threshold from."""
        store = self.ctx.metrics
        now = self.ctx.clock.time()
        start = now - days * 86400
        await store.write([Sample(metric, value, labels=TEST, ts=start + i * every_s)
                           for i in range(int(days * 86400 / every_s))])
        await store.rollup(now)
        await store.apply_retention(now)

    async def start_sender(self, runner: Any) -> OutboxSender:
        """Run the real outbox sender (a supervised loop, as in service) towards the fake Telegram."""
        sender = OutboxSender(self.ctx.db, self.outbox, runner.transport(), self.ctx.settings, self.ctx.clock)
        supervisor = Supervisor(self.ctx.clock)
        supervisor.add(LoopSpec("bot.outbox_sender", sender.run, stop=sender.stop))
        await supervisor.start()
        self.supervisor, self.sender = supervisor, sender
        return sender

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.alerts.stop()
