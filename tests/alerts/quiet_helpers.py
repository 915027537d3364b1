"""Shared parts of the quiet/tuning tests: a small rule set, the real outbox, queued messages."""
from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from alerts.models import AlertEvent
from alerts.rules import RuleSet, parse_rules
from delivery.models import OutboxMessage
from simulator.telegram_html import check_message

ALERT_CHAT = -100555

RULES: dict = {"rule": [
    {"name": "api_slow", "metric": "tokenwatch_api_latency_p95_seconds", "op": ">", "threshold": 2.0,
     "severity": "warning", "summary": "API {endpoint} slow", "group": "market", "unit": "s",
     "tune": {"min": 1.0, "max": 5.0, "auto": True}},
    {"name": "loop_lag", "metric": "tokenwatch_event_loop_lag_seconds", "op": ">", "threshold": 0.5,
     "severity": "warning", "summary": "loop lag {value}", "tune": {"min": 0.2, "max": 2.0}},
    {"name": "cache_low", "metric": "tokenwatch_api_cache_hit_rate", "op": "<", "threshold": 0.5,
     "severity": "info", "summary": "cache hit rate {value}", "tune": {"min": 0.1, "max": 0.6, "auto": True}},
    {"name": "db_down", "metric": "tokenwatch_db_up", "op": "<", "threshold": 1.0,
     "severity": "critical", "summary": "database down", "tune": {"min": 0.5, "max": 1.0}},
]}


def rules() -> RuleSet:
    return parse_rules(RULES)


class Buttons:
    """The bot's ButtonFactory shape: JSON-able inline keyboards."""

    def incident(self, incident_id: int, *, remediations: Any, resolved: bool) -> dict[str, Any] | None:
        return None

    def silence(self, silence_id: int) -> dict[str, Any] | None:
        return {"inline_keyboard": [[{"text": "Unsilence", "callback_data": f"uns:{silence_id}"}]]}

    def tuning(self, change_id: int) -> dict[str, Any] | None:
        return {"inline_keyboard": [[{"text": "Revert", "callback_data": f"rev:{change_id}"}]]}


async def queued(db, prefix: str = "alerts:") -> list[OutboxMessage]:
    """Outbox rows whose key starts with ``prefix``, each checked by the independent Telegram HTML judge."""
    async def run(session):
        rows = await session.exec(select(OutboxMessage).where(col(OutboxMessage.idempotency_key).startswith(prefix))
                                  .order_by(col(OutboxMessage.id)))
        return list(rows.all())
    rows = await db.run(run)
    for row in rows:
        assert row.chat_id == ALERT_CHAT
        assert check_message(row.text, "HTML") is None, (row.text, check_message(row.text, "HTML"))
    return rows


async def events(db, kind: str | None = None) -> list[AlertEvent]:
    async def run(session):
        query = select(AlertEvent).order_by(col(AlertEvent.id))
        if kind is not None:
            query = query.where(AlertEvent.kind == kind)
        return list((await session.exec(query)).all())
    return await db.run(run)


async def add_events(db, rows: list[AlertEvent]) -> None:
    async def run(session):
        for row in rows:
            session.add(row)
    await db.run(run)
