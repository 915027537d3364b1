"""Delivering one outbox row: returns an ``Outcome``; the dispatch loop records it.

    delivery = RowDelivery(rows, outbox, transport, pacer, stats, outage, backoff=Backoff(1, 30))
    outcome = await delivery.deliver(row)      # Sent | RetryAt | Dead | TokenRefused

Rules kept here:

* "message is not modified" counts as delivered; "can't parse entities" resends the row as
  plain text (``plain_fallback``); text over 4096 units is split into messages, paced, with
  the keyboard on the last part. Progress through a split message is stored after each part
  (``SenderQueries.save_progress``) so a restarted sender resumes, never repeats a part.
* An edit of a picture changes its caption; an edit whose target will never be sent is dead.
* A group upgraded to a supergroup: every pending row of the old chat moves to the new id.
* A command reply (``is_reply``) older than ``REPLY_LATE_AFTER_S`` when it finally goes out
  (Telegram was away) is sent once, headed "Late reply", so nobody mistakes it for news.
* 429: the chat (several chats at once: everything) is held for ``retry_after``; 5xx and
  network errors retry with ``app.backoff.Backoff``; 401: ``TokenRefused`` (sending stops).
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from app.backoff import Backoff
from app.clock import SYSTEM_CLOCK, Clock
from delivery.html import MAX_CAPTION_LEN, HtmlError, esc, split_html, split_text, to_plain, utf16_len, visible_len
from delivery.limits import Pacer
from delivery.models import PENDING, SENT, OutboxMessage
from delivery.outage import OutageWatch, human_duration
from delivery.outcome import Dead, Outcome, RetryAt, Sent, TokenRefused
from delivery.queries import SenderQueries
from delivery.stats import SenderStats
from delivery.store import Outbox
from delivery.transport import (
    ChatMigrated,
    NotModified,
    ParseError,
    PermanentError,
    RetryAfter,
    TemporaryError,
    Transport,
    TransportError,
    Unauthorized,
)

log = logging.getLogger(__name__)

MULTI_CHAT_429_WINDOW_S = 1.0
REPLY_LATE_AFTER_S = 60.0  # a command reply older than this when sent is headed "Late reply"


@dataclass
class Progress:
    """Parts of one row already delivered (so a retry resumes, never repeats); mirrored on the row."""

    pieces_sent: int = 0
    first_message_id: int | None = None
    delivered: bool = False


def late_header(age_s: float) -> str:
    """The line put above a command reply that waited ``age_s`` seconds for Telegram."""
    return f"⏳ <i>Late reply: Telegram was unreachable; you asked {esc(human_duration(age_s))} ago.</i>\n\n"


class RowDelivery:
    """Sends one row through a ``Transport``; see the module docstring."""

    def __init__(self, rows: SenderQueries, outbox: Outbox, transport: Transport, pacer: Pacer,
                 stats: SenderStats, outage: OutageWatch, *, backoff: Backoff, owner: str, lease_s: float,
                 edit_wait_s: float = 1.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rows = rows
        self.outbox = outbox
        self.transport = transport
        self.pacer = pacer
        self.stats = stats
        self.outage = outage
        self.backoff = backoff
        self.owner = owner
        self.lease_s = lease_s
        self.edit_wait_s = edit_wait_s
        self.clock = clock
        self.progress: dict[int, Progress] = {}
        self.migrated: dict[int, int] = {}  # old group id -> supergroup id, learnt from Telegram
        self._recent_429: dict[int, float] = {}

    async def deliver(self, row: OutboxMessage) -> Outcome:
        assert row.id is not None
        progress = self.progress.get(row.id)
        if progress is None:  # resume what an earlier attempt (maybe another process) delivered
            progress = self.progress[row.id] = Progress(row.pieces_sent or 0, row.first_message_id)
        if progress.delivered:  # delivered earlier by this sender; only the marking failed
            return Sent(progress.first_message_id)
        new_chat = self.migrated.get(row.chat_id)
        if new_chat is not None:
            await self._move_chat(row, new_chat, "known migration")
            return RetryAt(self.clock.time(), f"chat migrated to {new_chat}", counted=False)
        try:
            if row.method == "edit":
                outcome = await self._deliver_edit(row, progress)
            else:
                outcome = await self._deliver_send(row, progress)
        except TransportError as exc:
            return await self._on_error(row, exc)
        if isinstance(outcome, Sent):
            progress.delivered = True
        return outcome

    def forget(self, row_id: int) -> None:
        """The row's outcome is recorded: drop what this sender remembered of it."""
        self.progress.pop(row_id, None)

    # ------------------------------------------------------------------ kinds of rows

    def _pieces(self, row: OutboxMessage, text: str, limit: int = 4096) -> tuple[list[str], str | None]:
        if not row.plain_fallback:
            try:
                return split_html(text, limit), "HTML"
            except HtmlError as exc:
                log.warning("outbox row %s (%s): invalid HTML (%s); sending as plain text",
                            row.id, row.idempotency_key, exc)
                row.plain_fallback = True
                self.stats.plain_fallbacks += 1
        return split_text(to_plain(text), limit), None

    def _text(self, row: OutboxMessage) -> str:
        age = self.clock.time() - row.created_at
        if row.is_reply and age > REPLY_LATE_AFTER_S:
            self.stats.late_replies += 1
            log.info("outbox reply %s to chat %s goes out %.0fs late, marked as late", row.id, row.chat_id, age)
            return late_header(age) + row.text
        return row.text

    async def _deliver_send(self, row: OutboxMessage, progress: Progress) -> Outcome:
        text = self._text(row)
        markup = json.loads(row.reply_markup) if row.reply_markup else None
        while True:
            pieces, parse_mode = self._pieces(row, text)
            units: list[tuple[str, str | None, dict | None]] = []
            if row.method == "photo" and row.photo is not None:
                # In plain mode the caption is the visible text, never the raw HTML; both
                # limits are in UTF-16 units as Telegram counts them.
                caption = text if parse_mode else to_plain(text)
                try:
                    caption_fits = (visible_len(caption) if parse_mode else utf16_len(caption)) <= MAX_CAPTION_LEN
                except HtmlError:
                    caption_fits = False
                units.append(("photo", caption if caption_fits and caption.strip() else None, markup))
                if not caption_fits:
                    units += [("text", p, None) for p in pieces]
            else:
                units = [("text", p, markup if i == len(pieces) - 1 else None) for i, p in enumerate(pieces)]
            try:
                for index in range(progress.pieces_sent, len(units)):
                    if index > 0:
                        await self._pace(row.chat_id)
                    kind, body, keyboard = units[index]
                    message_id = await self._call(row, kind, body, parse_mode, keyboard)
                    if progress.first_message_id is None:
                        progress.first_message_id = message_id
                    progress.pieces_sent = index + 1
                    self.stats.messages += 1
                    if index + 1 < len(units):
                        await self._save_progress(row, progress)
                return Sent(progress.first_message_id)
            except ParseError as exc:
                if row.plain_fallback:
                    return Dead(f"refused even as plain text: {exc}")
                log.warning("outbox row %s (%s): Telegram refused the HTML (%s); resending as plain text",
                            row.id, row.idempotency_key, exc)
                row.plain_fallback = True
                self.stats.plain_fallbacks += 1
                await self._pace(row.chat_id)  # the refused call counted towards the limits

    async def _deliver_edit(self, row: OutboxMessage, progress: Progress) -> Outcome:
        message_id = row.message_id
        caption = False
        if row.target_key is not None:
            target = await self.outbox.get(row.target_key)
            if target is None or target.status not in (PENDING, SENT):  # dead, superseded, ...: never sent
                state = "missing" if target is None else target.status
                return Dead(f"edit target {row.target_key!r} will never be sent ({state})")
            if target.status != SENT or target.telegram_message_id is None:
                return RetryAt(self.clock.time() + self.edit_wait_s, "edit target not sent yet", counted=False)
            message_id = target.telegram_message_id
            caption = target.method == "photo"
        if message_id is None:
            return Dead("edit without a message to edit")
        kind, limit = ("edit_caption", MAX_CAPTION_LEN) if caption else ("edit", 4096)
        markup = json.loads(row.reply_markup) if row.reply_markup else None
        while True:
            pieces, parse_mode = self._pieces(row, row.text, limit)
            if len(pieces) > 1:
                log.warning("outbox edit %s (%s): text longer than one %s; keeping the first part",
                            row.id, row.idempotency_key, "caption" if caption else "message")
            try:
                progress.first_message_id = await self._call(row, kind, pieces[0], parse_mode, markup,
                                                             message_id=message_id)
                self.stats.messages += 1
                return Sent(progress.first_message_id)
            except NotModified:
                self.stats.not_modified += 1
                progress.first_message_id = message_id
                return Sent(message_id)
            except ParseError as exc:
                if row.plain_fallback:
                    return Dead(f"refused even as plain text: {exc}")
                row.plain_fallback = True
                self.stats.plain_fallbacks += 1
                await self._pace(row.chat_id)

    # ------------------------------------------------------------------ one request

    async def _call(self, row: OutboxMessage, kind: str, body: str | None, parse_mode: str | None,
                    markup: dict | None, *, message_id: int | None = None) -> int:
        try:
            if kind == "photo":
                result = await self.transport.send_photo(row.chat_id, row.photo or b"", caption=body,
                                                         reply_markup=markup, parse_mode=parse_mode)
            elif kind == "edit":
                result = await self.transport.edit_text(row.chat_id, int(message_id or 0), body or "",
                                                        reply_markup=markup, parse_mode=parse_mode)
            elif kind == "edit_caption":
                result = await self.transport.edit_caption(row.chat_id, int(message_id or 0), body or "",
                                                           reply_markup=markup, parse_mode=parse_mode)
            else:
                result = await self.transport.send_text(row.chat_id, body or "", reply_markup=markup,
                                                        parse_mode=parse_mode)
        except (ParseError, NotModified):
            await self.outage.reachable()  # a definite answer: Telegram is there
            raise
        await self.outage.reachable()
        return result

    async def _on_error(self, row: OutboxMessage, exc: TransportError) -> Outcome:
        now = self.clock.time()
        if isinstance(exc, RetryAfter):
            self.stats.count_error("429")
            self.stats.rate_limited += 1
            self._on_429(row.chat_id, exc.retry_after)
            self.outage.reachable_soon()  # throttled, but reachable
            return RetryAt(now + exc.retry_after, f"429 retry after {exc.retry_after:g}s", counted=False)
        if isinstance(exc, Unauthorized):
            self.stats.count_error("unauthorized")
            self.outage.reachable_soon()
            return TokenRefused(str(exc))
        if isinstance(exc, TemporaryError):
            self.stats.count_error("temporary")
            self.stats.temporary_errors += 1
            await self.outage.begins(str(exc))
            return RetryAt(now + self.backoff.delay(row.attempts), str(exc))
        if isinstance(exc, ChatMigrated):
            self.stats.count_error("migrated")
            self.outage.reachable_soon()
            self.migrated[row.chat_id] = exc.migrate_to_chat_id
            await self._move_chat(row, exc.migrate_to_chat_id, str(exc).splitlines()[0])
            return RetryAt(now, f"chat migrated to {exc.migrate_to_chat_id}", counted=False)
        self.stats.count_error("permanent")
        self.outage.reachable_soon()
        return Dead(str(exc) or type(exc).__name__)

    async def _pace(self, chat_id: int) -> None:
        """Wait for the chat's next slot (one sleep: a manual clock in tests never moves by itself)."""
        delay = self.pacer.ready_in(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)
        self.pacer.reserve(chat_id)

    def _on_429(self, chat_id: int, retry_after: float) -> None:
        now = self.clock.monotonic()
        self.pacer.hold_chat(chat_id, retry_after)
        self._recent_429 = {c: t for c, t in self._recent_429.items() if now - t <= MULTI_CHAT_429_WINDOW_S}
        self._recent_429[chat_id] = now
        if len(self._recent_429) > 1:  # several chats throttled at once: the global limit
            self.pacer.hold_all(retry_after)

    async def _save_progress(self, row: OutboxMessage, progress: Progress) -> None:
        assert row.id is not None
        try:
            await self.rows.save_progress(row.id, pieces_sent=progress.pieces_sent,
                                          first_message_id=progress.first_message_id,
                                          plain_fallback=row.plain_fallback, owner=self.owner, lease_s=self.lease_s)
        except Exception:  # noqa: BLE001 - this process still remembers; only a restart could repeat
            log.exception("outbox row %s: could not store progress (%d parts sent)", row.id, progress.pieces_sent)

    async def _move_chat(self, row: OutboxMessage, new_chat_id: int, why: str) -> None:
        old_chat_id = row.chat_id
        moved = await self.rows.move_chat(old_chat_id, new_chat_id)
        row.chat_id = new_chat_id
        log.error("chat %s was upgraded to supergroup %s (%s): %d pending message(s) moved there; "
                  "update the configured chat id (e.g. TELEGRAM_ALERT_CHAT_ID) to %s",
                  old_chat_id, new_chat_id, why, moved, new_chat_id)
