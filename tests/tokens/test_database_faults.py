"""A database that is briefly locked or restarting: logged with counts, the service keeps going,
no token is lost.

The whole pipeline runs as the service runs it (its jobs on the real ``Scheduler``, the
websocket listener on, the local market over loopback, real time), while the database
misbehaves underneath it:

- PostgreSQL: every backend connected to the test database is killed with
  ``pg_terminate_backend`` a few times while migrations arrive and checks are written
  (the server itself keeps running: other tests share it);
- PostgreSQL restarting: the test database is reached through a loopback proxy that drops
  every connection and refuses new ones for a while (shorter, then longer than
  ``Database.run`` keeps retrying);
- SQLite: another connection holds the write lock (``BEGIN IMMEDIATE``), once briefly
  and once longer than the busy timeout, so ``Database.run`` has to retry.

Afterwards every pushed mint is in ``tokens`` exactly once, checks are still being written,
every token gets checked, and the faults were counted where an operator sees them
(``Database.transient_errors``, exported as ``tokenwatch_db_transient_errors_total``, a
warning per fault; writes that gave up: ``MigrationListener.insert_errors`` and the
scheduler's job errors).
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.clock import SYSTEM_CLOCK
from app.db import SQLITE_BUSY_TIMEOUT_MS, Database, make_engine
from app.scheduler import Scheduler
from app.supervisor import Supervisor
from simulator.server import LocalMarket
from tests.conftest import PG_ADMIN_DSN
from tests.tokens.conftest import eventually, pipeline_settings
from tokens.models import Check, Token
from tokens.pipeline import Pipeline
from tokens.sql import execute

MINTS = 40


def fast_settings():
    """Jobs and checks every fraction of a second, so a few seconds hold many of them."""
    return pipeline_settings(process_interval_s=0.2, hot_check_interval_s=0.3, cold_check_interval_s=0.6,
                             profiles_poll_interval_s=0.5, fetch_concurrency=2, batch_size=10)


async def mint_counts(db: Database) -> dict[str, int]:
    rows = (await db.run(lambda s: execute(s, select(Token.mint, func.count()).group_by(Token.mint)))).all()
    return {mint: int(n) for mint, n in rows}


async def checks_since(db: Database, since: float) -> int:
    return int((await db.run(lambda s: execute(
        s, select(func.count()).select_from(Check).where(Check.at > since)))).scalar_one())


class Service:
    """The pipeline wired as the composition root wires it: jobs on a ``Scheduler``, loops on a
    ``Supervisor``."""

    def __init__(self, db: Database, market: LocalMarket) -> None:
        settings = fast_settings()
        self.pipeline = Pipeline(settings, db, SYSTEM_CLOCK, market.dexscreener_base_url, market.pumpportal_ws_url,
                                 listen=True, run_budget_s=0.15)
        self.scheduler = Scheduler(settings, SYSTEM_CLOCK)
        self.supervisor = Supervisor(SYSTEM_CLOCK)

    async def __aenter__(self) -> "Service":
        await self.pipeline.start()
        self.scheduler.add_all(self.pipeline.jobs())
        self.supervisor.add_all(self.pipeline.loops())
        self.scheduler.start()
        await self.supervisor.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.supervisor.stop()
        await self.scheduler.shutdown()
        await self.pipeline.stop()


async def feed(market: LocalMarket, mints: list[str], gap_s: float) -> None:
    for mint in mints:
        assert await market.push_migration(mint) == 1  # the pipeline's listener got it
        await asyncio.sleep(gap_s)


async def all_stored(db: Database, mints: list[str]) -> bool:
    try:
        stored = await mint_counts(db)
    except Exception:  # noqa: BLE001 - the database may be mid-fault; ask again
        return False
    return all(m in stored for m in mints)


async def assert_nothing_lost_and_still_running(db: Database, service: Service, mints: list[str],
                                                fault_ended_at: float) -> None:
    await eventually(lambda: all_stored(db, mints), timeout_s=15)
    counts = await mint_counts(db)
    assert {m: counts.get(m) for m in mints} == {m: 1 for m in mints}  # every mint, exactly once
    rows = (await db.run(lambda s: execute(s, select(Token.mint, Token.source).where(Token.mint.in_(mints))))).all()
    assert {source for _, source in rows} == {"pumpportal"}  # ... and it came through the websocket
    assert not service.pipeline.listener.pending  # nothing left waiting for a retry
    # The service keeps going: checks are written after the last fault ...
    await eventually(lambda: checks_since(db, fault_ended_at), timeout_s=10)
    # ... and every pushed token gets checked (none stuck behind a lease or a dead task).
    await eventually(lambda: _all_checked(db, mints), timeout_s=10)
    assert service.pipeline.listener.state == "connected"


async def _all_checked(db: Database, mints: list[str]) -> bool:
    rows = (await db.run(lambda s: execute(s, select(Token.mint).where(Token.check_count > 0)))).all()
    return set(mints) <= {r[0] for r in rows}


# --- PostgreSQL: connections dropped mid-run ------------------------------------------------

async def terminate_backends(dbname: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            dbname)
        return sum(1 for r in rows if r[0])
    finally:
        await conn.close()


@pytest.fixture
async def pg_db(pg_url):
    database = Database(make_engine(pg_url), retry_base_s=0.05)
    yield database
    await database.dispose()


@pytest.fixture
async def live_market():
    async with LocalMarket(seed=11, autostart_flow=False, rate_limit_per_min=6000) as market:
        yield market


async def test_postgres_connections_killed_mid_run_lose_nothing(pg_url, pg_db, live_market, caplog):
    caplog.set_level(logging.WARNING)
    dbname = pg_url.rsplit("/", 1)[1]
    mints = live_market.model.seed_tokens(MINTS)
    live_market.model.seed_tokens(30)  # the newest profiles: discovery of `mints` is the websocket's
    async with Service(pg_db, live_market) as service:
        await eventually(lambda: live_market.stats.ws_subscribers == 1)
        feeder = asyncio.create_task(feed(live_market, mints, gap_s=0.05))
        killed = 0
        for _ in range(3):  # a couple of server-side disconnects while the pipeline works
            await asyncio.sleep(0.5)
            killed += await terminate_backends(dbname)
        # Keep dropping connections until one is caught mid-statement (idle ones are replaced
        # silently by the pool's pre-ping, which is not a fault the pipeline ever sees).
        for _ in range(200):
            if pg_db.transient_errors > 0:
                break
            killed += await terminate_backends(dbname)
            await asyncio.sleep(0.02)
        await feeder
        fault_ended_at = time.time()
        assert killed > 0
        await assert_nothing_lost_and_still_running(pg_db, service, mints, fault_ended_at)

        # Counted where an operator sees them, logged, and ridden out by the retries.
        assert pg_db.transient_errors > 0
        assert any("database fault" in r.getMessage() for r in caplog.records)
        jobs = {s.id: s for s in service.scheduler.job_stats()}
        assert service.pipeline.listener.insert_errors == 0 and jobs["pipeline.process"].errors == 0


class RestartingServer:
    """A loopback TCP proxy in front of PostgreSQL that can "restart": every open connection is
    dropped and new ones are refused for a while, as while a real server restarts (which the
    shared test server must not do)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            dst.transport.abort()

    async def go_down(self) -> None:
        """Stop listening and drop every connection (clients see resets, then refusals)."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def restart(self, down_s: float) -> None:
        await self.go_down()
        await asyncio.sleep(down_s)
        await self.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self.go_down()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


@pytest.fixture
async def restarting_pg(pg_url):
    """``(Database, RestartingServer)``: the test database reached through a restartable proxy."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    server = RestartingServer(url.host or "127.0.0.1", url.port or 5432)
    await server.start()
    database = Database(make_engine(url.set(host="127.0.0.1", port=server.port).render_as_string(False)))
    yield database, server
    await database.dispose()
    await server.stop()


async def test_postgres_restarting_server_loses_nothing(restarting_pg, live_market, caplog):
    """A restart shorter than ``Database.run``'s retries is ridden out (counted, nothing fails);
    a longer one makes writes give up, and what they carried is kept (discovery's pending
    queue) or re-done (leased checks), so nothing is lost either."""
    caplog.set_level(logging.WARNING)
    db, server = restarting_pg
    mints = live_market.model.seed_tokens(MINTS)
    live_market.model.seed_tokens(30)  # the newest profiles: discovery of `mints` is the websocket's
    async with Service(db, live_market) as service:
        listener = service.pipeline.listener
        service.pipeline.processor.lease_s = 2.0  # a check lost with the connection is re-done soon
        await eventually(lambda: live_market.stats.ws_subscribers == 1)
        feeder = asyncio.create_task(feed(live_market, mints, gap_s=0.15))
        await asyncio.sleep(0.5)

        # Down for less than the retries last (>= 0.75 x 1.55 s at the default 0.1 s base).
        await server.restart(down_s=0.3)
        await asyncio.sleep(0.5)
        jobs = {s.id: s for s in service.scheduler.job_stats()}
        assert db.transient_errors > 0  # hit, counted, logged ...
        assert listener.insert_errors == 0 and jobs["pipeline.process"].errors == 0  # ... and ridden out

        # Down for longer than the retries last (<= 1.5 x 1.55 s): writes give up, are counted.
        await server.restart(down_s=5.0)
        await feeder
        fault_ended_at = time.time()
        await assert_nothing_lost_and_still_running(db, service, mints, fault_ended_at)
        jobs = {s.id: s for s in service.scheduler.job_stats()}
        assert listener.insert_errors + jobs["pipeline.process"].errors > 0
        assert any("database fault" in r.getMessage() for r in caplog.records)


# --- SQLite: the file briefly locked by another writer ----------------------------------------

def hold_write_lock(path: Path, hold_s: float, locked: threading.Event) -> None:
    """Take SQLite's write lock from a plain connection, as another process would, then let go."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(hold_s)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def lock_for(path: Path, hold_s: float) -> None:
    locked = threading.Event()
    holder = asyncio.create_task(asyncio.to_thread(hold_write_lock, path, hold_s, locked))
    assert await asyncio.to_thread(locked.wait, 10), "could not take the write lock"
    await holder


@pytest.fixture
async def sqlite_file_db(sqlite_url):
    database = Database(make_engine(sqlite_url), retry_base_s=0.01)
    yield database, Path(sqlite_url.split("///", 1)[1])
    await database.dispose()


async def test_sqlite_locked_by_another_writer_loses_nothing(sqlite_file_db, live_market, caplog):
    caplog.set_level(logging.WARNING)
    db, path = sqlite_file_db
    mints = live_market.model.seed_tokens(MINTS)
    live_market.model.seed_tokens(30)  # the newest profiles: discovery of `mints` is the websocket's
    async with Service(db, live_market) as service:
        await eventually(lambda: live_market.stats.ws_subscribers == 1)
        await feed(live_market, mints[:10], gap_s=0.02)
        await eventually(lambda: all_stored(db, mints[:10]))

        # Briefly locked (within the busy timeout): writers wait, nothing fails.
        feeder = asyncio.create_task(feed(live_market, mints[10:20], gap_s=0.05))
        await lock_for(path, 1.5)
        await feeder
        await eventually(lambda: all_stored(db, mints[:20]))
        assert db.transient_errors == 0

        # Locked for longer than the busy timeout: writes fail with "database is locked",
        # are counted and retried until the lock is gone.
        feeder = asyncio.create_task(feed(live_market, mints[20:], gap_s=0.1))
        await lock_for(path, SQLITE_BUSY_TIMEOUT_MS / 1000 + 1.0)
        await feeder
        fault_ended_at = time.time()
        await assert_nothing_lost_and_still_running(db, service, mints, fault_ended_at)

        assert db.transient_errors > 0
        assert any("database fault" in r.getMessage() for r in caplog.records)
        jobs = {s.id: s for s in service.scheduler.job_stats()}  # ridden out: no write gave up
        assert service.pipeline.listener.insert_errors == 0 and jobs["pipeline.process"].errors == 0
