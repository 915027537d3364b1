"""The database: one async engine, sessions, and retry on transient faults.

    db = Database.from_settings(settings)
    async with db.session() as session:
        ...
    result = await db.run(lambda s: some_query(s, ...))   # retried on "database is locked" / restart

SQLite (the embedded default) runs in WAL mode with a busy timeout; PostgreSQL
uses asyncpg. Timestamps are epoch seconds (floats) in every table.

SQLite has one writer at a time, and its busy handler is no queue: a waiting writer sleeps 25-100 ms
between tries, so a busy writer (the processor's group commits) can starve the others until the busy
timeout ends in "database is locked", and a transaction that read before it writes fails at once when
another wrote meanwhile. So on SQLite every ``run`` takes the process's write turn (``write_turn``,
a FIFO lock: turns go in the order asked) for each attempt; a read that needs no turn passes
``turn=False``. A ``run`` inside a ``run`` (same task) already holds the turn; a task started
meanwhile is another writer and waits its turn. PostgreSQL has row
locks and MVCC: there ``run`` takes no turn.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.backoff import Backoff
from app.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, echo: bool = False) -> AsyncEngine:
    """Create the async engine for ``url`` with the pragmas/pool settings we rely on."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800
    )


def is_transient(exc: BaseException) -> bool:
    """True for faults worth retrying: a locked SQLite file, a dropped or restarting server.

    A server that is down (restarting) refuses connections: asyncpg lets the socket's
    ``ConnectionRefusedError`` (or a connect ``TimeoutError``) through unwrapped.
    """
    if isinstance(exc, (OperationalError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("database is locked", "connection was closed", "cannot connect", "connection refused",
                       "terminating connection", "the database system is", "connection is closed",
                       "connect call failed")
    )


class Database:
    """Owns the engine and hands out sessions."""

    def __init__(self, engine: AsyncEngine, *, retries: int = 5, retry_base_s: float = 0.1) -> None:
        self.engine = engine
        self._engine_listeners: list[Callable[[AsyncEngine, AsyncEngine], None]] = []
        self.retries = retries
        self.retry_base_s = retry_base_s
        # the last retry waits about retry_base_s * 2**(retries-1); jitter 0.5-1.5 spreads the processes
        self.backoff = Backoff(base_s=retry_base_s, max_s=retry_base_s * 2 ** retries, jitter_low=0.5, jitter_high=1.5)
        self.transient_errors = 0
        self._maker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite: one transaction of ``run`` at a time in this process (see the module docstring)
        self.write_turn: asyncio.Lock | None = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # the task holding the turn: a run inside its runs needs no turn of its own, but a task it starts
        # (or a callback it schedules) is not it and waits its turn (a context variable would be inherited)
        self._turn_owner: asyncio.Task[object] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Database":
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        return cls(make_engine(settings.database_url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def pool_size(self) -> int | None:
        """Connections the pool keeps (None for pools without a size: SQLite's)."""
        size = getattr(self.engine.sync_engine.pool, "size", None)
        return int(size()) if callable(size) else None

    def on_engine(self, listener: Callable[[AsyncEngine, AsyncEngine], None]) -> None:
        """Call ``listener(old, new)`` when ``resize_pool`` replaces the engine (event listeners
        on the engine or its pool move over with it)."""
        self._engine_listeners.append(listener)

    def off_engine(self, listener: Callable[[AsyncEngine, AsyncEngine], None]) -> None:
        if listener in self._engine_listeners:
            self._engine_listeners.remove(listener)

    async def resize_pool(self, pool_size: int, *, max_overflow: int | None = None) -> None:
        """Give the pool a new size. SQLAlchemy pools cannot be resized in place: a new engine is
        built, new sessions use it at once, and the old one is disposed: its idle connections
        close now, the ones in use finish their work and close when they are returned."""
        old = self.engine
        overflow = max_overflow if max_overflow is not None else getattr(old.sync_engine.pool, "_max_overflow", 10)
        new = make_engine(old.url.render_as_string(hide_password=False), pool_size=pool_size,
                          max_overflow=max(0, int(overflow)))
        self.engine = new
        self._maker = async_sessionmaker(new, class_=AsyncSession, expire_on_commit=False)
        for listener in list(self._engine_listeners):
            try:
                listener(old, new)
            except Exception:  # noqa: BLE001 - a listener must not leave the swap half done
                log.exception("engine listener failed")
        await old.dispose()
        log.info("database pool resized: %s -> %d connections", getattr(old.sync_engine.pool, "size", lambda: "?")(),
                 pool_size)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that is always closed, even when its task is cancelled (at shutdown, by a
        job's budget or a watchdog): the close is shielded, so the connection goes back to the
        pool rolled back instead of being torn down half-way (which the pool logs as an error)."""
        session = self._maker()
        try:
            yield session
        finally:
            await asyncio.shield(session.close())

    async def run(self, fn: Callable[[AsyncSession], Awaitable[T]], *, turn: bool = True) -> T:
        """Run ``fn(session)`` in a transaction, committing at the end; retry transient faults.

        ``fn`` must be safe to repeat: a retried attempt starts from a fresh session. On SQLite the
        attempt holds the write turn unless ``turn=False`` (a read that may run beside the writers).
        """
        attempt = 0
        while True:
            try:
                async with self.turn(turn):
                    async with self.session() as session:
                        result = await fn(session)
                        await session.commit()
                        return result
            except Exception as exc:  # noqa: BLE001 - classified below
                if not is_transient(exc) or attempt >= self.retries:
                    raise
                self.transient_errors += 1
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("database fault (%s), retry %d in %.2fs", type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)

    @asynccontextmanager
    async def turn(self, wanted: bool = True) -> AsyncIterator[None]:
        """Hold the SQLite write turn (nothing on PostgreSQL) for several ``run`` calls, or while
        deciding what to write: the ``run`` calls inside take no turn of their own."""
        me = asyncio.current_task()
        if self.write_turn is None or not wanted or (me is not None and self._turn_owner is me):
            yield
            return
        async with self.write_turn:
            self._turn_owner = me
            try:
                yield
            finally:
                self._turn_owner = None

    async def ping(self) -> bool:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
