"""The /status section for alerting: open incidents (how many critical) and maintenance while on.

Read from the alert layer's memory (``IncidentService.open_counts``,
``QuietService.current_maintenance``), never from the database, like every /status section::

    register_alert_sections(sections)     # "alerts" (15); empty when alerting is not running here
"""
from __future__ import annotations

from bot.context import BotContext
from bot.status_sections import StatusSections
from bot.views.alerts import render_alerts_status
from monitoring.snapshot import MonitoringSnapshot


async def alerts_section(ctx: BotContext, snapshot: MonitoringSnapshot, now: float) -> str:
    alerts = ctx.alerts
    if alerts is None or alerts.incidents is None:
        return ""
    maintenance = alerts.quiet.current_maintenance(now) if alerts.quiet is not None else None
    return render_alerts_status(alerts.incidents.open_counts(), maintenance, now)


def register_alert_sections(sections: StatusSections) -> None:
    sections.add("alerts", alerts_section, order=15)
