"""Several processes starting at once on a fresh PostgreSQL database (``docker compose up`` with
workers) all migrate it: one at a time (an advisory lock in ``migrations/env.py``), so every one
of them starts instead of failing on a table another has just created."""
from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest

from app.migrate import current_heads
from tests.conftest import PG_BASE_URL, _pg_admin

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)


async def migrate_in_a_process(url: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"from app.migrate import upgrade_sync; upgrade_sync({url!r})",
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode(errors="replace")[-2000:]


async def test_three_processes_migrating_one_fresh_database_at_once_all_succeed(pg_template):
    name = f"tw_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = f"{PG_BASE_URL}/{name}"
    try:
        results = await asyncio.gather(*(migrate_in_a_process(url) for _ in range(3)))
        assert [out for code, out in results if code != 0] == []
        import asyncpg

        conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
        try:
            assert [await conn.fetchval("SELECT version_num FROM alembic_version")] == current_heads(url)
        finally:
            await conn.close()
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
