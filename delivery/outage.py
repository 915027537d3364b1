"""Telegram unreachable: noticing it, the fallback for critical alerts, and the notice afterwards.

    outage = OutageWatch(rows, outbox, settings, stats, clock)
    await outage.begins("502 Bad Gateway")   # logged once; ``since`` is set
    await outage.fallback()                   # after TELEGRAM_OUTAGE_FALLBACK_AFTER_S: critical rows
                                              # logged at ERROR and POSTed to FALLBACK_WEBHOOK_URL, once each
    await outage.reachable()                  # Telegram answered: each chat that waited gets a notice

An outage longer than ``notice_after_s`` ends with a short message to each chat that waited,
saying how many of its messages were delayed and for how long.
"""
from __future__ import annotations

import asyncio
import logging

from app.clock import SYSTEM_CLOCK, Clock
from app.settings import Settings
from delivery.html import to_plain
from delivery.models import WARNING, OutboxMessage
from delivery.queries import SenderQueries
from delivery.stats import SenderStats
from delivery.store import Outbox
from delivery.webhook import WebhookPoster

log = logging.getLogger(__name__)


def human_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 10m``."""
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class OutageWatch:
    """Tracks one Telegram outage at a time (``since``: epoch seconds, or None when reachable)."""

    def __init__(self, rows: SenderQueries, outbox: Outbox, settings: Settings, stats: SenderStats,
                 clock: Clock = SYSTEM_CLOCK, *, notice_after_s: float = 30.0, fallback_retry_s: float = 5.0,
                 fallback_timeout_s: float = 5.0) -> None:
        self.rows = rows
        self.outbox = outbox
        self.settings = settings
        self.stats = stats
        self.clock = clock
        self.notice_after_s = notice_after_s
        self.fallback_retry_s = fallback_retry_s
        self.fallback_timeout_s = fallback_timeout_s
        self.since: float | None = None
        self._fallback_logged: set[int] = set()
        self._next_fallback_check = 0.0
        self._poster = WebhookPoster(fallback_timeout_s)
        self._background: set[asyncio.Task] = set()

    async def begins(self, error: str) -> None:
        if self.since is not None:
            return
        self.since = self.clock.time()  # claimed first: concurrent failures log once
        estimate = await self._estimate_start()
        if self.since is not None:
            self.since = min(self.since, estimate)
        log.warning("Telegram unreachable (%s); messages stay queued", error)

    async def _estimate_start(self) -> float:
        """Now, or earlier when rows already failed before a restart of this process."""
        now = self.clock.time()
        try:
            found = await self.rows.earliest_failed_pending()
        except Exception:  # noqa: BLE001
            found = None
        return min(now, found) if found is not None else now

    def reachable_soon(self) -> None:
        """A definite answer (even a refusal) means Telegram is reachable; end the outage in the background."""
        if self.since is not None:
            task = asyncio.get_running_loop().create_task(self.reachable())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def reachable(self) -> None:
        started = self.since
        if started is None:
            return
        self.since = None
        now = self.clock.time()
        duration = max(0.0, now - started)
        log.warning("Telegram reachable again after %.1fs", duration)
        if duration < self.notice_after_s:
            return
        try:
            for chat_id, count in await self.rows.delayed_per_chat(now, started):
                text = (f"⚠️ Telegram was unreachable for {human_duration(duration)}: "
                        f"{count} message{'s' if count != 1 else ''} to this chat "
                        f"{'were' if count != 1 else 'was'} delayed and follow{'s' if count == 1 else ''} now.")
                if await self.outbox.enqueue(chat_id, text, key=f"outage-notice:{int(started)}:{chat_id}",
                                             priority=WARNING):
                    self.stats.outage_notices += 1
        except Exception:  # noqa: BLE001
            log.exception("could not queue the delayed-messages notice")

    async def fallback(self, *, force: bool = False) -> None:
        """Past ``TELEGRAM_OUTAGE_FALLBACK_AFTER_S``: each pending critical alert is logged and posted once."""
        started = self.since
        if started is None:
            return
        now = self.clock.time()
        if now - started < self.settings.telegram_outage_fallback_after_s:
            return
        mono = self.clock.monotonic()
        if not force and mono < self._next_fallback_check:
            return
        self._next_fallback_check = mono + self.fallback_retry_s
        for row in await self.rows.critical_without_fallback():
            assert row.id is not None
            if row.id not in self._fallback_logged:
                self._fallback_logged.add(row.id)
                log.error("CRITICAL message undeliverable via Telegram for %.1fs (chat %s, key %s): %s",
                          now - started, row.chat_id, row.idempotency_key, to_plain(row.text)[:500])
            if await self._post(row, started):
                await self.rows.flag_fallback_sent(row.id)

    async def _post(self, row: OutboxMessage, started: float) -> bool:
        url = self.settings.fallback_webhook_url
        if not url:
            return True  # the ERROR log line is the fallback
        payload = {
            "source": "tokenwatch",
            "kind": "telegram_outage_fallback",
            "chat_id": row.chat_id,
            "key": row.idempotency_key,
            "priority": "critical",
            "text": to_plain(row.text),
            "html": row.text,
            "created_at": row.created_at,
            "telegram_unreachable_since": started,
            "attempts": row.attempts,
            "last_error": row.last_error,
        }
        error = await self._poster.post(url, payload)
        if error is None:
            self.stats.fallback_posts += 1
            return True
        self.stats.fallback_failures += 1
        log.warning("fallback webhook failed for outbox row %s: %s", row.id, error)
        return False

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self._poster.close()
