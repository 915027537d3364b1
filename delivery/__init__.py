"""Delivery that loses nothing: a durable outbox table and the sender that drains it.

    outbox = Outbox(db, clock)
    await outbox.enqueue(chat_id, text, key="alert:42:fire", priority=CRITICAL)
    sender = OutboxSender(db, outbox, BotTransport(bot), settings, clock)
    supervisor.add(LoopSpec("bot.outbox_sender", sender.run, stop=sender.stop))   # app.supervisor
    scheduler.add_all(delivery.jobs(db, settings, clock))     # retention

Modules: ``store`` (producers' side), ``dispatch`` (the loop), ``row_delivery`` (one row ->
an ``outcome``), ``outage``, ``token_guard`` (401), ``queries`` (all SQL), ``retention``,
``limits`` (pacing), ``transport``, ``html``. Imports only ``app/``.
"""
from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.scheduler import JobSpec
from app.settings import Settings
from delivery.dispatch import OutboxSender
from delivery.limits import Pacer
from delivery.queries import SenderQueries
from delivery.retention import OutboxRetention
from delivery.stats import SenderStats
from delivery.store import Outbox, OutboxError
from delivery.transport import BotTransport, Transport


def jobs(db: Database, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> list[JobSpec]:
    """The delivery layer's scheduler jobs (retention)."""
    return OutboxRetention(SenderQueries(db, clock), settings, clock).jobs()


__all__ = ["Outbox", "OutboxSender", "OutboxError", "SenderStats", "Pacer", "Transport", "BotTransport",
           "OutboxRetention", "jobs"]
