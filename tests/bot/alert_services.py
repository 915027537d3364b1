"""Small in-memory implementations of the ``alerts.api`` service protocols, for the chat front's tests
until the real services (``alerts/engine.py``, ``quiet.py``, ``tuning.py``, ``digest.py``) are merged.

They keep honest state (an acknowledged incident stays acknowledged, an unsilenced silence is
gone), answer a repeated or stale action with ``changed=False`` like the contract says, and record
every call in ``calls`` so a test can tell that a refused press reached nothing::

    services = AlertServices.make(clock, [incident(1, "Market API down", "critical")])
    ctx.alerts = services.alerts
    services.calls          # [("acknowledge", 1, "@ann"), ...]
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.api import (
    ActionResult,
    Actor,
    DigestView,
    IncidentView,
    MaintenanceView,
    MemberView,
    SilenceView,
    TimelineEntry,
    TuneRow,
)
from alerts.parts import Alerts
from alerts.rules import Remediation, RuleSet, parse_rules
from app.clock import Clock


def scenario_rules() -> RuleSet:
    """Two rules (the shipped file is being written in parallel): api_slow, with a remediation, and
    pipeline_stalled."""
    return parse_rules({"rule": [
        {"name": "api_slow", "metric": "tokenwatch_api_latency_p95_seconds", "aggregation": "avg",
         "window": "2m", "op": ">", "threshold": 2.0, "for": "1m", "severity": "warning",
         "summary": "API {endpoint} p95 {value} over {threshold}", "unit": "s",
         "remediation": [{"label": "Restart client", "action": "market.restart_client"}]},
        {"name": "pipeline_stalled", "metric": "tokenwatch_pipeline_stalled", "op": ">=", "threshold": 1,
         "severity": "critical", "summary": "Token processing stopped"},
    ]})


def incident(incident_id: int, title: str, severity: str = "warning", *, opened_at: float = 0.0,
             status: str = "open", members: Sequence[MemberView] = (), remediations: Sequence[Remediation] = (),
             runbook: str = "") -> IncidentView:
    return IncidentView(id=incident_id, title=title, group="market", severity=severity, status=status,
                        opened_at=opened_at, resolved_at=None, acked_by=None, acked_at=None, ack_until=None,
                        escalation_level=0, next_escalation_at=opened_at + 600, flapping=False, muted_reason=None,
                        members=tuple(members), remediations=tuple(remediations), runbook=runbook)


def member(rule: str, summary: str, *, labels: dict[str, str] | None = None, severity: str = "warning",
           value: float | None = 1.0, since: float | None = None, folded_under: str | None = None) -> MemberView:
    return MemberView(rule=rule, labels=labels or {}, severity=severity, state="firing", summary=summary,
                      value=value, since=since, folded_under=folded_under)


def _no_such(kind: str, ident: int) -> ActionResult:
    return ActionResult(False, False, f"No {kind} #{ident}.")


@dataclass
class Calls:
    items: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, *call: Any) -> None:
        self.items.append(call)


class InMemoryIncidents:
    def __init__(self, clock: Clock, calls: Calls, views: Sequence[IncidentView]) -> None:
        self.clock, self.calls = clock, calls
        self.views = {v.id: v for v in views}
        self.timelines: dict[int, list[TimelineEntry]] = {
            v.id: [TimelineEntry(v.opened_at, "fired", None, v.title, 1.0)] for v in views}
        self.remediated: set[tuple[int, int]] = set()

    def _record(self, incident_id: int, kind: str, actor: Actor, detail: str = "") -> None:
        self.timelines[incident_id].append(TimelineEntry(self.clock.time(), kind, actor.name, detail))

    def _live(self, incident_id: int) -> IncidentView | ActionResult:
        view = self.views.get(incident_id)
        if view is None:
            return _no_such("incident", incident_id)
        if view.status == "resolved":
            return ActionResult(True, False, f"Incident #{incident_id} is resolved; nothing to do.")
        return view

    def open_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in self.views.values():
            if v.status != "resolved":
                counts[v.severity] = counts.get(v.severity, 0) + 1
        return counts

    async def open_incidents(self) -> list[IncidentView]:
        return [v for v in self.views.values() if v.status != "resolved"]

    async def get(self, incident_id: int) -> IncidentView | None:
        return self.views.get(incident_id)

    async def timeline(self, incident_id: int, limit: int = 30) -> list[TimelineEntry]:
        return self.timelines.get(incident_id, [])[-limit:]

    async def acknowledge(self, incident_id: int, actor: Actor) -> ActionResult:
        self.calls.add("acknowledge", incident_id, actor.name)
        view = self._live(incident_id)
        if isinstance(view, ActionResult):
            return view
        if view.acked_by is not None:
            return ActionResult(True, False, f"Already acknowledged by {view.acked_by}.")
        now = self.clock.time()
        self.views[incident_id] = replace(view, status="acknowledged", acked_by=actor.name, acked_at=now,
                                          next_escalation_at=None)
        self._record(incident_id, "acknowledged", actor)
        return ActionResult(True, True, "Acknowledged.")

    async def escalate(self, incident_id: int, actor: Actor) -> ActionResult:
        self.calls.add("escalate", incident_id, actor.name)
        view = self._live(incident_id)
        if isinstance(view, ActionResult):
            return view
        level = view.escalation_level + 1
        self.views[incident_id] = replace(view, escalation_level=level)
        self._record(incident_id, "escalated", actor, f"level {level}")
        return ActionResult(True, True, f"Escalated to level {level}.")

    async def silence_incident(self, incident_id: int, duration_s: float, actor: Actor) -> ActionResult:
        self.calls.add("silence_incident", incident_id, duration_s, actor.name)
        view = self._live(incident_id)
        if isinstance(view, ActionResult):
            return view
        if view.muted_reason is not None:
            return ActionResult(True, False, f"Already muted: {view.muted_reason}.")
        self.views[incident_id] = replace(view, muted_reason=f"silenced by {actor.name}")
        self._record(incident_id, "silenced", actor, f"for {duration_s:.0f}s")
        return ActionResult(True, True, "Silenced for 1h.")

    async def remediate(self, incident_id: int, index: int, actor: Actor) -> ActionResult:
        self.calls.add("remediate", incident_id, index, actor.name)
        view = self._live(incident_id)
        if isinstance(view, ActionResult):
            return view
        if not 0 <= index < len(view.remediations):
            return ActionResult(False, False, "No such remediation.")
        if (incident_id, index) in self.remediated:
            return ActionResult(True, False, f"{view.remediations[index].label} already ran.")
        self.remediated.add((incident_id, index))
        self._record(incident_id, "remediated", actor, view.remediations[index].action)
        return ActionResult(True, True, f"Ran {view.remediations[index].label}.")

    def resolve(self, incident_id: int) -> None:
        view = self.views[incident_id]
        self.views[incident_id] = replace(view, status="resolved", resolved_at=self.clock.time())


class InMemoryQuiet:
    def __init__(self, clock: Clock, calls: Calls) -> None:
        self.clock, self.calls = clock, calls
        self.window: MaintenanceView | None = None
        self.active: dict[int, SilenceView] = {}
        self._ids = 0

    def _next(self) -> int:
        self._ids += 1
        return self._ids

    def current_maintenance(self, now: float) -> MaintenanceView | None:
        return self.window if self.window is not None and self.window.ends_at > now else None

    async def maintenance(self) -> MaintenanceView | None:
        return self.current_maintenance(self.clock.time())

    async def maintenance_on(self, duration_s: float, reason: str, actor: Actor) -> ActionResult:
        self.calls.add("maintenance_on", duration_s, reason, actor.name)
        now = self.clock.time()
        if self.current_maintenance(now) is not None:
            return ActionResult(True, False, "Maintenance is already on.")
        self.window = MaintenanceView(self._next(), now, now + duration_s, reason, actor.name, 0)
        return ActionResult(True, True, "Maintenance on.")

    async def maintenance_off(self, actor: Actor) -> ActionResult:
        self.calls.add("maintenance_off", actor.name)
        if self.current_maintenance(self.clock.time()) is None:
            return ActionResult(True, False, "Maintenance is not on.")
        self.window = None
        return ActionResult(True, True, "Maintenance off.")

    async def silences(self) -> list[SilenceView]:
        now = self.clock.time()
        return [s for s in self.active.values() if s.ends_at > now]

    async def silence(self, matchers: str, duration_s: float, reason: str, actor: Actor) -> ActionResult:
        self.calls.add("silence", matchers, duration_s, reason, actor.name)
        now = self.clock.time()
        sid = self._next()
        self.active[sid] = SilenceView(sid, matchers, reason, actor.name, now, now + duration_s)
        return ActionResult(True, True, f"Silence #{sid} set.")

    async def unsilence(self, silence_id: int, actor: Actor) -> ActionResult:
        self.calls.add("unsilence", silence_id, actor.name)
        if silence_id not in self.active:
            return ActionResult(True, False, f"Silence #{silence_id} is already over.")
        del self.active[silence_id]
        return ActionResult(True, True, f"Silence #{silence_id} removed.")


class InMemoryTuning:
    def __init__(self, calls: Calls, rows: Sequence[TuneRow]) -> None:
        self.calls = calls
        self.rows = {r.rule: r for r in rows}
        self.changes: dict[int, tuple[str, float, bool]] = {}  # id -> (rule, before, reverted)

    async def report(self) -> list[TuneRow]:
        return list(self.rows.values())

    async def apply(self, rule: str, actor: Actor) -> ActionResult:
        self.calls.add("apply", rule, actor.name)
        row = self.rows.get(rule)
        if row is None or row.suggested is None or row.suggested == row.threshold:
            return ActionResult(True, False, "Nothing to apply.")
        change_id = len(self.changes) + 1
        self.changes[change_id] = (rule, row.threshold, False)
        self.rows[rule] = replace(row, threshold=row.suggested, last_change_id=change_id)
        return ActionResult(True, True, f"{rule}: threshold set to {row.suggested:g}.")

    async def revert(self, change_id: int, actor: Actor) -> ActionResult:
        self.calls.add("revert", change_id, actor.name)
        change = self.changes.get(change_id)
        if change is None:
            return _no_such("change", change_id)
        rule, before, reverted = change
        if reverted:
            return ActionResult(True, False, f"Change #{change_id} is already reverted.")
        self.changes[change_id] = (rule, before, True)
        self.rows[rule] = replace(self.rows[rule], threshold=before, last_change_id=None)
        return ActionResult(True, True, f"{rule}: threshold back to {before:g}.")


class InMemoryDigest:
    def __init__(self, calls: Calls, view: DigestView) -> None:
        self.calls, self.view = calls, view

    async def build(self, *, hours: float = 24.0) -> DigestView:
        self.calls.add("build", hours)
        return self.view

    async def send_now(self, chat_id: int, key: str) -> ActionResult:
        self.calls.add("send_now", chat_id, key)
        return ActionResult(False, False, "Not used by the chat front.")


@dataclass
class AlertServices:
    alerts: Alerts
    incidents: InMemoryIncidents
    quiet: InMemoryQuiet
    tuning: InMemoryTuning
    digest: InMemoryDigest
    calls: list[tuple[Any, ...]]

    @classmethod
    def make(cls, clock: Clock, views: Sequence[IncidentView] = (), rows: Sequence[TuneRow] = (),
             digest: DigestView | None = None) -> "AlertServices":
        calls = Calls()
        incidents = InMemoryIncidents(clock, calls, views)
        quiet = InMemoryQuiet(clock, calls)
        tuning = InMemoryTuning(calls, rows)
        now = clock.time()
        digest_svc = InMemoryDigest(calls, digest or DigestView(now - 86400, now, "📰 <b>Digest</b>\nno alerts"))
        alerts = Alerts(rules=scenario_rules(), incidents=incidents, quiet=quiet, tuning=tuning,
                        digest=digest_svc)
        return cls(alerts, incidents, quiet, tuning, digest_svc, calls.items)

    def state(self) -> tuple[Any, ...]:
        """Everything the services hold, to compare before and after a refused action."""
        return (dict(self.incidents.views), {k: list(v) for k, v in self.incidents.timelines.items()},
                self.quiet.window, dict(self.quiet.active), dict(self.tuning.rows), dict(self.tuning.changes))


def tune_row(rule: str, threshold: float, suggested: float | None, **kw: Any) -> TuneRow:
    fields = dict(rule=rule, severity="warning", threshold=threshold, file_threshold=threshold, fired=12,
                  total_firing_s=5400.0, acked_share=0.25, cleared_unattended_share=0.5, suggested=suggested,
                  suggestion_basis="p99 of 6d 20h of healthy history", last_change_id=None, unit="s")
    fields.update(kw)
    return TuneRow(**fields)  # type: ignore[arg-type]


__all__ = ["AlertServices", "incident", "member", "tune_row"]
