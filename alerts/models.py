"""The alert engine's tables. Every timestamp is epoch seconds (float), as elsewhere.

- ``alert_state``: one row per alert series (a rule and one label set, by ``fingerprint``):
  where it is in pending -> firing -> resolved, and the timers that decide the next step
  (``active_since`` for ``for``, ``clear_since`` for ``keep_firing_for``). Survives restarts,
  so a restart resumes every timer where it was.
- ``alert_incident``: what operators see: one Telegram message per incident, edited in place.
  An incident groups the series of one ``group_key`` that fire together, with the series they
  inhibit folded in as consequences. Acknowledgment and escalation live here; escalation
  timers carry ``timer_token`` (bumped whenever the schedule changes: a stale timer does nothing).
- ``alert_event``: the timeline (every state change, press, escalation step, action), for
  Details, /tune's statistics, maintenance summaries and the digest.
- ``alert_silence``, ``alert_maintenance``: operator mutes; each has an end.
- ``alert_tuning``: every threshold change (manual or automatic) with before and after;
  the newest unreverted change of a rule is its effective threshold.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

# alert_state.state
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"  # also: never fired / cleared while pending

# alert_incident.status
OPEN = "open"
ACKNOWLEDGED = "acknowledged"
CLOSED = "resolved"

SEVERITIES = ("info", "warning", "critical")


class AlertState(SQLModel, table=True):
    __tablename__ = "alert_state"
    __table_args__ = (Index("ix_alert_state_state", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(max_length=64, unique=True)
    rule: str = Field(max_length=64, index=True)
    labels_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    severity: str = Field(default="warning", max_length=8)
    state: str = Field(default=RESOLVED, max_length=8)
    active_since: float | None = None   # condition true since (pending started)
    fired_at: float | None = None
    clear_since: float | None = None    # condition false since, while firing (keep_firing_for)
    resolved_at: float | None = None
    last_value: float | None = None
    last_eval_at: float | None = None
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))  # rendered, plain text
    incident_id: int | None = Field(default=None, index=True)
    inhibited_by: str | None = Field(default=None, max_length=64)  # fingerprint of the root cause
    flapping: bool = False
    changes_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # recent change times


class AlertIncident(SQLModel, table=True):
    __tablename__ = "alert_incident"
    __table_args__ = (Index("ix_alert_incident_status", "status"),
                      Index("ix_alert_incident_opened_at", "opened_at"))

    id: int | None = Field(default=None, primary_key=True)
    group_key: str = Field(max_length=64)
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    severity: str = Field(default="warning", max_length=8)
    status: str = Field(default=OPEN, max_length=12)
    flapping: bool = False
    opened_at: float
    resolved_at: float | None = None
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    message_key: str | None = Field(default=None, max_length=128)  # outbox key of the incident message
    revision: int = 0          # edits queued so far (edit keys derive from it)
    announced: bool = False    # the opening message was queued (not muted)
    muted_reason: str | None = Field(default=None, max_length=64)  # silence / maintenance at opening
    acked_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    acked_by_name: str | None = Field(default=None, max_length=128)
    acked_at: float | None = None
    ack_until: float | None = None   # acknowledgment lapses then (a reminder goes out)
    acked_severity: str | None = Field(default=None, max_length=8)  # a higher severity re-arms
    escalation_level: int = 0        # chain steps already taken
    next_escalation_at: float | None = None
    timer_token: int = 0
    repeat_boost: int = 0            # levels added because the rule keeps firing again and again


class AlertEvent(SQLModel, table=True):
    __tablename__ = "alert_event"
    __table_args__ = (Index("ix_alert_event_incident", "incident_id", "at"),
                      Index("ix_alert_event_rule_at", "rule", "at"),
                      Index("ix_alert_event_at", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: float
    kind: str = Field(max_length=24)   # pending, fired, resolved, flapping, folded, ack, ack_lapsed,
    #                                  # rearmed, escalated, silenced, unsilenced, maintenance, action,
    #                                  # tuned, reverted, remediation, notified
    incident_id: int | None = None
    rule: str | None = Field(default=None, max_length=64)
    fingerprint: str | None = Field(default=None, max_length=64)
    value: float | None = None
    actor_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    actor: str | None = Field(default=None, max_length=128)  # a name, "auto" or "system"
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))  # plain text


class AlertSilence(SQLModel, table=True):
    __tablename__ = "alert_silence"
    __table_args__ = (Index("ix_alert_silence_ends_at", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    matchers_json: str = Field(sa_column=Column(Text, nullable=False))  # [{"name","op","value"}]
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_by: str = Field(default="", max_length=128)
    created_by_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: float
    ends_at: float
    ended_at: float | None = None    # set when it expired or was lifted
    ended_by: str | None = Field(default=None, max_length=128)
    reminded: bool = False


class AlertMaintenance(SQLModel, table=True):
    __tablename__ = "alert_maintenance"

    id: int | None = Field(default=None, primary_key=True)
    started_at: float
    ends_at: float
    ended_at: float | None = None
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    started_by: str = Field(default="", max_length=128)
    ended_by: str | None = Field(default=None, max_length=128)
    summary_sent: bool = False


class AlertTuning(SQLModel, table=True):
    __tablename__ = "alert_tuning"
    __table_args__ = (Index("ix_alert_tuning_rule", "rule", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=64)
    at: float
    before: float
    after: float
    by: str = Field(default="", max_length=128)  # a name, or "auto"
    by_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    reverted_at: float | None = None
    reverted_by: str | None = Field(default=None, max_length=128)
