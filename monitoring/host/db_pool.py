"""Database health and connection-pool usage, from what SQLAlchemy's pool exposes.

QueuePool-style pools (PostgreSQL, file SQLite) expose ``size()``, ``checkedin()``,
``checkedout()`` and ``overflow()``; other pools (in-memory SQLite's StaticPool) expose
none of them and only the probe's figures are reported. SQLAlchemy has no "waiting for a
connection" counter, so the wait is measured directly: the probe times how long
``engine.connect()`` takes to hand it a connection (``tokenwatch_db_pool_acquire_seconds``).
Checkouts are counted through the pool's ``checkout`` event.

    registry.register(DbPoolCollector(db, clock=clock))
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import event, text

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from monitoring import metric_names as m
from monitoring.sample import Sample

log = logging.getLogger(__name__)


class DbPoolCollector:
    """Collector ``db``: reachability (SELECT 1 under a timeout), ping and acquire times, pool usage.

    Logs once when the database becomes unreachable and once when it is back.

        collector = DbPoolCollector(db, probe_timeout_s=2.0)
        samples = await collector.collect(now)
    """

    name = "db"

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK, *, probe_timeout_s: float = 3.0) -> None:
        self.db = db
        self.clock = clock
        self.probe_timeout_s = probe_timeout_s
        self.checkouts = 0
        self.up: bool | None = None
        self.last_error: str | None = None
        event.listen(db.engine.sync_engine.pool, "checkout", self._on_checkout)
        on_engine = getattr(db, "on_engine", None)
        if on_engine is not None:
            on_engine(self._moved)

    def _on_checkout(self, *_args: Any) -> None:
        self.checkouts += 1

    def _moved(self, old: Any, new: Any) -> None:
        """The pool was resized (a new engine): count checkouts on the new pool."""
        if event.contains(old.sync_engine.pool, "checkout", self._on_checkout):
            event.remove(old.sync_engine.pool, "checkout", self._on_checkout)
        event.listen(new.sync_engine.pool, "checkout", self._on_checkout)

    def close(self) -> None:
        """Remove the pool listener (when the collector is discarded before the engine)."""
        pool = self.db.engine.sync_engine.pool
        if event.contains(pool, "checkout", self._on_checkout):
            event.remove(pool, "checkout", self._on_checkout)
        off_engine = getattr(self.db, "off_engine", None)
        if off_engine is not None:
            off_engine(self._moved)

    async def _probe(self) -> tuple[float, float]:
        started = self.clock.monotonic()
        async with self.db.engine.connect() as conn:
            acquired = self.clock.monotonic()
            await conn.execute(text("SELECT 1"))
        return acquired - started, self.clock.monotonic() - started

    def _set_state(self, up: bool, error: str | None) -> None:
        if up and self.up is False:
            log.info("database reachable again")
        elif not up and self.up is not False:
            log.warning("database unreachable: %s", error)
        self.up, self.last_error = up, error

    async def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        try:
            acquire_s, ping_s = await asyncio.wait_for(self._probe(), timeout=self.probe_timeout_s)
        except asyncio.TimeoutError:
            self._set_state(False, f"no answer within {self.probe_timeout_s:g}s")
            out.append(Sample(m.DB_UP, 0.0))
        except Exception as exc:  # noqa: BLE001 - any failure means "down", with the reason logged
            self._set_state(False, f"{type(exc).__name__}: {exc}"[:300])
            out.append(Sample(m.DB_UP, 0.0))
        else:
            self._set_state(True, None)
            out += [Sample(m.DB_UP, 1.0), Sample(m.DB_PING_SECONDS, max(0.0, ping_s)),
                    Sample(m.DB_POOL_ACQUIRE_SECONDS, max(0.0, acquire_s))]
        pool = self.db.engine.sync_engine.pool
        for metric, attr in ((m.DB_POOL_SIZE, "size"), (m.DB_POOL_CHECKED_OUT, "checkedout"),
                             (m.DB_POOL_CHECKED_IN, "checkedin"), (m.DB_POOL_OVERFLOW, "overflow")):
            method = getattr(pool, attr, None)
            if callable(method):
                try:
                    value = float(method())
                except Exception:  # noqa: BLE001 - pool internals vary by class
                    continue
                out.append(Sample(metric, max(0.0, value)))
        out.append(Sample(m.DB_POOL_CHECKOUTS_TOTAL, float(self.checkouts)))
        out.append(Sample(m.DB_TRANSIENT_ERRORS_TOTAL, float(getattr(self.db, "transient_errors", 0))))
        return out
