"""What the chat front may ask of the alert layer: service protocols and the plain views they return.

``bot/`` routers hold ``ctx.alerts`` (``alerts.parts.Alerts``) and call these methods; they
never touch the alert tables. Every method checks its arguments and answers a one-line
:class:`ActionResult` (plain text; the bot escapes it) instead of raising for bad input::

    result = await ctx.alerts.incidents.acknowledge(12, Actor(user_id=42, name="Ann"))
    await query.answer(result.text)          # "Acknowledged." / "Already acknowledged by Ann 3m ago."

The bot supplies the buttons the engine puts on its messages through :class:`ButtonFactory`
(signed callback data is the bot's business), so nothing here imports ``bot/``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from alerts.rules import Remediation


@dataclass(frozen=True)
class Actor:
    """Who pressed or typed: a Telegram user (``user_id``) or the system (``user_id=None``)."""

    user_id: int | None
    name: str

    @classmethod
    def system(cls, name: str = "auto") -> "Actor":
        return cls(None, name)


@dataclass(frozen=True)
class ActionResult:
    ok: bool          # the request was valid
    changed: bool     # something changed (False for a double tap, a stale button, bad input)
    text: str         # one plain-text line for the operator


@dataclass(frozen=True)
class MemberView:
    """One alert series inside an incident."""

    rule: str
    labels: Mapping[str, str]
    severity: str
    state: str                 # pending | firing | resolved
    summary: str               # plain text, rendered from the rule's template
    value: float | None
    since: float | None        # fired_at (or active_since while pending)
    folded_under: str | None   # the root cause's rule when this one is a consequence (inhibited)
    flapping: bool = False
    threshold: float | None = None
    unit: str = ""             # the rule's unit ("s", "bytes", "ratio", ...), for formatting


@dataclass(frozen=True)
class IncidentView:
    id: int
    title: str
    group: str
    severity: str
    status: str                # open | acknowledged | resolved
    opened_at: float
    resolved_at: float | None
    acked_by: str | None
    acked_at: float | None
    ack_until: float | None
    escalation_level: int
    next_escalation_at: float | None
    flapping: bool
    muted_reason: str | None
    members: Sequence[MemberView] = ()
    remediations: Sequence[Remediation] = ()
    runbook: str = ""


@dataclass(frozen=True)
class TimelineEntry:
    at: float
    kind: str
    actor: str | None
    detail: str
    value: float | None = None


@dataclass(frozen=True)
class SilenceView:
    id: int
    matchers: str              # as typed, normalised: 'rule=api_slow endpoint=tokens'
    reason: str
    created_by: str
    created_at: float
    ends_at: float


@dataclass(frozen=True)
class MaintenanceView:
    id: int
    started_at: float
    ends_at: float
    reason: str
    started_by: str
    fired_meanwhile: int       # alerts recorded (not sent) so far


@dataclass(frozen=True)
class TuneRow:
    """One rule's last 7 days, for /tune."""

    rule: str
    severity: str
    threshold: float           # in force now
    file_threshold: float
    fired: int
    total_firing_s: float
    acked_share: float | None  # None when it never fired
    cleared_unattended_share: float | None
    suggested: float | None    # from the metric's healthy history; None without enough data
    suggestion_basis: str      # e.g. "p99 of 6d 20h of healthy history"
    last_change_id: int | None # the newest unreverted change (Revert button)
    unit: str = ""


@dataclass(frozen=True)
class DigestView:
    since: float
    until: float
    text: str                  # Telegram HTML, dynamic parts already escaped
    chart: bytes | None = None # PNG when pictures are available


class IncidentService(Protocol):
    def open_counts(self) -> dict[str, int]:
        """Open (incl. acknowledged) incidents by severity, from memory (for /status, no query)."""
        ...

    async def open_incidents(self) -> list[IncidentView]: ...
    async def get(self, incident_id: int) -> IncidentView | None: ...
    async def timeline(self, incident_id: int, limit: int = 30) -> list[TimelineEntry]: ...
    async def acknowledge(self, incident_id: int, actor: Actor) -> ActionResult: ...
    async def escalate(self, incident_id: int, actor: Actor) -> ActionResult: ...
    async def silence_incident(self, incident_id: int, duration_s: float, actor: Actor) -> ActionResult: ...
    async def remediate(self, incident_id: int, index: int, actor: Actor) -> ActionResult: ...


class QuietService(Protocol):
    """Maintenance windows and silences."""

    def current_maintenance(self, now: float) -> MaintenanceView | None:
        """The maintenance window on at ``now``, from memory (for /status, no query)."""
        ...

    async def maintenance(self) -> MaintenanceView | None: ...
    async def maintenance_on(self, duration_s: float, reason: str, actor: Actor) -> ActionResult: ...
    async def maintenance_off(self, actor: Actor) -> ActionResult: ...
    async def silences(self) -> list[SilenceView]: ...
    async def silence(self, matchers: str, duration_s: float, reason: str, actor: Actor) -> ActionResult: ...
    async def unsilence(self, silence_id: int, actor: Actor) -> ActionResult: ...


class TuningService(Protocol):
    async def report(self) -> list[TuneRow]: ...
    async def apply(self, rule: str, actor: Actor) -> ActionResult: ...
    async def revert(self, change_id: int, actor: Actor) -> ActionResult: ...


class DigestService(Protocol):
    async def build(self, *, hours: float = 24.0) -> DigestView: ...
    async def send_now(self, chat_id: int, key: str) -> ActionResult: ...


class ButtonFactory(Protocol):
    """Inline keyboards for the engine's messages, as JSON-able ``reply_markup`` dicts.
    The bot implements it with signed callback data; :data:`NO_BUTTONS` gives none."""

    def incident(self, incident_id: int, *, remediations: Sequence[Remediation], resolved: bool) -> dict[str, Any] | None: ...
    def silence(self, silence_id: int) -> dict[str, Any] | None: ...
    def tuning(self, change_id: int) -> dict[str, Any] | None: ...


class _NoButtons:
    def incident(self, incident_id: int, *, remediations: Sequence[Remediation], resolved: bool) -> dict[str, Any] | None:
        return None

    def silence(self, silence_id: int) -> dict[str, Any] | None:
        return None

    def tuning(self, change_id: int) -> dict[str, Any] | None:
        return None


NO_BUTTONS: ButtonFactory = _NoButtons()
