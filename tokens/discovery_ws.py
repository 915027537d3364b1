"""Discovery from PumpPortal's websocket: migration events become ``monitoring`` tokens.

    listener = MigrationListener(url, session, intake, min_backoff_s=0.5, max_backoff_s=30)
    supervisor.add(LoopSpec("pipeline.discovery_ws", listener.run))   # connect, subscribe, read, reconnect
    listener.state            # "connecting" | "connected" | "disconnected" | "stopped"
    await listener.stop()     # after the loop was cancelled: closes the socket, state "stopped"

Protocol: send ``{"method": "subscribeMigration"}``; the first reply is a confirmation
(``{"message": ...}``, ignored); then events ``{"signature", "mint", "txType", "pool"}``
with ``name``/``symbol`` sometimes (untrusted text: cleaned by ``tokens.text.clean_text`` in the
intake). Messages that are not JSON objects, or lack a valid
base58 mint (32-44 chars), count as garbage; known mints count as duplicates (in
``PipelineCounters``). A dropped connection is retried with jittered exponential backoff
between ``min_backoff_s`` and ``max_backoff_s``. Only state changes are logged
(connected, disconnected, reconnected), never every failed attempt.

An event whose insert fails (database down) is kept in ``pending`` and retried before
the next event and on ``flush_pending()``: discovery loses nothing.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Any

import aiohttp

from app.backoff import Backoff
from app.clock import SYSTEM_CLOCK, Clock
from tokens.failure_streak import FailureStreak
from tokens.intake import TokenIntake
from tokens.ratelimit import Sleep
from tokens.text import clean_text

log = logging.getLogger(__name__)

SUBSCRIBE = {"method": "subscribeMigration"}
MAX_PENDING = 10_000


class MigrationListener:
    """The websocket client (see module docstring).

        listener = MigrationListener("ws://127.0.0.1:8001/api/data", session, intake)
        task = asyncio.create_task(listener.run()); ...; task.cancel(); await listener.stop()
    """

    def __init__(self, url: str, session: aiohttp.ClientSession, intake: TokenIntake, *,
                 min_backoff_s: float = 0.5, max_backoff_s: float = 30.0, clock: Clock = SYSTEM_CLOCK,
                 sleep: Sleep = asyncio.sleep, heartbeat_s: float = 30.0, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self.session = session
        self.intake = intake
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._sleep = sleep
        self.heartbeat_s = heartbeat_s
        self.connect_timeout_s = connect_timeout_s
        self.state = "idle"
        self.connects = 0
        self.disconnects = 0
        self.failed_attempts = 0
        self.messages = 0
        self.events = 0
        self.confirmations = 0
        self.server_errors = 0
        self.insert_errors = 0
        self.storing = FailureStreak(log, "storing discovered tokens", unit="inserts", clock=clock)
        self.connected_since: float | None = None
        self.last_message_at: float | None = None
        self.last_error: str | None = None
        self.pending: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING)
        self._down_logged = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    @property
    def counters(self):  # the shared PipelineCounters
        return self.intake.counters

    async def stop(self) -> None:
        """Close the socket, if one is open, and say so; ``run()`` itself is ended by cancelling it
        (the supervisor does)."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        self.state = "stopped"

    @property
    def reconnect_backoff(self) -> Backoff:
        """Jittered delays between reconnects, within ``[min_backoff_s, max_backoff_s]`` however many failed."""
        return Backoff(base_s=self.min_backoff_s, max_s=self.max_backoff_s, min_s=self.min_backoff_s)

    async def run(self) -> None:
        """Connect, read, and reconnect until cancelled."""
        attempt = 0
        while True:
            self.state = "connecting"
            try:
                timeout = aiohttp.ClientWSTimeout(ws_close=5.0)
                async with self.session.ws_connect(self.url, heartbeat=self.heartbeat_s, timeout=timeout) as ws:
                    self._ws = ws
                    await ws.send_json(SUBSCRIBE)
                    self._on_connected(attempt)
                    attempt = 0
                    await self._read(ws)
                reason = f"closed by server (code {ws.close_code})"
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # noqa: BLE001 - the listener must outlive any surprise
                log.exception("pumpportal listener error")
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
            self._on_disconnected(reason)
            await self._sleep(self.reconnect_backoff.delay(attempt))
            attempt += 1

    def _on_connected(self, attempt: int) -> None:
        self.connects += 1
        self.connected_since = self.clock.time()
        self.state = "connected"
        self._down_logged = False
        if self.connects == 1:
            log.info("pumpportal connected: %s", self.url)
        else:
            log.info("pumpportal reconnected after %d failed attempts", attempt)

    def _on_disconnected(self, reason: str) -> None:
        self.last_error = reason
        if self.state == "connected":
            self.disconnects += 1
            log.warning("pumpportal disconnected: %s; reconnecting with backoff", reason)
        else:
            self.failed_attempts += 1
            if not self._down_logged and self.connects == 0:
                log.warning("pumpportal unreachable: %s; retrying with backoff", reason)
            else:
                log.debug("pumpportal connect failed: %s", reason)
        self._down_logged = True
        self.state = "disconnected"
        self.connected_since = None

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self.handle_text(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self.messages += 1
                self.counters.garbage += 1
            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break

    async def handle_text(self, text: str) -> None:
        """Handle one text frame (public for tests and replay)."""
        self.messages += 1
        self.last_message_at = self.clock.time()
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            self.counters.garbage += 1
            return
        if not isinstance(payload, dict):
            self.counters.garbage += 1
            return
        if "mint" not in payload:
            if "message" in payload:
                self.confirmations += 1
            elif "errors" in payload:
                self.server_errors += 1
                log.warning("pumpportal error message: %s", clean_text(str(payload.get("errors")), 200))
            else:
                self.counters.garbage += 1
            return
        self.events += 1
        await self.flush_pending()
        await self._admit(payload)
        self.intake.stages.set_queue("discovery", len(self.pending))

    async def _admit(self, payload: dict[str, Any]) -> bool:
        try:
            await self.intake.add(payload.get("mint"), name=payload.get("name"), symbol=payload.get("symbol"),
                                  source="pumpportal")
            self.storing.succeeded()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the event, retry later
            self.insert_errors += 1
            self.pending.append(payload)
            self.storing.failed(f"could not store a discovered token ({type(exc).__name__}); "
                                f"{len(self.pending)} kept for retry",
                                extra={"mint": str(payload.get("mint"))[:64]})
            return False

    async def flush_pending(self) -> int:
        """Retry events whose insert failed; returns how many were stored."""
        stored = 0
        while self.pending:
            payload = self.pending.popleft()
            if not await self._admit(payload):
                break  # _admit put it back at the end; try again later
            stored += 1
        return stored
