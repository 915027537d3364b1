"""Read-only queries over the pipeline's tables, for the bot and monitoring.

Every function takes an open session as its first argument so callers compose them
inside one transaction or run them through ``Database.run``::

    counts = await db.run(lambda s: counts_by_status(s))          # {"monitoring": 3, ...}
    token = await db.run(lambda s: get_token(s, mint))             # TokenView | None
    checks = await db.run(lambda s: last_checks(s, mint, limit=5)) # newest first

Results are plain frozen dataclasses (no ORM objects escape), timestamps epoch seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from tokens.activation import parse_conditions
from tokens.check_rollup import window_counts
from tokens.models import ACTIVE, LIVE_STATUSES, STATUSES, Check, Token, Transition
from tokens.sql import execute


RATE_WINDOW_S = 300.0  # checks per minute are averaged over this window wherever they are shown


@dataclass(frozen=True)
class TokenView:
    """One token as the bot shows it."""

    id: int
    mint: str
    name: str | None
    symbol: str | None
    source: str
    status: str
    status_since: float
    discovered_at: float
    next_check_at: float | None
    last_check_at: float | None
    last_success_at: float | None
    consecutive_failures: int
    check_count: int
    score: float | None
    score_ewma: float | None
    low_score_since: float | None
    failure_codes: list[str]
    activated_at: float | None
    write_failures: int = 0  # checks in a row that could not be written
    quarantined_at: float | None = None  # quarantined (out of the due queue until next_check_at) since
    quarantine_reason: str | None = None


@dataclass(frozen=True)
class CheckView:
    check_id: str
    mint: str
    at: float
    status_at_check: str
    ok: bool
    passed: bool
    failure_codes: list[str]
    primary_failure: str | None
    conditions: list[dict[str, Any]]
    score: float | None
    pairs_count: int
    duration_ms: float | None
    error: str | None


@dataclass(frozen=True)
class TransitionView:
    mint: str
    from_status: str | None
    to_status: str
    at: float
    reason: str
    time_in_previous_s: float | None


def split_codes(text: str | None) -> list[str]:
    return [c for c in (text or "").split(",") if c]


def token_view(t: Token) -> TokenView:
    return TokenView(
        id=int(t.id or 0), mint=t.mint, name=t.name, symbol=t.symbol, source=t.source, status=t.status,
        status_since=t.status_since, discovered_at=t.discovered_at, next_check_at=t.next_check_at,
        last_check_at=t.last_check_at, last_success_at=t.last_success_at,
        consecutive_failures=t.consecutive_failures, check_count=t.check_count, score=t.score,
        score_ewma=t.score_ewma, low_score_since=t.low_score_since,
        failure_codes=split_codes(t.last_failure_codes), activated_at=t.activated_at,
        write_failures=int(t.write_failures or 0), quarantined_at=t.quarantined_at,
        quarantine_reason=t.quarantine_reason,
    )


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    """Token counts per status; every status is present (0 when none)."""
    rows = (await execute(session, select(col(Token.status), func.count()).group_by(col(Token.status)))).all()
    counts = {status: 0 for status in STATUSES}
    for status, n in rows:
        counts[str(status)] = int(n)
    return counts


@dataclass(frozen=True)
class CheckRates:
    """Checks per minute split by outcome: ``ok`` (pool data fetched and evaluated, whatever
    the verdict) and ``failed`` (the fetch failed). A failed fetch is recorded as a check, so
    the total alone looks busiest exactly when the market is down.

        CheckRates(ok=0.0, failed=235.0).failed_share   # 1.0
    """

    ok: float = 0.0
    failed: float = 0.0
    window_s: float = RATE_WINDOW_S

    @property
    def total(self) -> float:
        return self.ok + self.failed

    @property
    def failed_share(self) -> float | None:
        return self.failed / self.total if self.total > 0 else None


async def check_outcomes_per_minute(session: AsyncSession, now: float, window_s: float = RATE_WINDOW_S) -> CheckRates:
    """Successful and failed checks per minute over ``(now - window_s, now]``, from the per-minute
    counts (``tokens.check_rollup.window_counts``: a few rows whatever the check rate)."""
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s!r}")
    counts = await window_counts(session, now - window_s, now, by=("ok",))
    ok, failed = counts.get((True,), 0.0), counts.get((False,), 0.0)
    minutes = window_s / 60.0
    return CheckRates(ok / minutes, failed / minutes, float(window_s))


async def backlog(session: AsyncSession, now: float) -> int:
    """Live tokens whose check is due (``next_check_at <= now``): the due queue length."""
    stmt = select(func.count()).select_from(Token).where(
        col(Token.next_check_at) <= now, col(Token.status).in_(LIVE_STATUSES))
    return int((await execute(session, stmt)).scalar_one())


async def activations_since(session: AsyncSession, since: float) -> int:
    """Transitions into ``active`` at or after ``since``."""
    stmt = select(func.count()).select_from(Transition).where(
        col(Transition.to_status) == ACTIVE, col(Transition.at) >= since)
    return int((await execute(session, stmt)).scalar_one())


async def get_token(session: AsyncSession, mint: str) -> TokenView | None:
    row = (await execute(session, select(Token).where(col(Token.mint) == mint))).scalars().first()
    return token_view(row) if row is not None else None


async def last_checks(session: AsyncSession, mint: str | None = None, limit: int = 10) -> list[CheckView]:
    """The newest checks, of one token or of all tokens, newest first."""
    stmt = select(Check, col(Token.mint)).join(Token, col(Token.id) == col(Check.token_id))
    if mint is not None:
        stmt = stmt.where(col(Token.mint) == mint)
    stmt = stmt.order_by(col(Check.at).desc(), col(Check.id).desc()).limit(limit)
    out: list[CheckView] = []
    for c, m in (await execute(session, stmt)).all():
        out.append(CheckView(
            check_id=c.check_id, mint=m, at=c.at, status_at_check=c.status_at_check, ok=bool(c.ok),
            passed=bool(c.passed), failure_codes=split_codes(c.failure_codes), primary_failure=c.primary_failure,
            conditions=parse_conditions(c.conditions) or [], score=c.score, pairs_count=c.pairs_count,
            duration_ms=c.duration_ms, error=c.error,
        ))
    return out


async def last_transitions(session: AsyncSession, mint: str | None = None, limit: int = 10) -> list[TransitionView]:
    """The newest status transitions, of one token or of all tokens, newest first."""
    stmt = select(Transition, col(Token.mint)).join(Token, col(Token.id) == col(Transition.token_id))
    if mint is not None:
        stmt = stmt.where(col(Token.mint) == mint)
    stmt = stmt.order_by(col(Transition.at).desc(), col(Transition.id).desc()).limit(limit)
    return [
        TransitionView(mint=m, from_status=t.from_status, to_status=t.to_status, at=t.at, reason=t.reason,
                       time_in_previous_s=t.time_in_previous_s)
        for t, m in (await execute(session, stmt)).all()
    ]


async def tokens_by_status(session: AsyncSession, status: str, limit: int = 20) -> list[TokenView]:
    """Tokens in one status, most recently changed first."""
    stmt = select(Token).where(col(Token.status) == status).order_by(col(Token.status_since).desc()).limit(limit)
    return [token_view(t) for t in (await execute(session, stmt)).scalars().all()]
