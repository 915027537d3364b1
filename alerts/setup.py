"""Build the alert layer for a running service, in one call from the composition root.

    alerts = await build_alerts(ctx, outbox, alert_chat_id=chat)   # sets ctx.alerts
    ctx.scheduler.add_all(alerts.jobs())    # alerts.tick, alerts.quiet, alerts.autotune
    ...
    await alerts.stop()

Every monitoring cycle's snapshot (``ctx.collectors.coordinator``) is evaluated against the rules
(``Evaluator``) and the observations go to the engine, which opens, updates and resolves incidents.
Silences and maintenance (``Quiet``) mute the engine and relax rules; ``/tune`` (``Tuning``) sets the
thresholds in force. The bot sets ``alerts.buttons`` after this; every part reads it when it
sends, so the messages carry the bot's signed buttons.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from alerts.api import ButtonFactory
from alerts.context import AlertsContext
from alerts.engine import AlertEngine, Remediator
from alerts.evaluate import Evaluator, configured_parts
from alerts.parts import Alerts
from alerts.quiet import Quiet
from alerts.rules import Remediation, Rule, RuleSet, load_configured_rules
from alerts.tuning import Tuning
from monitoring.host.process import ProcessCollector
from app.memory import RECLAIMERS
from delivery.store import Outbox
from monitoring import metric_names as m
from monitoring.snapshot import MonitoringSnapshot

log = logging.getLogger(__name__)


class _CurrentButtons:
    """The engine's ButtonFactory: whatever ``alerts.buttons`` is when a message is made."""

    def __init__(self, alerts: Alerts) -> None:
        self._alerts = alerts

    def incident(self, incident_id: int, *, remediations: Sequence[Remediation], resolved: bool) -> dict[str, Any] | None:
        return self._alerts.buttons.incident(incident_id, remediations=remediations, resolved=resolved)

    def silence(self, silence_id: int) -> dict[str, Any] | None:
        return self._alerts.buttons.silence(silence_id)

    def tuning(self, change_id: int) -> dict[str, Any] | None:
        return self._alerts.buttons.tuning(change_id)


def remediations(ctx: AlertsContext) -> dict[str, Remediator]:
    """The actions a rule's remediation buttons may name (``action = "memory_cleanup"``)."""

    async def memory_cleanup() -> str:
        report = await RECLAIMERS.reclaim(reason="the Free memory button")
        failed = f"; failed: {', '.join(report.failed)}" if report.failed else ""
        return f"Freed memory: {report.detail() or 'gc'} ({report.collected} objects collected){failed}."


    async def restart_stuck_jobs() -> str:
        if ctx.scheduler is None:
            return "No scheduler runs in this process."
        restarted = await ctx.scheduler.cancel_overrunning(grace_s=0.0, gated=False)
        return f"Restarted {', '.join(restarted)}." if restarted else "No job was over its time budget."

    return {"memory_cleanup": memory_cleanup, "restart_stuck_jobs": restart_stuck_jobs}


def memory_measure(ctx: AlertsContext) -> Callable[[Rule, Mapping[str, str]], Awaitable[float | None]]:
    """Measure memory again after a cleanup (``cleanup_first`` rules), straight from the process."""
    collector = next((c for c in (ctx.collectors.collectors if ctx.collectors else [])
                      if isinstance(c, ProcessCollector)), None)

    async def measure(rule: Rule, labels: Mapping[str, str]) -> float | None:
        if collector is None or rule.metric != m.PROCESS_MEMORY_SHARE:
            return None
        return await collector.memory_share()

    return measure


async def build_alerts(ctx: AlertsContext, outbox: Outbox, *, alert_chat_id: int | None = None,
                       rules: RuleSet | None = None) -> Alerts:
    """Load the rules, build and start every part, listen to monitoring's snapshots; sets ``ctx.alerts``.

    ``alert_chat_id`` overrides ``TELEGRAM_ALERT_CHAT_ID`` (the console chat without Telegram).
    A bad rules file raises :class:`alerts.rules.RuleFileError` (a one-line start-up error)."""
    s, clock = ctx.settings, ctx.clock
    if rules is None:
        rules = await asyncio.to_thread(load_configured_rules, s)
    chat = alert_chat_id if alert_chat_id is not None else s.telegram_alert_chat_id
    alerts = Alerts(rules)
    buttons: ButtonFactory = _CurrentButtons(alerts)
    quiet = Quiet.from_settings(ctx.db, rules, outbox, s, clock, buttons=lambda: alerts.buttons, chat_id=chat)
    engine = AlertEngine(ctx.db, clock, s, rules, outbox, alert_chat_id=chat, mutes=quiet, buttons=buttons,
                         silencer=quiet.silence, remediations=remediations(ctx), measure=memory_measure(ctx))
    alerts.quiet, alerts.incidents = quiet, engine
    evaluator = Evaluator(rules, mutes=quiet, store=ctx.metrics, configured=configured_parts(s))
    if ctx.metrics is not None:
        tuning = Tuning.from_settings(ctx.db, rules, ctx.metrics, outbox, s, clock,
                                      buttons=lambda: alerts.buttons, chat_id=chat)
        await tuning.start()
        alerts.tuning = tuning
        alerts._reloaders.append(tuning.start)
        evaluator.thresholds = tuning
        alerts._jobs += tuning.jobs()
    await quiet.start()
    await engine.start()
    await evaluator.seed(clock.time())
    alerts._jobs += engine.jobs() + quiet.jobs()
    alerts._stoppers.append(engine.close)

    async def reseed() -> None:
        await evaluator.seed(clock.time())

    alerts._reloaders[:0] = [quiet.start]
    alerts._reloaders += [engine.start, reseed]

    async def evaluate(snapshot: MonitoringSnapshot) -> None:
        if alerts.paused:
            return
        now = clock.time()
        await engine.observe(await evaluator.evaluate(snapshot, now), now)

    if ctx.collectors is not None:
        remove = ctx.collectors.coordinator.add_listener(evaluate)

        async def unlisten() -> None:
            remove()

        alerts._stoppers.append(unlisten)
    ctx.alerts = alerts
    log.info("alerting on: %d rules from %s, alert chat %s", len(rules), rules.path, chat)
    return alerts
