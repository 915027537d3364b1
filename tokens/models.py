"""Tables of the token pipeline. All timestamps are epoch seconds.

- ``Token``: one tracked mint, its status, and when it is next due (NULL once archived). A token
  whose check results could not be written ``QUARANTINE_AFTER_WRITE_FAILURES`` times in a row is
  quarantined (``quarantined_at``/``quarantine_reason``; see ``tokens.repository``).
- ``Transition``: every status change, with its reason and the time spent in the previous status.
- ``Check``: every activation check, with each condition's result as JSON.
- ``PoolDiscrepancy``: batch vs per-token pool data that disagreed.
- ``CheckMinute``: checks counted per minute by status, outcome and reason, written with each batch
  of checks (``tokens.check_rollup``): what monitoring reads instead of scanning ``checks``.
"""
from __future__ import annotations

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel

MONITORING = "monitoring"
ACTIVE = "active"
ARCHIVED = "archived"
STATUSES = (MONITORING, ACTIVE, ARCHIVED)
LIVE_STATUSES = (MONITORING, ACTIVE)


class Token(SQLModel, table=True):
    __tablename__ = "tokens"
    __table_args__ = (
        Index("ix_tokens_next_check_at", "next_check_at"),
        Index("ix_tokens_status_since", "status", "status_since"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mint: str = Field(max_length=64, unique=True, index=True)
    name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    symbol: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    source: str = Field(default="pumpportal", max_length=32)
    status: str = Field(default=MONITORING, max_length=16)
    status_since: float
    discovered_at: float
    next_check_at: float | None = None
    last_check_at: float | None = None
    last_success_at: float | None = None
    consecutive_failures: int = 0
    check_count: int = 0
    score: float | None = None
    score_ewma: float | None = None
    low_score_since: float | None = None
    last_failure_codes: str | None = Field(default=None, max_length=256)
    activated_at: float | None = None
    write_failures: int = 0  # check results of this token that could not be written, in a row
    quarantined_at: float | None = None  # set while quarantined: out of the due queue until next_check_at
    quarantine_reason: str | None = Field(default=None, max_length=256)


class Transition(SQLModel, table=True):
    __tablename__ = "transitions"
    __table_args__ = (
        Index("ix_transitions_token_at", "token_id", "at"),
        Index("ix_transitions_at", "at"),
        Index("ix_transitions_to_at", "to_status", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="tokens.id")
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    at: float
    reason: str = Field(max_length=64)
    time_in_previous_s: float | None = None


class Check(SQLModel, table=True):
    __tablename__ = "checks"
    __table_args__ = (
        Index("ix_checks_token_at", "token_id", "at"),
        Index("ix_checks_at", "at"),
        # failed fetches only (a few % of the rows): the newest errors without walking the ok checks
        Index("ix_checks_failed_at", "at", sqlite_where=text("NOT ok"), postgresql_where=text("NOT ok")),
    )

    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=32)
    token_id: int = Field(foreign_key="tokens.id")
    at: float
    status_at_check: str = Field(max_length=16)
    ok: bool = True  # pool data was fetched and evaluated
    passed: bool = False  # every activation condition passed
    failure_codes: str | None = Field(default=None, max_length=256)
    primary_failure: str | None = Field(default=None, max_length=48)
    conditions: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON list
    score: float | None = None
    pairs_count: int = 0
    duration_ms: float | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class PoolDiscrepancy(SQLModel, table=True):
    __tablename__ = "pool_discrepancies"
    __table_args__ = (Index("ix_pool_discrepancies_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="tokens.id")
    at: float
    kind: str = Field(max_length=32)  # missing_pool | liquidity_mismatch | extra_pool
    pair_address: str | None = Field(default=None, max_length=128)
    batch_value: float | None = None
    single_value: float | None = None


class CheckMinute(SQLModel, table=True):
    """Checks of one minute (``minute``: its start, epoch seconds, a multiple of 60) with the same
    status at check, outcome and reason (``primary_failure``, ``""`` when none); the minute is
    ``(minute, minute + 60]``. The key is the
    primary key: ``tokens.check_rollup.add_checks_to_rollup`` adds a batch's counts in one upsert."""

    __tablename__ = "check_minutes"

    minute: float = Field(primary_key=True)
    status_at_check: str = Field(primary_key=True, max_length=16)
    ok: bool = Field(primary_key=True)
    passed: bool = Field(primary_key=True)
    reason: str = Field(default="", primary_key=True, max_length=48)
    shard: int = Field(default=0, primary_key=True, sa_column_kwargs={"server_default": "0"})  # concurrent writers add to different rows (no lock wait)
    checks: int = 0
    first_at: float = 0.0  # the minute's first and last check of this key (a window's edge minute is
    last_at: float = 0.0   # counted for the share of this span inside the window)
