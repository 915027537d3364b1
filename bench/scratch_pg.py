"""A throwaway PostgreSQL database for a benchmark run, dropped afterwards.

    async with scratch_postgres() as url:      # postgresql+asyncpg://.../tw_bench_1a2b3c4d, or None
        if url is not None:
            await run("postgresql", url)

The server is the tests' (``TEST_PG_ADMIN_DSN`` / ``TEST_PG_BASE_URL``, 127.0.0.1:5432 by
default); when it cannot be reached, the block gets ``None`` and a line says why.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BASE_URL = os.environ.get("TEST_PG_BASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_postgres(prefix: str = "tw_bench") -> AsyncIterator[str | None]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - a benchmark without PostgreSQL still runs SQLite
        print(f"postgresql skipped: {exc}")
        yield None
        return
    try:
        yield f"{BASE_URL}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
