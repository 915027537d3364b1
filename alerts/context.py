"""What the alert layer adds to the application context.

    ctx = AlertsContext(settings=settings, db=db, clock=clock)
    alerts = await build_alerts(ctx)          # sets ctx.alerts
"""
from __future__ import annotations

from dataclasses import dataclass

from alerts.parts import Alerts
from recovery.context import RecoveryContext


@dataclass
class AlertsContext(RecoveryContext):
    alerts: Alerts | None = None  # set by build_alerts; None when alerting is off in this process
