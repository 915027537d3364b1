"""Every revision walks up, down to base, and up again, on SQLite and PostgreSQL;
and the migrated schema matches the models (no forgotten migration)."""
from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.db import make_engine
from app.migrate import alembic_config, downgrade, upgrade
from tokenwatch.schema import metadata
from tests.conftest import PG_BASE_URL, _pg_admin


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'walk.db'}"
        return
    request.getfixturevalue("pg_template")  # skip/fail consistently when PostgreSQL is down
    name = f"tw_walk_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    yield f"{PG_BASE_URL}/{name}"
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _diff(url: str) -> list:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    finally:
        await engine.dispose()


async def test_walk_every_revision_up_down_up(empty_url):
    script = ScriptDirectory.from_config(alembic_config(empty_url))
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert revisions, "no migrations found"
    for rev in revisions:
        await upgrade(empty_url, rev)
    expected = {t for t in metadata.tables}
    assert expected <= await _tables(empty_url)
    for rev in reversed(revisions):
        await downgrade(empty_url, f"{rev}-1" if rev != revisions[0] else "base")
    assert not (expected & await _tables(empty_url))
    await upgrade(empty_url, "head")
    assert expected <= await _tables(empty_url)
    assert await _diff(empty_url) == [], "models and migrations differ: add a migration"
