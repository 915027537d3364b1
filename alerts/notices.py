"""Watching the watcher, in the chat: a short "started" notice and a "stopping" notice.

At start the alert chat learns the version, the database, and what the service resumed (open
incidents, silences, maintenance); on a clean stop it hears that the service is going down, so
a silence afterwards is not mistaken for health::

    notices = Notices(outbox, settings.telegram_alert_chat_id, clock, started_at=ctx.started_at,
                      database=db.dialect, incidents=alerts.incidents, quiet=alerts.quiet)
    await notices.started()            # once the outbox sender runs
    ...
    await notices.stopping()           # BEFORE the supervisor stops the outbox sender:
                                       # queues it and waits (at most wait_s) until it was sent

Idempotency: the started notice is keyed by the start's minute (a crash loop restarting every
few seconds says "started" at most once a minute), the stopping notice by the start time (once
per process). Every dynamic string goes through ``delivery.html.esc``. Reading what was resumed
never stops the start: a service that fails to answer is named as unknown.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from alerts.api import IncidentService, MaintenanceView, QuietService
from app.build_info import version as running_version
from app.clock import SYSTEM_CLOCK, Clock
from app.durations import fmt_duration
from delivery.html import bold, esc, truncate
from delivery.models import INFO, SENT, WARNING
from delivery.store import Outbox

log = logging.getLogger(__name__)

STOP_WAIT_S = 3.0
POLL_S = 0.05
LIST_MAX = 3          # incidents / silences named one by one; more are counted
READ_TIMEOUT_S = 5.0

Sleep = Callable[[float], Awaitable[object]]


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%H:%M UTC")


class Notices:
    """The started and stopping notices (see the module docstring)."""

    def __init__(self, outbox: Outbox, chat_id: int | None, clock: Clock = SYSTEM_CLOCK, *,
                 started_at: float, database: str, version: str | None = None, market: str | None = None,
                 incidents: IncidentService | None = None, quiet: QuietService | None = None,
                 stop_wait_s: float = STOP_WAIT_S, sleep: Sleep = asyncio.sleep) -> None:
        self.outbox = outbox
        self.chat_id = chat_id
        self.clock = clock
        self.started_at = started_at
        self.database = database
        self.version = version or running_version()
        self.market = market
        self.incidents = incidents
        self.quiet = quiet
        self.stop_wait_s = stop_wait_s
        self.sleep = sleep

    @property
    def started_key(self) -> str:
        return f"notice:started:{int(self.started_at // 60)}"

    @property
    def stopping_key(self) -> str:
        return f"notice:stopping:{int(self.started_at)}"

    # --- started ----------------------------------------------------------------------------
    async def _read(self, what: str, fn: Callable[[], Awaitable[object]]) -> tuple[bool, object]:
        try:
            return True, await asyncio.wait_for(fn(), READ_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the notice goes out anyway
            log.warning("started notice: could not read %s: %s: %s", what, type(exc).__name__, exc)
            return False, None

    async def resumed_lines(self) -> list[str]:
        """What the service resumed, one HTML line per kind (empty when nothing is open)."""
        now = self.clock.time()
        lines: list[str] = []
        if self.incidents is not None:
            ok, found = await self._read("open incidents", self.incidents.open_incidents)
            if not ok:
                lines.append("• open incidents: unknown (could not be read)")
            elif isinstance(found, list) and found:
                named = ", ".join(f"#{i.id} {truncate(i.title, 60)}"
                                  f" ({esc(i.severity)}{', acknowledged' if i.status == 'acknowledged' else ''})"
                                  for i in found[:LIST_MAX])
                more = f" and {len(found) - LIST_MAX} more" if len(found) > LIST_MAX else ""
                lines.append(f"• {len(found)} open incident{'s' if len(found) != 1 else ''}: {named}{more}")
        if self.quiet is not None:
            ok, found = await self._read("silences", self.quiet.silences)
            if not ok:
                lines.append("• silences: unknown (could not be read)")
            elif isinstance(found, list) and found:
                named = ", ".join(f"{truncate(s.matchers, 60)} (ends {esc(_hhmm(s.ends_at))})" for s in found[:LIST_MAX])
                more = f" and {len(found) - LIST_MAX} more" if len(found) > LIST_MAX else ""
                lines.append(f"• {len(found)} active silence{'s' if len(found) != 1 else ''}: {named}{more}")
            ok, window = await self._read("maintenance", self.quiet.maintenance)
            if not ok:
                lines.append("• maintenance: unknown (could not be read)")
            elif isinstance(window, MaintenanceView) and window.ends_at > now:
                lines.append(f"• maintenance on until {esc(_hhmm(window.ends_at))}"
                             f" ({esc(fmt_duration(window.ends_at - now))} left)"
                             + (f": {truncate(window.reason, 80)}" if window.reason else ""))
        return lines

    async def started_text(self) -> str:
        head = f"🟢 {bold('tokenwatch started')} · version {esc(self.version)} · database {esc(self.database)}"
        if self.market:
            head += f" · market {esc(self.market)}"
        resumed = await self.resumed_lines()
        if not resumed:
            return head + "\nResumed: nothing open (no incidents, silences or maintenance)."
        return head + "\nResumed:\n" + "\n".join(resumed)

    async def started(self) -> bool:
        """Queue the started notice; False when this start was announced already (or no chat)."""
        if self.chat_id is None:
            return False
        try:
            return await self.outbox.enqueue(self.chat_id, await self.started_text(), key=self.started_key,
                                             priority=INFO)
        except Exception as exc:  # noqa: BLE001 - a notice never stops the start
            log.warning("started notice not queued: %s: %s", type(exc).__name__, exc)
            return False

    # --- stopping ---------------------------------------------------------------------------
    def stopping_text(self, reason: str = "clean stop") -> str:
        uptime = fmt_duration(max(0.0, self.clock.time() - self.started_at))
        return (f"🔴 {bold('tokenwatch stopping')} ({esc(reason)}) after {esc(uptime)} up · "
                f"version {esc(self.version)}\nAlerts and the heartbeat pause until it is back.")

    async def stopping(self, reason: str = "clean stop") -> bool:
        """Queue the stopping notice and wait up to ``stop_wait_s`` until it was sent; True when sent.

        Call it before the outbox sender stops (it stops right after); a notice still pending
        then goes out at the next start (its key keeps it to once)."""
        if self.chat_id is None:
            return False
        try:
            await self.outbox.enqueue(self.chat_id, self.stopping_text(reason), key=self.stopping_key,
                                      priority=WARNING)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stop_wait_s
            while True:
                row = await self.outbox.get(self.stopping_key)
                if row is not None and row.status == SENT:
                    return True
                if loop.time() >= deadline:
                    log.info("stopping notice not sent within %.1fs; it goes out at the next start", self.stop_wait_s)
                    return False
                await self.sleep(POLL_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - stopping goes on regardless
            log.warning("stopping notice failed: %s: %s", type(exc).__name__, exc)
            return False
