"""What the alerts did over a time range: read-side statistics over ``alert_event`` and
``alert_incident``, for /tune, the digest and the maintenance summary; and what the pictures
draw (``alert_timeline``, ``incidents_and_maintenance``: incidents, firings by rule,
acknowledgments and maintenance windows over a range).

The engine records the timeline (``alerts/models.py`` ``AlertEvent``): ``fired`` and
``resolved`` per series (rule, fingerprint, incident_id, at), ``ack`` per incident (actor),
``escalated`` (an automatic step, or a press when ``actor_id`` is set), ``muted`` and more.
A *firing* is one ``fired`` event of a series paired with the next ``resolved`` of the same
fingerprint; it counts in the range it fired in (a firing still open at ``until`` lasts until
``until``)::

    stats = await rule_stats(db, since=now - 7 * 86400, until=now)    # {rule: RuleStats}
    stats["api_slow"].fired, stats["api_slow"].firing_s, stats["api_slow"].acked_share
    totals(stats).ack_median_s                 # time to acknowledge over every rule
    noisiest(stats, limit=3)                   # the rules that fired most
    await count_by_rule(db, since, until)      # {"api_slow": 3, ...} fired meanwhile
    await events_between(db, since, until, kinds=("fired", "resolved"))   # [EventRow]
    await incident_intervals(db, "api_slow", since, until)   # [(opened, resolved or until)]

*Acknowledged*: the firing's incident got an ``ack`` before the firing ended. *Cleared
unattended*: the firing resolved and nobody acted on its incident before that (no ``ack``, and
no ``escalated``, ``remediation`` or ``silenced`` event carrying a person's ``actor_id``).
Time to acknowledge counts acknowledgments that came after the firing started.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import Database
from app.percentiles import median
from app.tables import table_of
from alerts.models import AlertEvent, AlertIncident, AlertMaintenance, AlertState

E = table_of(AlertEvent).c

FIRED = "fired"
RESOLVED = "resolved"
ACK = "ack"
ESCALATED = "escalated"
#: kinds that count as someone acting on an incident (besides ``ack``) when a person did them
PERSON_ACTS = ("escalated", "remediation", "silenced")


@dataclass
class RuleStats:
    """One rule's firings in a range."""

    rule: str
    fired: int = 0
    firing_s: float = 0.0
    acked: int = 0
    cleared_unattended: int = 0
    resolved: int = 0
    ack_delays_s: list[float] = field(default_factory=list)

    @property
    def acked_share(self) -> float | None:
        return self.acked / self.fired if self.fired else None

    @property
    def cleared_unattended_share(self) -> float | None:
        return self.cleared_unattended / self.fired if self.fired else None

    @property
    def ack_mean_s(self) -> float | None:
        return sum(self.ack_delays_s) / len(self.ack_delays_s) if self.ack_delays_s else None

    @property
    def ack_median_s(self) -> float | None:
        return median(self.ack_delays_s)


@dataclass(frozen=True)
class Totals:
    """Every rule together."""

    fired: int
    acked: int
    resolved: int
    cleared_unattended: int
    firing_s: float
    ack_mean_s: float | None
    ack_median_s: float | None


@dataclass(frozen=True)
class EventRow:
    at: float
    kind: str
    rule: str | None
    incident_id: int | None
    fingerprint: str | None
    value: float | None
    actor: str | None
    detail: str


@dataclass
class _Firing:
    rule: str
    incident_id: int | None
    start: float
    end: float | None = None


async def _firings(session: AsyncSession, since: float, until: float, rule: str | None) -> list[_Firing]:
    cond = [col(AlertEvent.kind).in_((FIRED, RESOLVED)), col(AlertEvent.at) >= since, col(AlertEvent.at) < until]
    if rule is not None:
        cond.append(col(AlertEvent.rule) == rule)
    rows = [(e.kind, e.rule, e.fingerprint, e.incident_id, e.at) for e in (await session.exec(
        select(AlertEvent).where(and_(*cond)).order_by(E.at, E.id)
    )).all()]
    firings: list[_Firing] = []
    open_: dict[str, _Firing] = {}
    for kind, rule_name, fingerprint, incident_id, at in rows:
        key = fingerprint or f"rule:{rule_name}"
        if kind == FIRED:
            previous = open_.get(key)
            if previous is not None:  # fired again without a resolve: the old one ends here
                previous.end = float(at)
            firing = _Firing(rule_name or "?", incident_id, float(at))
            open_[key] = firing
            firings.append(firing)
        else:
            firing_or_none = open_.pop(key, None)
            if firing_or_none is not None:
                firing_or_none.end = float(at)
                if firing_or_none.incident_id is None:
                    firing_or_none.incident_id = incident_id
    return firings


async def _acts(session: AsyncSession, since: float, until: float) -> dict[int, list[tuple[float, bool]]]:
    """Per incident: (at, is_ack) of every ack and every act by a person, in time order."""
    rows = (await session.exec(
        select(AlertEvent.incident_id, AlertEvent.kind, AlertEvent.at, AlertEvent.actor_id)
        .where(and_(col(AlertEvent.kind).in_((ACK, *PERSON_ACTS)), col(AlertEvent.incident_id).is_not(None),
                    col(AlertEvent.at) >= since, col(AlertEvent.at) < until))
        .order_by(col(AlertEvent.at))
    )).all()
    acts: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for incident_id, kind, at, actor_id in rows:
        if incident_id is not None and (kind == ACK or actor_id is not None):
            acts[int(incident_id)].append((float(at), kind == ACK))
    return acts


async def rule_stats(db: Database, since: float, until: float, *, rule: str | None = None) -> dict[str, RuleStats]:
    """Per rule (only rules that fired in ``[since, until)``, or just ``rule``): firings, time
    firing, acknowledged, cleared unattended, acknowledgment delays."""

    async def run(session: AsyncSession) -> tuple[list[_Firing], dict[int, list[tuple[float, bool]]]]:
        firings = await _firings(session, since, until, rule)
        return firings, (await _acts(session, since, until) if firings else {})

    firings, acts = await db.run(run)
    stats: dict[str, RuleStats] = {}
    for firing in firings:
        s = stats.setdefault(firing.rule, RuleStats(firing.rule))
        s.fired += 1
        end = firing.end if firing.end is not None else until
        s.firing_s += max(0.0, min(end, until) - firing.start)
        if firing.end is not None:
            s.resolved += 1
        incident_acts = acts.get(firing.incident_id, []) if firing.incident_id is not None else []
        before_end = [(at, is_ack) for at, is_ack in incident_acts if at <= end]
        acks = [at for at, is_ack in before_end if is_ack]
        if acks:
            s.acked += 1
            after = [at - firing.start for at in acks if at >= firing.start]
            if after:
                s.ack_delays_s.append(after[0])
        if firing.end is not None and not before_end:
            s.cleared_unattended += 1
    return stats


def totals(stats: Mapping[str, RuleStats]) -> Totals:
    """Every rule's statistics summed; time to acknowledge over every acknowledged firing."""
    delays = [d for s in stats.values() for d in s.ack_delays_s]
    return Totals(
        fired=sum(s.fired for s in stats.values()),
        acked=sum(s.acked for s in stats.values()),
        resolved=sum(s.resolved for s in stats.values()),
        cleared_unattended=sum(s.cleared_unattended for s in stats.values()),
        firing_s=sum(s.firing_s for s in stats.values()),
        ack_mean_s=sum(delays) / len(delays) if delays else None,
        ack_median_s=median(delays),
    )


def noisiest(stats: Mapping[str, RuleStats], limit: int = 5) -> list[RuleStats]:
    """The rules that fired most (ties: longest firing, then name)."""
    ranked = sorted(stats.values(), key=lambda s: (-s.fired, -s.firing_s, s.rule))
    return [s for s in ranked if s.fired][:max(0, limit)]


async def count_by_rule(db: Database, since: float, until: float, *, kind: str = FIRED) -> dict[str, int]:
    """How many ``kind`` events each rule has in ``[since, until)``, most first."""

    async def run(session: AsyncSession) -> list[tuple[str | None, int]]:
        rows = await session.exec(
            select(AlertEvent.rule, func.count())
            .where(and_(col(AlertEvent.kind) == kind, col(AlertEvent.at) >= since, col(AlertEvent.at) < until))
            .group_by(col(AlertEvent.rule))
        )
        return [(r, int(n)) for r, n in rows.all()]

    rows = await db.run(run)
    return dict(sorted(((r or "?", n) for r, n in rows), key=lambda item: (-item[1], item[0])))


async def events_between(db: Database, since: float, until: float, *, kinds: Sequence[str] | None = None,
                         limit: int = 1000) -> list[EventRow]:
    """Timeline events in ``[since, until)`` (optionally only ``kinds``), oldest first, at most ``limit``."""

    async def run(session: AsyncSession) -> list[EventRow]:
        cond = [col(AlertEvent.at) >= since, col(AlertEvent.at) < until]
        if kinds is not None:
            cond.append(col(AlertEvent.kind).in_(tuple(kinds)))
        rows = (await session.exec(
            select(AlertEvent).where(and_(*cond)).order_by(col(AlertEvent.at), col(AlertEvent.id)).limit(limit)
        )).all()
        return [EventRow(e.at, e.kind, e.rule, e.incident_id, e.fingerprint, e.value, e.actor, e.detail) for e in rows]

    return await db.run(run)


async def incident_intervals(db: Database, rule: str, since: float, until: float) -> list[tuple[float, float]]:
    """When incidents that ``rule`` fired into were open, overlapping ``[since, until)``, merged
    and clipped (an incident still open lasts until ``until``); also each firing of the rule
    itself, so a series that fired without an incident still counts."""

    async def run(session: AsyncSession) -> list[tuple[float, float]]:
        fired = (await session.exec(
            select(AlertEvent.incident_id, AlertEvent.kind, AlertEvent.at, AlertEvent.fingerprint)
            .where(and_(col(AlertEvent.rule) == rule, col(AlertEvent.kind).in_((FIRED, RESOLVED)),
                        col(AlertEvent.at) < until))
            .order_by(col(AlertEvent.at), col(AlertEvent.id))
        )).all()
        spans: list[tuple[float, float]] = []
        ids = {int(i) for i, kind, _, _ in fired if i is not None}
        open_: dict[str, float] = {}
        for _, kind, at, fingerprint in fired:
            key = fingerprint or ""
            if kind == FIRED:
                open_.setdefault(key, float(at))
            elif key in open_:
                spans.append((open_.pop(key), float(at)))
        spans.extend((start, until) for start in open_.values())
        id_list = sorted(ids)
        for chunk in range(0, len(id_list), 500):
            rows = (await session.exec(
                select(AlertIncident.opened_at, AlertIncident.resolved_at)
                .where(col(AlertIncident.id).in_(id_list[chunk:chunk + 500]))
            )).all()
            spans.extend((float(o), float(r) if r is not None else until) for o, r in rows)
        return spans

    return merge_intervals(await db.run(run), since, until)


def merge_intervals(spans: Iterable[tuple[float, float]], since: float, until: float) -> list[tuple[float, float]]:
    """Clip to ``[since, until)``, drop empty ones, merge overlaps; sorted."""
    clipped = sorted((max(a, since), min(b, until)) for a, b in spans if min(b, until) > max(a, since))
    merged: list[tuple[float, float]] = []
    for a, b in clipped:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


# --- the digest's alert figures (alerts/digest.py), over an open session -------------------------
DIGEST_NOISIEST = 3


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


async def alert_stats(session: AsyncSession, since: float, until: float, *, top: int = DIGEST_NOISIEST) -> AlertStats:
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


# --- pictures (charts/: the ``alerts`` preset's timeline, incidents shaded on metric panels) -----
@dataclass(frozen=True)
class FiringSpan:
    """One alert series firing, clipped to the range asked for; ``ongoing`` when it had not
    resolved by then. ``severity`` is the series' (its rule's), else its incident's."""

    rule: str
    fingerprint: str
    incident_id: int | None
    severity: str
    start: float
    end: float
    ongoing: bool


@dataclass(frozen=True)
class AckMark:
    at: float
    incident_id: int
    actor: str | None


@dataclass(frozen=True)
class IncidentSpan:
    """An incident open over part of the range (clipped); ``ongoing`` when still open then."""

    incident_id: int
    severity: str
    start: float
    end: float
    ongoing: bool
    title: str


@dataclass(frozen=True)
class MaintenanceSpan:
    """A maintenance window (clipped): until it was ended, else until it runs out."""

    maintenance_id: int
    start: float
    end: float
    ongoing: bool
    reason: str


@dataclass(frozen=True)
class AlertTimeline:
    since: float
    until: float
    firings: list[FiringSpan]
    acks: list[AckMark]
    incidents: list[IncidentSpan]
    maintenance: list[MaintenanceSpan]


_IN_CHUNK = 500


async def _overlapping_incidents(session: AsyncSession, since: float, until: float) -> list[AlertIncident]:
    return list((await session.exec(
        select(AlertIncident)
        .where(and_(col(AlertIncident.opened_at) < until,
                    or_(col(AlertIncident.resolved_at).is_(None), col(AlertIncident.resolved_at) > since)))
        .order_by(col(AlertIncident.opened_at), col(AlertIncident.id))
    )).all())


def _incident_spans(rows: Sequence[AlertIncident], since: float, until: float) -> list[IncidentSpan]:
    out = []
    for inc in rows:
        assert inc.id is not None
        end = inc.resolved_at if inc.resolved_at is not None else until
        start, stop = max(inc.opened_at, since), min(end, until)
        if stop > start:
            out.append(IncidentSpan(inc.id, inc.severity, start, stop, inc.resolved_at is None or end > until,
                                    inc.title))
    return out


async def _maintenance(session: AsyncSession, since: float, until: float) -> list[MaintenanceSpan]:
    end = func.coalesce(col(AlertMaintenance.ended_at), col(AlertMaintenance.ends_at))
    rows = (await session.exec(
        select(AlertMaintenance)
        .where(and_(col(AlertMaintenance.started_at) < until, end > since))
        .order_by(col(AlertMaintenance.started_at), col(AlertMaintenance.id))
    )).all()
    out = []
    for m in rows:
        assert m.id is not None
        stop = m.ended_at if m.ended_at is not None else m.ends_at
        start, clipped = max(m.started_at, since), min(stop, until)
        if clipped > start:
            out.append(MaintenanceSpan(m.id, start, clipped, stop > until, m.reason))
    return out


async def _firing_spans(session: AsyncSession, since: float, until: float,
                        incidents: Sequence[AlertIncident]) -> list[FiringSpan]:
    """Pairs each series' ``fired`` with its next ``resolved``: the events in the range, and the
    earlier ones of incidents still open at ``since`` (a firing that began before the range)."""
    kinds = col(AlertEvent.kind).in_((FIRED, RESOLVED))
    events = list((await session.exec(
        select(AlertEvent).where(and_(kinds, col(AlertEvent.at) >= since, col(AlertEvent.at) < until))
    )).all())
    earlier = sorted(i.id for i in incidents if i.id is not None and i.opened_at < since)
    for chunk in range(0, len(earlier), _IN_CHUNK):
        events += (await session.exec(
            select(AlertEvent).where(and_(kinds, col(AlertEvent.at) < since,
                                          col(AlertEvent.incident_id).in_(earlier[chunk:chunk + _IN_CHUNK])))
        )).all()
    events.sort(key=lambda e: (float(e.at), int(e.id or 0)))
    rows = [(e.kind, e.at, e.rule, e.fingerprint, e.incident_id) for e in events]
    closed_at = {i.id: i.resolved_at for i in incidents}
    inc_severity = {i.id: i.severity for i in incidents}
    open_: dict[str, tuple[float, str, int | None]] = {}
    raw: list[tuple[str, str, int | None, float, float | None]] = []
    for kind, at, rule, fingerprint, incident_id in rows:
        key = fingerprint or f"rule:{rule}"
        if kind == FIRED:
            if key not in open_:  # fired again while firing (flapping): the same firing goes on
                open_[key] = (float(at), rule or "?", incident_id)
        elif key in open_:
            start, rule_name, iid = open_.pop(key)
            raw.append((key, rule_name, iid if iid is not None else incident_id, start, float(at)))
    for key, (start, rule_name, iid) in open_.items():
        # no resolve: it lasts while its incident is open (a closed or merged incident ends it)
        raw.append((key, rule_name, iid, start, closed_at.get(iid) if iid is not None else None))
    fingerprints = sorted({key for key, *_ in raw if not key.startswith("rule:")})
    severity: dict[str, str] = {}
    for chunk in range(0, len(fingerprints), _IN_CHUNK):
        severity.update((await session.exec(
            select(AlertState.fingerprint, AlertState.severity)
            .where(col(AlertState.fingerprint).in_(fingerprints[chunk:chunk + _IN_CHUNK]))
        )).all())
    out = []
    for key, rule_name, iid, start, end in raw:
        stop = min(end, until) if end is not None else until
        begin = max(start, since)
        if stop <= begin:
            continue
        sev = severity.get(key) or (inc_severity.get(iid) if iid is not None else None) or "warning"
        out.append(FiringSpan(rule_name, key, iid, sev, begin, stop, end is None or end > until))
    out.sort(key=lambda f: (f.start, f.rule, f.fingerprint))
    return out


async def _acks(session: AsyncSession, since: float, until: float) -> list[AckMark]:
    rows = (await session.exec(
        select(AlertEvent.at, AlertEvent.incident_id, AlertEvent.actor)
        .where(and_(col(AlertEvent.kind) == ACK, col(AlertEvent.incident_id).is_not(None),
                    col(AlertEvent.at) >= since, col(AlertEvent.at) < until))
        .order_by(col(AlertEvent.at), col(AlertEvent.id))
    )).all()
    return [AckMark(float(at), int(iid), actor) for at, iid, actor in rows if iid is not None]


async def alert_timeline(db: Database, since: float, until: float) -> AlertTimeline:
    """Everything the ``alerts`` picture draws over ``[since, until)``, read in one transaction::

        tl = await alert_timeline(db, now - 6 * 3600, now)
        tl.firings[0].rule, tl.firings[0].severity, tl.firings[0].start   # a bar
        tl.acks        # [AckMark(at, incident_id, actor)]: acknowledgments in the range
        tl.incidents   # [IncidentSpan]: incidents open over part of the range
        tl.maintenance # [MaintenanceSpan]: maintenance windows (ended, or until they run out)
    """

    async def run(session: AsyncSession) -> AlertTimeline:
        incidents = await _overlapping_incidents(session, since, until)
        firings = await _firing_spans(session, since, until, incidents)
        return AlertTimeline(since, until, firings, await _acks(session, since, until),
                             _incident_spans(incidents, since, until), await _maintenance(session, since, until))

    return await db.run(run)


async def incidents_and_maintenance(db: Database, since: float,
                                    until: float) -> tuple[list[IncidentSpan], list[MaintenanceSpan]]:
    """Incidents and maintenance windows overlapping ``[since, until)`` (clipped), for shading
    metric pictures::

        incidents, windows = await incidents_and_maintenance(db, now - 3600, now)
    """

    async def run(session: AsyncSession) -> tuple[list[IncidentSpan], list[MaintenanceSpan]]:
        incidents = await _overlapping_incidents(session, since, until)
        return _incident_spans(incidents, since, until), await _maintenance(session, since, until)

    return await db.run(run)
