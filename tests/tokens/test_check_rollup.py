"""The per-minute check counts (``tokens/check_rollup.py``) that monitoring reads instead of the
checks table: written with every batch, equal to what the checks table holds, safe under
concurrent writers, expired with the checks, and filled from the stored checks on migration."""
from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import func, select

from app.db import Database, make_engine
from app.migrate import upgrade
from app.tables import table_of
from tokens.check_rollup import add_checks_to_rollup, minute_of, window_counts
from tokens.models import Check
from tokens.queries import check_outcomes_per_minute
from tokens.repository import CheckOutcome, apply_checks, delete_old, insert_token
from tokens.sql import execute
from tests.test_migrations import empty_url  # noqa: F401  (fixture: a database at no revision)

NOW = 1_700_000_040.0  # on a minute
CHECKS = table_of(Check)
REASONS = (None, "insufficient_liquidity", "no_external_pool")


def _check(rng: random.Random, i: int, at: float) -> dict:
    ok = rng.random() > 0.1
    passed = ok and rng.random() > 0.7
    return {"check_id": f"k{i}", "at": at, "status_at_check": rng.choice(["monitoring", "active"]), "ok": ok,
            "passed": passed, "primary_failure": None if passed or not ok else rng.choice(REASONS[1:])}


async def _counted_from_checks(session, since: float, until: float) -> dict:
    rows = (await execute(session, select(CHECKS.c.status_at_check, CHECKS.c.ok, CHECKS.c.passed,
                                          CHECKS.c.primary_failure, func.count())
                          .where(CHECKS.c.at > since, CHECKS.c.at <= until)
                          .group_by(CHECKS.c.status_at_check, CHECKS.c.ok, CHECKS.c.passed,
                                    CHECKS.c.primary_failure))).all()
    return {(s, bool(ok), bool(p), r or ""): float(n) for s, ok, p, r, n in rows}


async def test_apply_checks_keeps_the_minute_counts_equal_to_the_checks(db):
    rng = random.Random(7)
    token_id = await db.run(lambda s: insert_token(s, "R" * 44, now=NOW - 7200))
    for batch in range(40):  # 40 batches of 30 over two hours, as the processor writes them
        outcomes = [CheckOutcome(token_id=token_id, expected_status="monitoring",
                                 check=_check(rng, batch * 30 + i, NOW - 7200 + batch * 180 + i * 5.5),
                                 token_values={"next_check_at": NOW + 10})
                    for i in range(30)]
        assert await db.run(lambda s: apply_checks(s, outcomes)) == 30
    async with db.session() as s:
        # windows that start on a minute are exact, whatever the grouping
        for since in (NOW - 3600, NOW - 600, NOW - 60):
            expected = await _counted_from_checks(s, since, NOW)
            got = await window_counts(s, since, NOW, by=("status_at_check", "ok", "passed", "reason"))
            assert {k: v for k, v in got.items() if v} == expected
        total = sum((await _counted_from_checks(s, NOW - 3600, NOW)).values())
        assert (await window_counts(s, NOW - 3600, NOW))[()] == total
        # the rates /status shows: per minute over 10 minutes, split by fetch outcome
        rates = await check_outcomes_per_minute(s, NOW, 600.0)
        ten = await _counted_from_checks(s, NOW - 600, NOW)
        assert rates.ok == pytest.approx(sum(n for k, n in ten.items() if k[1]) / 10)
        assert rates.failed == pytest.approx(sum(n for k, n in ten.items() if not k[1]) / 10)


async def test_a_window_starting_inside_a_minute_counts_that_minutes_share(db):
    row = {"status_at_check": "monitoring", "ok": True, "passed": False, "primary_failure": None}
    async with db.session() as s:
        # minute (NOW-60, NOW]: 4 checks at NOW-50 .. NOW-20; and 3 checks in the minute before
        await add_checks_to_rollup(s, [{**row, "at": NOW - 50 + 10 * i} for i in range(4)])
        await add_checks_to_rollup(s, [{**row, "at": NOW - 100 - i} for i in range(3)])
        await s.commit()
        count = lambda since: window_counts(s, since, NOW + 30)  # noqa: E731
        assert (await count(NOW - 120))[()] == 7          # on a minute: exact
        assert (await count(NOW - 60))[()] == 4           # a check exactly at since is outside (since, until]
        assert (await count(NOW - 55))[()] == 4           # before the edge minute's first check: all of it
        assert (await count(NOW - 20)).get((), 0.0) == 0  # at or after its last check: none of it
        assert (await count(NOW - 35))[()] == pytest.approx(4 * 15 / 30)  # half its span: half its checks
    assert minute_of(NOW) == NOW - 60 and minute_of(NOW + 0.5) == NOW


async def test_concurrent_writers_add_up_without_losing_a_check(db):
    """Several writers (connections) upserting the same minutes at once: every check is counted once."""
    row = {"status_at_check": "monitoring", "ok": True, "passed": False}

    async def writer(n: int) -> None:
        for batch in range(10):
            rows = [{**row, "at": NOW - 90 + (n + batch + i) % 60, "primary_failure": REASONS[i % 3]}
                    for i in range(12)]
            await db.run(lambda s: add_checks_to_rollup(s, rows))

    await asyncio.gather(*(writer(n) for n in range(6)))
    async with db.session() as s:
        assert (await window_counts(s, NOW - 120, NOW))[()] == 6 * 10 * 12


async def test_retention_deletes_the_old_minutes_with_the_old_checks(db):
    row = {"status_at_check": "monitoring", "ok": True, "passed": True, "primary_failure": None}
    async with db.session() as s:
        await add_checks_to_rollup(s, [{**row, "at": NOW - 8000}, {**row, "at": NOW - 100}])
        await s.commit()
    await db.run(lambda s: delete_old(s, NOW, retention_s=3600.0))  # the processor's retention job
    async with db.session() as s:
        assert (await window_counts(s, NOW - 86400, NOW))[()] == 1  # only the recent minute is left


async def test_migration_fills_the_minutes_from_the_checks_already_stored(empty_url):  # noqa: F811
    await upgrade(empty_url, "0006")
    db = Database(make_engine(empty_url))
    rng = random.Random(3)
    try:
        token_id = await db.run(lambda s: insert_token(s, "M" * 44, now=NOW - 7200))
        rows = [{**_check(rng, i, NOW - 7200 + i * 7.3), "token_id": token_id} for i in range(900)]
        rows.append({**rows[0], "check_id": "edge", "at": NOW - 3600})  # exactly on a minute

        async def fill(s):
            from sqlalchemy import insert
            await execute(s, insert(CHECKS), rows)

        await db.run(fill)
        await upgrade(empty_url, "head")
        async with db.session() as s:
            for since in (NOW - 7200, NOW - 3600, NOW - 1800):
                got = await window_counts(s, since, NOW, by=("status_at_check", "ok", "passed", "reason"))
                assert {k: v for k, v in got.items() if v} == await _counted_from_checks(s, since, NOW)
    finally:
        await db.dispose()
