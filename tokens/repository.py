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

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import TextClause, and_, delete, func, insert, or_, select, text, update
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


# --- the hot path: textual statements, compiled once (SQLAlchemy caches a text() by its string) ---------
_RANK_SQL = ("(next_check_at - CASE WHEN status = 'active' OR score_ewma > :hot_threshold "
             "OR (status = 'monitoring' AND status_since > :fresh_since) THEN :hot_boost ELSE 0.0 END "
             "- COALESCE(score_ewma, 0.0) * :score_weight)")
_CLAIM_COLUMNS = ("id, mint, status, status_since, score_ewma, low_score_since, consecutive_failures, "
                  "(name IS NOT NULL) AS has_name")


def _claim_pg(ranked: bool) -> TextClause:
    rank = _RANK_SQL if ranked else "next_check_at"
    return text(
        f"UPDATE tokens AS t SET next_check_at = :lease_until "
        f"FROM (SELECT id, next_check_at AS due, {rank} AS rank FROM tokens "
        f"WHERE next_check_at <= :now AND id <> ALL(CAST(:exclude AS INTEGER[])) "
        f"ORDER BY {rank}, next_check_at LIMIT :n FOR UPDATE SKIP LOCKED) AS d "
        f"WHERE t.id = d.id "
        f"RETURNING t.id, t.mint, t.status, t.status_since, t.score_ewma, t.low_score_since, "
        f"t.consecutive_failures, (t.name IS NOT NULL) AS has_name, d.due, d.rank")


def _claim_sqlite(ranked: bool) -> TextClause:
    rank = _RANK_SQL if ranked else "next_check_at"
    return text(
        f"SELECT {_CLAIM_COLUMNS}, next_check_at AS due, {rank} AS rank FROM tokens "
        f"WHERE next_check_at <= :now AND id NOT IN (SELECT value FROM json_each(:exclude)) "
        f"ORDER BY {rank}, next_check_at LIMIT :n")


_CLAIM = {("postgresql", False): _claim_pg(False), ("postgresql", True): _claim_pg(True),
          ("sqlite", False): _claim_sqlite(False), ("sqlite", True): _claim_sqlite(True)}
_LEASE_SQLITE = text("UPDATE tokens SET next_check_at = :lease_until "
                     "WHERE id IN (SELECT value FROM json_each(:ids)) AND next_check_at <= :now RETURNING id")


def _claim_binds(now: float, limit: int, lease_s: float, priority: ClaimPriority | None) -> dict:
    binds: dict = {"now": now, "n": int(limit), "lease_until": now + lease_s}
    if priority is not None:
        binds.update(hot_threshold=priority.hot_score_threshold, fresh_since=now - priority.fresh_hot_s,
                     hot_boost=priority.hot_boost_s, score_weight=priority.score_weight_s)
    return binds


def _due_tokens(rows: Sequence) -> list[DueToken]:
    return [
        DueToken(id=r.id, mint=r.mint, status=r.status, status_since=r.status_since, score_ewma=r.score_ewma,
                 low_score_since=r.low_score_since, consecutive_failures=r.consecutive_failures or 0,
                 has_name=bool(r.has_name), next_check_at=r.due)
        for r in sorted(rows, key=lambda r: (r.rank, r.due, r.id))
    ]


async def select_due(session: AsyncSession, now: float, limit: int, exclude_ids: Collection[int] = (),
                     priority: ClaimPriority | None = None) -> list:
    """SQLite's half of a claim that only reads: up to ``limit`` due rows in claim order (see
    ``claim_due``). A read: on SQLite (WAL) it runs beside writers; ``lease_due`` then leases them."""
    binds = _claim_binds(now, limit, 0.0, priority)
    stmt = _CLAIM[("sqlite", priority is not None)]
    return list((await execute(session, stmt, {**binds, "exclude": json.dumps([int(i) for i in exclude_ids])})).all())


async def lease_due(session: AsyncSession, rows: Sequence, now: float, lease_s: float) -> list[DueToken]:
    """SQLite's writing half of a claim: lease the rows ``select_due`` read that are still due (one
    guarded ``UPDATE .. RETURNING id``; a row another writer leased meanwhile is left out)."""
    if not rows:
        return []
    leased = set((await execute(session, _LEASE_SQLITE, {
        "lease_until": now + lease_s, "now": now, "ids": json.dumps([r.id for r in rows])})).scalars().all())
    return _due_tokens([r for r in rows if r.id in leased])


async def claim_due(session: AsyncSession, now: float, limit: int, lease_s: float,
                    exclude_ids: Collection[int] = (), priority: ClaimPriority | None = None) -> list[DueToken]:
    """Take up to ``limit`` due tokens and lease them for ``lease_s``: oldest due first, or with
    ``priority`` (a backlog) hot and high-score tokens first (``ClaimPriority``).

    PostgreSQL: ONE statement, ``UPDATE .. FROM (SELECT .. FOR UPDATE SKIP LOCKED LIMIT n) RETURNING``,
    so concurrent claimers (other sessions, other processes) never take the same token and never
    wait for each other. SQLite (one writer at a time): the ranked read (``select_due``) and the
    guarded lease (``lease_due``: ``.. AND next_check_at <= now RETURNING id``); a token another
    writer leased in between is not returned. Both are textual statements compiled once."""
    if _dialect(session) == "postgresql":
        binds = _claim_binds(now, limit, lease_s, priority)
        stmt = _CLAIM[("postgresql", priority is not None)]
        rows = (await execute(session, stmt, {**binds, "exclude": [int(i) for i in exclude_ids]})).all()
        return _due_tokens(rows)
    rows = await select_due(session, now, limit, exclude_ids, priority)
    return await lease_due(session, rows, now, lease_s)


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


# Token columns a check may set. Each is written as ``CASE WHEN <set> THEN <value> ELSE <column> END``,
# so every check of a batch shares one statement whatever subset of columns it sets.
CHECK_TOKEN_COLUMNS: tuple[str, ...] = (
    "status", "status_since", "low_score_since", "next_check_at", "last_check_at", "last_success_at",
    "consecutive_failures", "score", "score_ewma", "last_failure_codes", "activated_at", "name", "symbol")
_PG_TYPES = {"status": "TEXT", "status_since": "FLOAT8", "low_score_since": "FLOAT8", "next_check_at": "FLOAT8",
             "last_check_at": "FLOAT8", "last_success_at": "FLOAT8", "consecutive_failures": "INTEGER",
             "score": "FLOAT8", "score_ewma": "FLOAT8", "last_failure_codes": "TEXT", "activated_at": "FLOAT8",
             "name": "TEXT", "symbol": "TEXT"}
# A written check lifts a quarantine and counts the check.
_ALWAYS = "check_count = check_count + 1, write_failures = 0, quarantined_at = NULL, quarantine_reason = NULL"
CHECK_COLUMNS: dict[str, object] = {  # column -> default when a check dict leaves it out
    "check_id": None, "token_id": None, "at": None, "status_at_check": None, "ok": True, "passed": False,
    "failure_codes": None, "primary_failure": None, "conditions": None, "score": None, "pairs_count": 0,
    "duration_ms": None, "error": None}
_INSERT_CHECKS = text(f"INSERT INTO checks ({', '.join(CHECK_COLUMNS)}) "
                      f"VALUES ({', '.join(':' + c for c in CHECK_COLUMNS)})")


def _update_pg() -> TextClause:
    sets = ", ".join(f"{c} = CASE WHEN v.s_{c} THEN v.{c} ELSE t.{c} END" for c in CHECK_TOKEN_COLUMNS)
    arrays = ", ".join(["CAST(:ids AS INTEGER[])", "CAST(:expected AS TEXT[])"]
                       + [f"CAST(:v_{c} AS {_PG_TYPES[c]}[]), CAST(:s_{c} AS BOOLEAN[])" for c in CHECK_TOKEN_COLUMNS])
    names = ", ".join(["id", "expected"] + [f"{c}, s_{c}" for c in CHECK_TOKEN_COLUMNS])
    return text(f"UPDATE tokens AS t SET {sets}, {_ALWAYS} FROM unnest({arrays}) AS v({names}) "
                f"WHERE t.id = v.id AND t.status = v.expected RETURNING t.id")


_UPDATE_PG = _update_pg()
SQLITE_UPDATE_ROWS = 30  # rows per SQLite UPDATE .. FROM (VALUES ..): a larger group is written in chunks
_UPDATE_SQLITE: dict[int, TextClause] = {}  # by row count (1..SQLITE_UPDATE_ROWS)


def _update_sqlite(n: int) -> TextClause:
    """``UPDATE tokens .. FROM (VALUES (..), ..)`` for ``n`` rows, built once per ``n``."""
    stmt = _UPDATE_SQLITE.get(n)
    if stmt is None:
        per_row = 2 + 2 * len(CHECK_TOKEN_COLUMNS)
        sets = ", ".join(f"{c} = CASE WHEN v.column{4 + 2 * k} THEN v.column{3 + 2 * k} ELSE tokens.{c} END"
                         for k, c in enumerate(CHECK_TOKEN_COLUMNS))
        rows = ", ".join("(" + ", ".join(f":p{i}_{j}" for j in range(per_row)) + ")" for i in range(n))
        stmt = text(f"UPDATE tokens SET {sets}, {_ALWAYS} FROM (VALUES {rows}) AS v "
                    f"WHERE tokens.id = v.column1 AND tokens.status = v.column2 RETURNING tokens.id")
        _UPDATE_SQLITE[n] = stmt
    return stmt


async def _update_tokens(session: AsyncSession, outcomes: Sequence[CheckOutcome]) -> set[int]:
    """One statement for the batch's token rows; returns the ids written (status unchanged)."""
    for o in outcomes:
        unknown = set(o.token_values).difference(CHECK_TOKEN_COLUMNS)
        if unknown:
            raise ValueError(f"a check cannot set {sorted(unknown)}")
    if _dialect(session) == "postgresql":
        binds: dict = {"ids": [o.token_id for o in outcomes], "expected": [o.expected_status for o in outcomes]}
        for c in CHECK_TOKEN_COLUMNS:
            binds[f"v_{c}"] = [o.token_values.get(c) for o in outcomes]
            binds[f"s_{c}"] = [c in o.token_values for o in outcomes]
        return set((await execute(session, _UPDATE_PG, binds)).scalars().all())
    written: set[int] = set()
    for start in range(0, len(outcomes), SQLITE_UPDATE_ROWS):  # a few statement shapes, each compiled once
        chunk = outcomes[start:start + SQLITE_UPDATE_ROWS]
        binds = {}
        for i, o in enumerate(chunk):
            values = o.token_values
            binds[f"p{i}_0"], binds[f"p{i}_1"] = o.token_id, o.expected_status
            for k, c in enumerate(CHECK_TOKEN_COLUMNS):
                binds[f"p{i}_{2 + 2 * k}"] = values.get(c)
                binds[f"p{i}_{3 + 2 * k}"] = c in values
        written.update((await execute(session, _update_sqlite(len(chunk)), binds)).scalars().all())
    return written


async def apply_checks(session: AsyncSession, outcomes: Sequence[CheckOutcome]) -> int:
    """Write a batch of checks: one statement updates every token row (guarded: a token whose status
    changed meanwhile is left alone, its ``written`` stays False), one executemany inserts the checks
    of the tokens written, then their transitions and pool discrepancies. Returns rows written."""
    for o in outcomes:
        o.written = False  # this function may be retried by Database.run
    if not outcomes:
        return 0
    written_ids = await _update_tokens(session, outcomes)
    checks: list[dict] = []
    transitions: list[dict] = []
    discrepancies: list[dict] = []
    defaults = CHECK_COLUMNS
    for o in outcomes:
        if o.token_id not in written_ids:
            continue
        o.written = True
        check = o.check
        checks.append({c: check.get(c, d) for c, d in defaults.items()} | {"token_id": o.token_id})
        if o.transition is not None:
            frm, to, reason, spent = o.transition
            transitions.append({"token_id": o.token_id, "from_status": frm, "to_status": to,
                                "at": check["at"], "reason": reason[:64], "time_in_previous_s": spent})
        for kind, pair_address in o.discrepancies:
            discrepancies.append({"token_id": o.token_id, "at": check["at"], "kind": kind,
                                  "pair_address": pair_address[:128]})
    if checks:
        await execute(session, _INSERT_CHECKS, checks)
    if transitions:
        await execute(session, insert(TRANSITIONS), transitions)
    if discrepancies:
        await execute(session, insert(DISCREPANCIES), discrepancies)
    await add_checks_to_rollup(session, checks)  # monitoring's per-minute counts (tokens/check_rollup.py)
    return len(checks)


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
