"""The alert figures of a digest, read from ``alert_event`` and ``alert_incident`` over a window.

A small query function for ``alerts/digest.py`` until ``alerts/history.py`` (per-rule
statistics for /tune) takes it over; it takes an open session like the other query functions::

    stats = await db.run(lambda s: alert_stats(s, since, until))
    stats.fired, stats.acknowledged, stats.resolved, stats.mean_time_to_ack_s, stats.noisiest
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select

from alerts.models import AlertEvent, AlertIncident

NOISIEST = 3


@dataclass(frozen=True)
class AlertStats:
    """Counts of events in ``[since, until)``: ``fired`` / ``resolved`` count alert series
    (``kind`` 'fired' / 'resolved'), ``acknowledged`` presses (``kind`` 'ack'); ``escalated`` and
    ``muted`` the like. ``opened`` counts incidents opened in the window; ``mean_time_to_ack_s``
    averages ``acked_at - opened_at`` of incidents acknowledged in the window (None when none);
    ``noisiest`` is up to three ``(rule, times fired)``, most first (ties by name)."""

    since: float
    until: float
    fired: int = 0
    resolved: int = 0
    acknowledged: int = 0
    escalated: int = 0
    muted: int = 0
    opened: int = 0
    mean_time_to_ack_s: float | None = None
    noisiest: list[tuple[str, int]] = field(default_factory=list)


async def alert_stats(session, since: float, until: float, *, top: int = NOISIEST) -> AlertStats:
    in_window = (col(AlertEvent.at) >= since, col(AlertEvent.at) < until)
    by_kind = dict((await session.exec(
        select(AlertEvent.kind, func.count()).where(*in_window).group_by(AlertEvent.kind))).all())
    noisy = (await session.exec(
        select(AlertEvent.rule, func.count().label("n"))
        .where(*in_window, col(AlertEvent.kind) == "fired", col(AlertEvent.rule).is_not(None))
        .group_by(AlertEvent.rule)
        .order_by(func.count().desc(), col(AlertEvent.rule))
        .limit(top))).all()
    opened = (await session.exec(
        select(func.count()).select_from(AlertIncident)
        .where(col(AlertIncident.opened_at) >= since, col(AlertIncident.opened_at) < until))).one()
    mtta = (await session.exec(
        select(func.avg(col(AlertIncident.acked_at) - col(AlertIncident.opened_at)))
        .where(col(AlertIncident.acked_at) >= since, col(AlertIncident.acked_at) < until))).one()
    return AlertStats(
        since, until,
        fired=int(by_kind.get("fired", 0)), resolved=int(by_kind.get("resolved", 0)),
        acknowledged=int(by_kind.get("ack", 0)), escalated=int(by_kind.get("escalated", 0)),
        muted=int(by_kind.get("muted", 0)), opened=int(opened or 0),
        mean_time_to_ack_s=None if mtta is None else float(mtta),
        noisiest=[(str(rule), int(n)) for rule, n in noisy],
    )
