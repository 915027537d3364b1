"""What the alert engine did over a range, as plain picklable data for the pictures: the
``alerts`` preset's timeline (firings per rule, acknowledgments, maintenance windows) and the
incident / maintenance shading of every metric picture. Reads go through ``alerts.history``::

    timeline = await fetch_timeline(db, since, until)      # None when nothing fired in the range
    timeline.rows                       # ['market_api_down', 'api_slow', ...] (most severe first)
    timeline.bars[0].row, .severity, .start, .end, .ongoing
    timeline.acks[0].rows               # the rows of the acknowledged incident's rules

    spans, summary = await fetch_shading(db, since, until)  # Span(kind="incident"|"maintenance")
    summary.incidents, summary.by_severity, summary.maintenance_s
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from alerts.history import (
    AlertTimeline,
    IncidentSpan,
    MaintenanceSpan,
    alert_timeline,
    incidents_and_maintenance,
    merge_intervals,
)
from alerts.models import SEVERITIES
from app.db import Database
from charts.spans import INCIDENT, MAINTENANCE, Span

#: At most this many rules get a row; the rest are counted in ``TimelineData.hidden_rules``.
MAX_ROWS = 14
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass
class TimelineBar:
    row: int
    severity: str
    start: float
    end: float
    ongoing: bool


@dataclass
class TimelineAck:
    at: float
    rows: list[int]
    actor: str | None


@dataclass
class RuleFigure:
    """One rule's share of the range, for the caption."""

    rule: str
    severity: str
    firings: int
    firing_s: float


@dataclass
class TimelineData:
    rows: list[str]
    bars: list[TimelineBar] = field(default_factory=list)
    acks: list[TimelineAck] = field(default_factory=list)
    maintenance: list[Span] = field(default_factory=list)
    rules: list[RuleFigure] = field(default_factory=list)   # every rule that fired, most severe first
    incidents: int = 0
    incidents_by_severity: dict[str, int] = field(default_factory=dict)
    ongoing_incidents: int = 0
    acknowledged_incidents: int = 0
    hidden_rules: int = 0


@dataclass
class ShadingSummary:
    """What the incident and maintenance shading of a metric picture stands for (the caption)."""

    incidents: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    ongoing: int = 0
    maintenance_windows: int = 0
    maintenance_s: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.incidents or self.maintenance_windows)


def severity_rank(severity: str) -> int:
    return _RANK.get(severity, _RANK["warning"])


def _by_severity(incidents: list[IncidentSpan]) -> dict[str, int]:
    counts = Counter(i.severity for i in incidents)
    return dict(sorted(counts.items(), key=lambda kv: -severity_rank(kv[0])))


def _maintenance_spans(windows: list[MaintenanceSpan], since: float, until: float) -> list[Span]:
    return [Span(a, b, "maintenance", kind=MAINTENANCE)
            for a, b in merge_intervals(((w.start, w.end) for w in windows), since, until)]


def timeline_data(tl: AlertTimeline) -> TimelineData | None:
    """The picture's rows and bars from ``alerts.history.alert_timeline``; None without firings."""
    if not tl.firings:
        return None
    per_rule: dict[str, RuleFigure] = {}
    for f in tl.firings:
        fig = per_rule.setdefault(f.rule, RuleFigure(f.rule, f.severity, 0, 0.0))
        fig.firings += 1
        if severity_rank(f.severity) > severity_rank(fig.severity):
            fig.severity = f.severity
    for rule in per_rule:  # time firing: overlapping series of one rule count once
        per_rule[rule].firing_s = sum(b - a for a, b in merge_intervals(
            ((f.start, f.end) for f in tl.firings if f.rule == rule), tl.since, tl.until))
    ranked = sorted(per_rule.values(), key=lambda r: (-severity_rank(r.severity), -r.firing_s, r.rule))
    rows = [r.rule for r in ranked[:MAX_ROWS]]
    index = {rule: i for i, rule in enumerate(rows)}
    bars: list[TimelineBar] = []
    for rule in rows:  # one bar per stretch of time; the most severe series of that stretch colours it
        mine = [f for f in tl.firings if f.rule == rule]
        for sev in sorted({f.severity for f in mine}, key=severity_rank):
            for a, b in merge_intervals(((f.start, f.end) for f in mine if f.severity == sev), tl.since, tl.until):
                ongoing = any(f.ongoing and f.end == b for f in mine if f.severity == sev)
                bars.append(TimelineBar(index[rule], sev, a, b, ongoing))
    acks = []
    for ack in tl.acks:  # on the incident's rows firing at that moment (else on all its rows)
        mine = [f for f in tl.firings if f.incident_id == ack.incident_id and f.rule in index]
        firing = {index[f.rule] for f in mine if f.start <= ack.at <= f.end}
        acks.append(TimelineAck(ack.at, sorted(firing or {index[f.rule] for f in mine}), ack.actor))
    acked = {a.incident_id for a in tl.acks}
    return TimelineData(
        rows=rows, bars=bars, acks=acks, maintenance=_maintenance_spans(tl.maintenance, tl.since, tl.until),
        rules=ranked, incidents=len(tl.incidents), incidents_by_severity=_by_severity(tl.incidents),
        ongoing_incidents=sum(1 for i in tl.incidents if i.ongoing),
        acknowledged_incidents=sum(1 for i in tl.incidents if i.incident_id in acked),
        hidden_rules=max(0, len(ranked) - MAX_ROWS))


async def fetch_timeline(db: Database, since: float, until: float) -> tuple[TimelineData | None, int]:
    """The timeline over ``[since, until)``, or None when no alert fired in it; and the number of
    maintenance windows in the range (for the "no incidents" answer)."""
    tl = await alert_timeline(db, since, until)
    return timeline_data(tl), len(tl.maintenance)


async def fetch_shading(db: Database, since: float, until: float) -> tuple[list[Span], ShadingSummary]:
    """Incident spans (merged per severity) and maintenance windows to shade on every panel."""
    incidents, windows = await incidents_and_maintenance(db, since, until)
    spans: list[Span] = []
    for sev in sorted({i.severity for i in incidents}, key=severity_rank):
        spans += [Span(a, b, f"incident ({sev})", kind=INCIDENT, severity=sev)
                  for a, b in merge_intervals(((i.start, i.end) for i in incidents if i.severity == sev),
                                              since, until)]
    maintenance = _maintenance_spans(windows, since, until)
    spans += maintenance
    summary = ShadingSummary(len(incidents), _by_severity(incidents), sum(1 for i in incidents if i.ongoing),
                             len(windows), sum(s.end - s.start for s in maintenance))
    return spans, summary
