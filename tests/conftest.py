"""Shared fixtures: real databases (SQLite and PostgreSQL), real Redis, a manual clock.

PostgreSQL and Redis are used for real. Locally a test that needs one is skipped
when it is unreachable; under ``CI=true`` it fails instead.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from app.clock import ManualClock
from app.db import Database, make_engine
from app.migrate import upgrade_sync

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE_URL = os.environ.get("TEST_PG_BASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
# each pytest-xdist worker (gw0, gw1, ...) flushes its own Redis database: 15, 14, ...
REDIS_TEST_URL = os.environ.get(
    "TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:] or 0) % 15}")
IN_CI = os.environ.get("CI", "").lower() == "true"

# Property tests: no per-example deadline (a loaded 2-core CI machine is not a bug), and the
# same examples on every CI run so a red run can be reproduced.
hypothesis_settings.register_profile(
    "tokenwatch", deadline=None, derandomize=IN_CI, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("tokenwatch")


def unavailable(what: str, why: object) -> None:
    """Skip locally, fail under CI=true."""
    message = f"{what} unreachable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services must be running)")
    pytest.skip(message)


def in_thread(fn, *args):
    """Run blocking or ``asyncio.run`` work from sync fixtures even when a loop is running."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> str:
    """A migrated PostgreSQL template database, made once per test session."""
    name = f"tw_tpl_{os.getpid()}"
    try:
        in_thread(asyncio.run, _pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        in_thread(asyncio.run, _pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        unavailable("PostgreSQL", exc)
    in_thread(upgrade_sync, f"{PG_BASE_URL}/{name}")
    yield name
    try:
        in_thread(asyncio.run, _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:  # noqa: BLE001
        pass


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite_tpl") / "template.db"
    in_thread(upgrade_sync, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    """A fresh, migrated SQLite database file for one test."""
    path = tmp_path / "tokenwatch.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def pg_url(pg_template) -> str:
    """A fresh, migrated PostgreSQL database for one test (copied from the template)."""
    name = f"tw_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield f"{PG_BASE_URL}/{name}"
    try:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001
        pass


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """A fresh, migrated database URL; tests using it run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
async def db(db_url) -> Database:
    database = Database(make_engine(db_url), retry_base_s=0.01)
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_db(sqlite_url) -> Database:
    database = Database(make_engine(sqlite_url), retry_base_s=0.01)
    yield database
    await database.dispose()


@pytest.fixture
async def redis_client():
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_TEST_URL)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        await client.aclose()
        unavailable("Redis", exc)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)
