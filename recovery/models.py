"""The recovery layer's tables. Every timestamp is epoch seconds (float), as elsewhere.

- ``recovery_action``: the action ledger: every :class:`recovery.knobs.Action` (an adjustment of
  a knob, or an act without one such as a cleanup), with what triggered it, the value before and
  after, who (an operator's change) and, once known, its outcome (``held 5m 00s``, ``reverted by
  @ann``, a controller's own report). ``announced`` marks the ones that went to the chat.
- ``knob_pin``: the operator pins in force (``/tune fetch_concurrency 8``), one row per knob,
  re-applied at start (``KnobRegistry.restore_pin``) so a manual change survives a restart.
"""
from __future__ import annotations

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel


class RecoveryAction(SQLModel, table=True):
    __tablename__ = "recovery_action"
    __table_args__ = (Index("ix_recovery_action_at", "at"),
                      Index("ix_recovery_action_knob_at", "knob", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: float
    controller: str = Field(max_length=32)          # rto, aimd, breaker, memory, watchdog, db_pool, operator
    knob: str | None = Field(default=None, max_length=64)
    unit: str = Field(default="", max_length=16)    # the knob's unit (app.units.fmt_unit), for the texts
    before: float | None = None
    after: float | None = None
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))   # the measurement that triggered it
    actor: str | None = Field(default=None, max_length=128)                    # an operator's name
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    outcome: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome_at: float | None = None
    reverted_at: float | None = None
    reverted_by: str | None = Field(default=None, max_length=128)
    revert_of: int | None = None                    # this action undid that one (a Revert press)
    announced: bool = False


class KnobPin(SQLModel, table=True):
    __tablename__ = "knob_pin"

    knob: str = Field(primary_key=True, max_length=64)
    value: float
    actor: str | None = Field(default=None, max_length=128)
    at: float
