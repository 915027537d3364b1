"""Tables of the token pipeline. All timestamps are epoch seconds.

- ``Token``: one tracked mint, its status, and when it is next due (NULL once archived). A token
  whose check results could not be written ``QUARANTINE_AFTER_WRITE_FAILURES`` times in a row is
  quarantined (``quarantined_at``/``quarantine_reason``; see ``tokens.repository``).
- ``Transition``: every status change, with its reason and the time spent in the previous status.
- ``Check``: every activation check, with each condition's result as JSON.
- ``PoolDiscrepancy``: batch vs per-token pool data that disagreed.
"""
from __future__ import annotations

from sqlalchemy import Column, Index, Text
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
