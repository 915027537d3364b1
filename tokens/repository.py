"""Writes and queue reads of the pipeline (the processor's side of the database).

Every function takes an open session; callers wrap them in ``Database.run`` so a batch
is one transaction and transient faults are retried::

    token_id = await db.run(lambda s: insert_token(s, mint, now=now))   # None: already known
    due = await db.run(lambda s: claim_due(s, now, limit=30, lease_s=120))
    quarantined = await db.run(lambda s: record_write_failure(s, token_id, "UnicodeEncodeError: ...", now))

Idempotence: ``insert_token`` is ``INSERT .. ON CONFLICT (mint) DO NOTHING`` on both SQLite
and PostgreSQL, so racing discoverers and restarts never duplicate a token. Claiming leases
due tokens (``next_check_at = now + lease``) so concurrent workers never check one token
twice, and a crash mid-check only delays the token until the lease ends: it is never lost.

Quarantine: a check whose write fails for a non-transient reason (a value no database takes)
is recorded with ``record_write_failure``: the token's lease is released (it is retried after
``WRITE_RETRY_S``) and, after ``QUARANTINE_AFTER_WRITE_FAILURES`` such failures in a row, it is
*quarantined*: its status stays, ``quarantined_at`` and ``quarantine_reason`` say when and why,
and it leaves the due queue for ``QUARANTINE_S``. The way out is automatic: when the quarantine
ends the token is checked again, and the next check that is written lifts the quarantine
(``apply_checks`` clears it); one that fails again quarantines it again at once.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, delete, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.tables import table_of
from tokens.check_rollup import add_checks_to_rollup, delete_old_rollup
from tokens.lifecycle import DISCOVERED, LOW_SCORE_TIMEOUT, MONITORING_TIMEOUT
from tokens.models import ACTIVE, ARCHIVED, LIVE_STATUSES, MONITORING, Check, PoolDiscrepancy, Token, Transition
from tokens.sql import dialect_name, execute

QUARANTINE_AFTER_WRITE_FAILURES = 3  # failed writes in a row that quarantine a token
QUARANTINE_S = 1800.0  # how long a quarantined token stays out of the due queue before it is retried
WRITE_RETRY_S = 10.0  # a token whose check could not be written is retried this soon (not at lease end)
QUARANTINE_REASON_CHARS = 256

TOKENS = table_of(Token)
CHECKS = table_of(Check)
TRANSITIONS = table_of(Transition)
DISCREPANCIES = table_of(PoolDiscrepancy)


@dataclass(frozen=True)
class DueToken:
    """A claimed token, as the processor needs it."""

    id: int
    mint: str
    status: str
    status_since: float
    score_ewma: float | None
    low_score_since: float | None
    consecutive_failures: int
    has_name: bool
    next_check_at: float | None = None  # when it was due (before the lease): ``release_claims`` puts it back


@dataclass
class CheckOutcome:
    """Everything one check writes: the check row, the token's new state, maybe a transition."""

    token_id: int
    expected_status: str  # the status the check started from (guards against a concurrent change)
    check: dict  # column values of the Check row (without token_id)
    token_values: dict  # columns of Token to update
    transition: tuple[str, str, str, float | None] | None = None  # (from, to, reason, time_in_previous_s)
    discrepancies: Sequence[tuple[str, str]] = ()  # (kind, pair_address)
    mint: str = ""  # for log lines only
    written: bool = False  # set by apply_checks: False when the token changed meanwhile (or the write failed)
    write_error: str | None = None  # set by the processor when this check could not be written


def _dialect(session: AsyncSession) -> str:
    return dialect_name(session)


async def insert_token(session: AsyncSession, mint: str, *, now: float, name: str | None = None,
                       symbol: str | None = None, source: str = "pumpportal") -> int | None:
    """Insert a new ``monitoring`` token plus its ``discovered`` transition; ``None`` if known."""
    ins = pg_insert if _dialect(session) == "postgresql" else sqlite_insert
    stmt = (
        ins(TOKENS)
        .values(mint=mint, name=name, symbol=symbol, source=source[:32], status=MONITORING, status_since=now,
                discovered_at=now, next_check_at=now, consecutive_failures=0, check_count=0)
        .on_conflict_do_nothing(index_elements=["mint"])
        .returning(TOKENS.c.id)
    )
    token_id = (await execute(session, stmt)).scalar_one_or_none()
    if token_id is None:
        return None
    await execute(session, insert(TRANSITIONS).values(
        token_id=token_id, from_status=None, to_status=MONITORING, at=now, reason=DISCOVERED, time_in_previous_s=None))
    return int(token_id)


async def due_count(session: AsyncSession, now: float) -> int:
    stmt = select(func.count()).select_from(TOKENS).where(TOKENS.c.next_check_at <= now)
    return int((await execute(session, stmt)).scalar_one())


@dataclass(frozen=True)
class ClaimPriority:
    """How a backlog is ordered: a hot token (active, fresh in monitoring, or scoring over
    ``hot_score_threshold``) ranks ``hot_boost_s`` earlier than its due time, and every point of
    smoothed score ``score_weight_s`` earlier. So hot and high-score tokens go first, and a cold
    token waits at most ``hot_boost_s + 100 x score_weight_s`` longer than it would have: its
    checks stretch, it never starves.

        claim_due(s, now, 30, 120.0, priority=ClaimPriority(hot_boost_s=45.0))
    """

    hot_boost_s: float
    score_weight_s: float = 0.1
    hot_score_threshold: float = 50.0
    fresh_hot_s: float = 120.0


def _rank(now: float, p: ClaimPriority) -> ColumnElement[float]:
    c = TOKENS.c
    hot = or_(c.status == ACTIVE, c.score_ewma > p.hot_score_threshold,
              and_(c.status == MONITORING, c.status_since > now - p.fresh_hot_s))
    return (c.next_check_at - case((hot, literal(p.hot_boost_s)), else_=literal(0.0))
            - func.coalesce(c.score_ewma, 0.0) * literal(p.score_weight_s))


async def claim_due(session: AsyncSession, now: float, limit: int, lease_s: float,
                    exclude_ids: Collection[int] = (), priority: ClaimPriority | None = None) -> list[DueToken]:
    """Take up to ``limit`` due tokens and lease them for ``lease_s``: oldest due first, or with
    ``priority`` (a backlog) hot and high-score tokens first (``ClaimPriority``). One query either way."""
    c = TOKENS.c
    order = [c.next_check_at] if priority is None else [_rank(now, priority), c.next_check_at]
    stmt = (
        select(c.id, c.mint, c.status, c.status_since, c.score_ewma, c.low_score_since,
               c.consecutive_failures, c.name, c.next_check_at)
        .where(c.next_check_at <= now)
        .order_by(*order)
        .limit(limit)
    )
    if exclude_ids:
        stmt = stmt.where(c.id.not_in(list(exclude_ids)))
    if _dialect(session) == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = (await execute(session, stmt)).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    await execute(session, update(TOKENS).where(c.id.in_(ids)).values(next_check_at=now + lease_s))
    return [
        DueToken(id=r.id, mint=r.mint, status=r.status, status_since=r.status_since, score_ewma=r.score_ewma,
                 low_score_since=r.low_score_since, consecutive_failures=r.consecutive_failures or 0,
                 has_name=r.name is not None, next_check_at=r.next_check_at)
        for r in rows
    ]


async def release_claims(session: AsyncSession, tokens: Sequence[DueToken]) -> int:
    """Give claimed tokens back unchecked, due when they were due (nothing fetched: no check, no
    failure counted; e.g. the market's circuit breaker refused the request). Returns rows released."""
    c = TOKENS.c
    released = 0
    for tok in tokens:
        if tok.next_check_at is None:
            continue
        result = await execute(session, update(TOKENS).where(and_(c.id == tok.id, c.status == tok.status))
                               .values(next_check_at=tok.next_check_at))
        released += result.rowcount or 0
    return released


async def apply_checks(session: AsyncSession, outcomes: Sequence[CheckOutcome]) -> int:
    """Write a batch of checks. A token whose status changed meanwhile is left alone. Returns rows written."""
    written = 0
    checks: list[dict] = []
    transitions: list[dict] = []
    discrepancies: list[dict] = []
    c = TOKENS.c
    for o in outcomes:
        o.written = False  # this function may be retried by Database.run
        result = await execute(
            session,
            update(TOKENS)
            .where(and_(c.id == o.token_id, c.status == o.expected_status))
            .values(**o.token_values, check_count=c.check_count + 1,
                    write_failures=0, quarantined_at=None, quarantine_reason=None),  # a written check lifts a quarantine
        )
        if result.rowcount == 0:
            continue
        written += 1
        o.written = True
        checks.append({**o.check, "token_id": o.token_id})
        if o.transition is not None:
            frm, to, reason, spent = o.transition
            transitions.append({"token_id": o.token_id, "from_status": frm, "to_status": to,
                                "at": o.check["at"], "reason": reason[:64], "time_in_previous_s": spent})
        for kind, pair_address in o.discrepancies:
            discrepancies.append({"token_id": o.token_id, "at": o.check["at"], "kind": kind,
                                  "pair_address": pair_address[:128]})
    if checks:
        await execute(session, insert(CHECKS), checks)
    if transitions:
        await execute(session, insert(TRANSITIONS), transitions)
    if discrepancies:
        await execute(session, insert(DISCREPANCIES), discrepancies)
    await add_checks_to_rollup(session, checks)  # monitoring's per-minute counts (tokens/check_rollup.py)
    return written


async def record_write_failure(session: AsyncSession, token_id: int, reason: str, now: float, *,
                               quarantine_after: int = QUARANTINE_AFTER_WRITE_FAILURES,
                               quarantine_s: float = QUARANTINE_S, retry_s: float = WRITE_RETRY_S) -> bool:
    """Count a check of ``token_id`` that could not be written and release its lease: retried in
    ``retry_s``, or quarantined for ``quarantine_s`` once ``quarantine_after`` writes in a row
    failed (``reason``, already clean text, is stored). Returns True when the token is quarantined."""
    c = TOKENS.c
    row = (await execute(session, select(c.write_failures, c.quarantined_at).where(c.id == token_id))).one_or_none()
    if row is None:
        return False
    failures = int(row.write_failures or 0) + 1
    quarantined = failures >= quarantine_after
    values: dict = {"write_failures": failures, "next_check_at": now + (quarantine_s if quarantined else retry_s)}
    if quarantined:
        since = row.quarantined_at if row.quarantined_at is not None else now  # one quarantine, however often retried
        values.update(quarantined_at=since, quarantine_reason=reason[:QUARANTINE_REASON_CHARS])
    await execute(session, update(TOKENS).where(and_(c.id == token_id, c.status.in_(LIVE_STATUSES))).values(**values))
    return quarantined


async def archive_expired(session: AsyncSession, now: float, *, monitoring_timeout_s: float,
                          low_score_timeout_s: float, exclude_ids: Collection[int] = (),
                          limit: int = 1000) -> list[tuple[str, str]]:
    """Archive tokens whose time-based rule expired (safety net for tokens not being checked).

    Returns ``[(mint, reason), ...]``.
    """
    c = TOKENS.c
    expired = or_(
        and_(c.status == MONITORING, c.status_since <= now - monitoring_timeout_s),
        and_(c.status == ACTIVE, c.low_score_since.is_not(None), c.low_score_since <= now - low_score_timeout_s),
    )
    stmt = select(c.id, c.mint, c.status, c.status_since).where(expired).limit(limit)
    if exclude_ids:
        stmt = stmt.where(c.id.not_in(list(exclude_ids)))
    archived: list[tuple[str, str]] = []
    for row in (await execute(session, stmt)).all():
        reason = MONITORING_TIMEOUT if row.status == MONITORING else LOW_SCORE_TIMEOUT
        res = await execute(
            session,
            update(TOKENS).where(and_(c.id == row.id, c.status == row.status))
            .values(status=ARCHIVED, status_since=now, next_check_at=None, low_score_since=None,
                    quarantined_at=None, quarantine_reason=None),
        )
        if res.rowcount == 0:
            continue
        await execute(session, insert(TRANSITIONS).values(
            token_id=row.id, from_status=row.status, to_status=ARCHIVED, at=now, reason=reason,
            time_in_previous_s=max(0.0, now - row.status_since)))
        archived.append((row.mint, reason))
    return archived


async def delete_old(session: AsyncSession, now: float, retention_s: float) -> tuple[int, int]:
    """Delete checks and transitions older than ``retention_s`` of archived tokens.

    Returns ``(checks_deleted, transitions_deleted)``. Tokens themselves are kept (so a
    rediscovered mint stays a duplicate). The per-minute check counts older than ``retention_s``
    go too (``tokens.check_rollup``).
    """
    cutoff = now - retention_s
    await delete_old_rollup(session, cutoff)
    archived_ids = select(TOKENS.c.id).where(TOKENS.c.status == ARCHIVED)
    res_c = await execute(
        session, delete(CHECKS).where(CHECKS.c.at < cutoff, CHECKS.c.token_id.in_(archived_ids)))
    res_t = await execute(
        session, delete(TRANSITIONS).where(TRANSITIONS.c.at < cutoff, TRANSITIONS.c.token_id.in_(archived_ids)))
    return int(res_c.rowcount or 0), int(res_t.rowcount or 0)
