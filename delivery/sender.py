"""OutboxSender: delivers outbox rows to Telegram without losing, duplicating or spamming.

Rules, in the order they matter to an operator:

* Nothing is dropped for a temporary reason. 5xx, network errors and unclassified answers
  leave the row ``pending`` with a jittered exponential backoff, however long Telegram is
  away. Only a permanent refusal (chat not found, bot blocked) makes a row ``dead``,
  with the error stored and logged.
* Order: per chat, critical before warning before info, then oldest first; at most one
  request in flight per chat; chats are served in parallel.
* Pacing (``Pacer``) keeps under Telegram's limits so 429s are rare; a 429 holds that
  chat (several chats at once: everything) for ``retry_after``.
* "message is not modified" counts as delivered; "can't parse entities" resends the row
  as plain text (``plain_fallback=True``); text over 4096 units is split into messages.
  Progress through a split message (``pieces_sent``, ``first_message_id``) is stored on the
  row after each part, so a restarted sender resumes where the last one stopped.
* Edits of a picture (a ``photo`` row) change its caption; an edit whose target was
  superseded or is otherwise never going to be sent is dead, never retried forever.
* A group upgraded to a supergroup ("migrate_to_chat_id"): every pending row of the old
  chat moves to the new id (logged at ERROR: update the configured chat id) and is sent there.
* A row is marked ``sent`` together with its ``telegram_message_id``; a row this sender
  delivered is never sent again by it, even if marking it failed at first.
* Telegram unreachable for longer than ``telegram_outage_fallback_after_s``: each pending
  CRITICAL row is logged at ERROR and POSTed as JSON to ``fallback_webhook_url`` (once per
  row, ``fallback_sent``). When Telegram answers again, each chat that waited gets a short
  notice saying how many messages were delayed and for how long.

Usage::

    sender = OutboxSender(db, outbox, BotTransport(bot), settings)
    task = asyncio.create_task(sender.run())
    ...
    await sender.stop()

    await sender.drain_once()     # in tests: send everything that may go out now, then return
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, update
from sqlmodel import select

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.recent_errors import RecentErrors
from app.settings import Settings
from delivery.models import CRITICAL, DEAD, PENDING, SENT, WARNING, OutboxMessage
from delivery.limits import Pacer
from delivery.store import Outbox
from delivery.transport import (
    ChatMigrated,
    NotModified,
    ParseError,
    PermanentError,
    RetryAfter,
    TemporaryError,
    Transport,
)
from delivery.html import MAX_CAPTION_LEN, HtmlError, split_html, split_text, to_plain, utf16_len, visible_len

log = logging.getLogger(__name__)

MULTI_CHAT_429_WINDOW_S = 1.0
MAX_INTERNAL_FAILURES = 5  # unexpected exceptions (bugs) on one row before it is parked as dead


@dataclass
class SenderStats:
    """Counters for metrics and /outbox views."""

    sent: int = 0
    messages: int = 0  # Telegram messages, > sent when long texts are split
    dead: int = 0
    temporary_errors: int = 0
    rate_limited: int = 0
    plain_fallbacks: int = 0
    not_modified: int = 0
    fallback_posts: int = 0
    fallback_failures: int = 0
    outage_notices: int = 0
    internal_errors: int = 0
    by_error: dict[str, int] = field(default_factory=dict)
    recent_errors: RecentErrors = field(default_factory=RecentErrors)  # for /status's "Last errors"


@dataclass
class _Progress:
    """Pieces of one row already delivered (so a retry resumes, never repeats); mirrored on the row."""

    pieces_sent: int = 0
    first_message_id: int | None = None
    delivered: bool = False


class _Retry(Exception):
    """Internal: the row stays pending until ``at`` (epoch seconds)."""


class OutboxSender:
    """Sends pending outbox rows through a ``Transport`` (see the module docstring).

        sender = OutboxSender(db, outbox, BotTransport(bot), settings, clock)
        await sender.drain_once()
    """

    def __init__(self, db: Database, outbox: Outbox, transport: Transport, settings: Settings,
                 clock: Clock = SYSTEM_CLOCK, *, retry_base_s: float = 1.0, retry_max_s: float = 30.0,
                 poll_interval_s: float = 1.0, outage_notice_after_s: float = 30.0,
                 fallback_retry_s: float = 5.0, fallback_timeout_s: float = 5.0,
                 pacer: Pacer | None = None) -> None:
        self.db = db
        self.outbox = outbox
        self.transport = transport
        self.settings = settings
        self.clock = clock
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.poll_interval_s = poll_interval_s
        self.outage_notice_after_s = outage_notice_after_s
        self.fallback_retry_s = fallback_retry_s
        self.fallback_timeout_s = fallback_timeout_s
        self.pacer = pacer or Pacer.from_settings(settings, clock)
        self.stats = SenderStats()
        self.outage_since: float | None = None
        self._inflight: dict[int, asyncio.Task] = {}
        self._seq = 0  # bumped whenever a delivery task finishes
        self._finished_at_seq: dict[int, int] = {}  # chat id -> seq of its last finished task
        self._settled: OrderedDict[int, None] = OrderedDict()  # row ids this sender sent or killed
        self._progress: dict[int, _Progress] = {}
        self._migrated: dict[int, int] = {}  # old group id -> supergroup id, learnt from Telegram
        self._internal_failures: dict[int, int] = {}
        self._recent_429: dict[int, float] = {}
        self._fallback_logged: set[int] = set()
        self._next_fallback_check = 0.0
        self._stopping = False
        self._wake = asyncio.Event()
        self._http: Any = None
        self._background: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Deliver until :meth:`stop` is called. Never raises on delivery problems."""
        self._stopping = False
        log.info("outbox sender started")
        while not self._stopping:
            try:
                wait = await self._dispatch_ready()
                await self._maybe_fallback()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must survive a DB hiccup
                self.stats.internal_errors += 1
                log.exception("outbox sender pass failed; retrying")
                wait = self.poll_interval_s
            await self._sleep(wait)
        await self._join_inflight()
        log.info("outbox sender stopped")

    async def stop(self) -> None:
        """Stop after the requests in flight finish (their results are recorded)."""
        self._stopping = True
        self._wake.set()
        self.outbox.wake()
        await self._join_inflight()
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def drain_once(self) -> int:
        """One pass: start every row that may go out now, wait for them; return how many started."""
        started, _wait = await self._start_ready()
        await self._join_inflight()
        await self._maybe_fallback(force=True)
        return len(started)

    async def _join_inflight(self) -> None:
        while self._inflight:
            await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        self._wake.clear()
        outbox_wait = asyncio.ensure_future(self.outbox.wait_for_work(seconds))
        own_wait = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({outbox_wait, own_wait}, timeout=max(0.0, seconds),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (outbox_wait, own_wait):
                fut.cancel()

    # ------------------------------------------------------------------ dispatch

    async def _heads(self) -> list[OutboxMessage]:
        """The next pending row of every chat: lowest priority value, then oldest."""
        async def query(session) -> list[OutboxMessage]:
            rank = func.row_number().over(
                partition_by=OutboxMessage.chat_id, order_by=(OutboxMessage.priority, OutboxMessage.id)
            ).label("rank")
            ranked = select(OutboxMessage.id, rank).where(OutboxMessage.status == PENDING).subquery()
            stmt = (select(OutboxMessage).join(ranked, ranked.c.id == OutboxMessage.id)
                    .where(ranked.c.rank == 1).order_by(OutboxMessage.priority, OutboxMessage.id))
            return list((await session.exec(stmt)).all())

        return await self.db.run(query)

    async def _start_ready(self) -> tuple[list[int], float]:
        """Start a delivery task for each chat whose head row may go now; return (started, wait)."""
        seq_before = self._seq
        heads = await self._heads()
        now = self.clock.time()
        wait = self.poll_interval_s
        started: list[int] = []
        for row in heads:
            if row.chat_id in self._inflight or row.id in self._settled:
                continue
            if self._finished_at_seq.get(row.chat_id, -1) >= seq_before:
                wait = 0.0  # a task of this chat finished while we queried: the row may be stale
                continue
            if row.next_attempt_at > now:
                wait = min(wait, row.next_attempt_at - now)
                continue
            delay = self.pacer.ready_in(row.chat_id)
            if delay > 0:
                wait = min(wait, delay)
                continue
            self.pacer.reserve(row.chat_id)
            task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}")
            self._inflight[row.chat_id] = task
            task.add_done_callback(lambda _t, chat=row.chat_id: self._finished(chat))
            started.append(row.id)
        return started, wait

    async def _dispatch_ready(self) -> float:
        _started, wait = await self._start_ready()
        return wait

    def _finished(self, chat_id: int) -> None:
        self._inflight.pop(chat_id, None)
        self._finished_at_seq[chat_id] = self._seq
        self._seq += 1
        self._wake.set()

    def _settle(self, row_id: int) -> None:
        self._settled[row_id] = None
        while len(self._settled) > 10_000:
            self._settled.popitem(last=False)

    # ------------------------------------------------------------------ one row

    async def _deliver(self, row: OutboxMessage) -> None:
        try:
            await self._attempt(row)
        except _Retry:
            pass
        except Exception as exc:  # noqa: BLE001 - a bug or DB fault must not kill the loop
            self.stats.internal_errors += 1
            failures = self._internal_failures[row.id] = self._internal_failures.get(row.id, 0) + 1
            log.exception("outbox row %s (%s): unexpected error (%d)", row.id, row.idempotency_key, failures)
            error = f"internal: {type(exc).__name__}: {exc}"
            try:
                if failures >= MAX_INTERNAL_FAILURES:  # a row that always crashes must not block its chat
                    self._internal_failures.pop(row.id, None)
                    await self._dead(row, error)
                else:
                    await self._retry_later(row, error, self._backoff(row.attempts))
            except Exception:  # noqa: BLE001
                log.exception("outbox row %s: could not record the failure", row.id)

    async def _attempt(self, row: OutboxMessage) -> None:
        progress = self._progress.get(row.id)
        if progress is None:  # resume what an earlier attempt (maybe another process) delivered
            progress = self._progress[row.id] = _Progress(pieces_sent=row.pieces_sent or 0,
                                                          first_message_id=row.first_message_id)
        new_chat = self._migrated.get(row.chat_id)
        if new_chat is not None and not progress.delivered:
            await self._move_chat(row, new_chat, "known migration")
            raise await self._retry_later(row, f"chat migrated to {new_chat}", 0.0, count=False)
        if progress.delivered:  # delivered earlier by this sender; only the marking failed
            await self._mark_sent(row, progress)
            return
        if row.method == "edit":
            await self._deliver_edit(row, progress)
        else:
            await self._deliver_send(row, progress)
        progress.delivered = True
        await self._mark_sent(row, progress)

    def _pieces(self, row: OutboxMessage, limit: int = 4096) -> tuple[list[str], str | None]:
        if not row.plain_fallback:
            try:
                return split_html(row.text, limit), "HTML"
            except HtmlError as exc:
                log.warning("outbox row %s (%s): invalid HTML (%s); sending as plain text",
                            row.id, row.idempotency_key, exc)
                row.plain_fallback = True
                self.stats.plain_fallbacks += 1
        return split_text(to_plain(row.text), limit), None

    async def _deliver_send(self, row: OutboxMessage, progress: _Progress) -> None:
        while True:
            pieces, parse_mode = self._pieces(row)
            units: list[tuple[str, str | None]] = []
            if row.method == "photo" and row.photo is not None:
                # In plain mode the caption is the visible text, never the raw HTML; both
                # limits are in UTF-16 units as Telegram counts them.
                caption = row.text if parse_mode else to_plain(row.text)
                try:
                    caption_fits = (visible_len(caption) if parse_mode else utf16_len(caption)) <= MAX_CAPTION_LEN
                except HtmlError:
                    caption_fits = False
                units.append(("photo", caption if caption_fits and caption.strip() else None))
                if not caption_fits:
                    units += [("text", p) for p in pieces]
            else:
                units = [("text", p) for p in pieces]
            try:
                for index in range(progress.pieces_sent, len(units)):
                    if index > 0:
                        await self._pace(row.chat_id)
                    kind, body = units[index]
                    message_id = await self._call(row, kind, body, parse_mode)
                    if progress.first_message_id is None:
                        progress.first_message_id = message_id
                    progress.pieces_sent = index + 1
                    self.stats.messages += 1
                    if index + 1 < len(units):
                        await self._save_progress(row, progress)
                return
            except ParseError as exc:
                if row.plain_fallback:
                    raise await self._dead(row, f"refused even as plain text: {exc}")
                log.warning("outbox row %s (%s): Telegram refused the HTML (%s); resending as plain text",
                            row.id, row.idempotency_key, exc)
                row.plain_fallback = True
                self.stats.plain_fallbacks += 1
                await self._pace(row.chat_id)  # the refused call counted towards the limits

    async def _deliver_edit(self, row: OutboxMessage, progress: _Progress) -> None:
        message_id = row.message_id
        if row.target_key is not None:
            target = await self.outbox.get(row.target_key)
            if target is None or target.status not in (PENDING, SENT):  # dead, superseded, ...: never sent
                state = "missing" if target is None else target.status
                raise await self._dead(row, f"edit target {row.target_key!r} will never be sent ({state})")
            if target.status != SENT or target.telegram_message_id is None:
                raise await self._retry_later(row, "edit target not sent yet", self.poll_interval_s, count=False)
            message_id = target.telegram_message_id
            caption = target.method == "photo"
        else:
            caption = False
        assert message_id is not None
        kind, limit = ("edit_caption", MAX_CAPTION_LEN) if caption else ("edit", 4096)
        while True:
            pieces, parse_mode = self._pieces(row, limit)
            if len(pieces) > 1:
                log.warning("outbox edit %s (%s): text longer than one %s; keeping the first part",
                            row.id, row.idempotency_key, "caption" if caption else "message")
            try:
                progress.first_message_id = await self._call(row, kind, pieces[0], parse_mode,
                                                             message_id=message_id)
                self.stats.messages += 1
                return
            except NotModified:
                self.stats.not_modified += 1
                progress.first_message_id = message_id
                return
            except ParseError as exc:
                if row.plain_fallback:
                    raise await self._dead(row, f"refused even as plain text: {exc}")
                row.plain_fallback = True
                self.stats.plain_fallbacks += 1
                await self._pace(row.chat_id)

    async def _call(self, row: OutboxMessage, kind: str, body: str | None, parse_mode: str | None,
                    *, message_id: int | None = None) -> int:
        markup = json.loads(row.reply_markup) if row.reply_markup else None
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
        except RetryAfter as exc:
            self._count_error("429")
            self.stats.rate_limited += 1
            self._on_429(row.chat_id, exc.retry_after)
            self._outage_ends_soon()  # throttled, but reachable
            raise await self._retry_later(row, f"429 retry after {exc.retry_after:g}s", exc.retry_after,
                                          count=False)
        except TemporaryError as exc:
            self._count_error("temporary")
            self.stats.temporary_errors += 1
            await self._outage_begins(str(exc))
            raise await self._retry_later(row, str(exc), self._backoff(row.attempts))
        except ChatMigrated as exc:
            self._count_error("migrated")
            self._outage_ends_soon()
            self._migrated[row.chat_id] = exc.migrate_to_chat_id
            await self._move_chat(row, exc.migrate_to_chat_id, str(exc).splitlines()[0])
            raise await self._retry_later(row, f"chat migrated to {exc.migrate_to_chat_id}", 0.0, count=False)
        except PermanentError as exc:
            self._count_error("permanent")
            self._outage_ends_soon()
            raise await self._dead(row, str(exc))
        except (ParseError, NotModified):
            await self._outage_ends()
            raise
        await self._outage_ends()
        return result

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

    def _backoff(self, attempts: int) -> float:
        base = min(self.retry_max_s, self.retry_base_s * (2 ** min(attempts, 16)))
        return base * (0.5 + random.random() / 2)

    def _count_error(self, kind: str) -> None:
        self.stats.by_error[kind] = self.stats.by_error.get(kind, 0) + 1

    # ------------------------------------------------------------------ row state

    async def _mark_sent(self, row: OutboxMessage, progress: _Progress) -> None:
        now = self.clock.time()
        values = dict(status=SENT, sent_at=now, telegram_message_id=progress.first_message_id,
                      attempts=row.attempts + 1, plain_fallback=row.plain_fallback, last_error=None)

        async def mark(session) -> None:
            await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))

        try:
            await self.db.run(mark)
        except Exception:  # noqa: BLE001 - stays pending; progress.delivered stops a resend
            log.exception("outbox row %s delivered but not marked; will mark again", row.id)
            raise _Retry() from None
        self._progress.pop(row.id, None)
        self._settle(row.id)
        self.stats.sent += 1

    async def _save_progress(self, row: OutboxMessage, progress: _Progress) -> None:
        """Store how many parts went out, so a restart never sends them again."""
        values = dict(pieces_sent=progress.pieces_sent, first_message_id=progress.first_message_id,
                      plain_fallback=row.plain_fallback)

        async def save(session) -> None:
            await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))

        try:
            await self.db.run(save)
        except Exception:  # noqa: BLE001 - this process still remembers; only a restart could repeat
            log.exception("outbox row %s: could not store progress (%d parts sent)", row.id, progress.pieces_sent)

    async def _move_chat(self, row: OutboxMessage, new_chat_id: int, why: str) -> None:
        """The group became a supergroup: every pending row of the old chat goes to the new id."""
        old_chat_id = row.chat_id

        async def move(session) -> int:
            result = await session.exec(update(OutboxMessage).where(
                OutboxMessage.chat_id == old_chat_id, OutboxMessage.status == PENDING).values(chat_id=new_chat_id))
            return int(result.rowcount or 0)

        moved = await self.db.run(move)
        row.chat_id = new_chat_id
        log.error("chat %s was upgraded to supergroup %s (%s): %d pending message(s) moved there; "
                  "update the configured chat id (e.g. TELEGRAM_ALERT_CHAT_ID) to %s",
                  old_chat_id, new_chat_id, why, moved, new_chat_id)

    async def _retry_later(self, row: OutboxMessage, error: str, delay: float, *, count: bool = True) -> _Retry:
        now = self.clock.time()
        at = now + max(0.0, delay)
        if count:
            self.stats.recent_errors.record(now, "telegram", f"chat {row.chat_id}: {error}")
        values: dict[str, Any] = dict(next_attempt_at=at, last_error=error[:2000], plain_fallback=row.plain_fallback)
        if count:
            values["attempts"] = row.attempts + 1

        async def reschedule(session) -> None:
            await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id,
                                                           OutboxMessage.status == PENDING).values(**values))

        try:
            await self.db.run(reschedule)
        except Exception:  # noqa: BLE001
            log.exception("outbox row %s: could not store retry time", row.id)
        return _Retry()

    async def _dead(self, row: OutboxMessage, error: str) -> _Retry:
        values = dict(status=DEAD, last_error=error[:2000], attempts=row.attempts + 1,
                      plain_fallback=row.plain_fallback)

        async def kill(session) -> None:
            await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))

        await self.db.run(kill)
        self._progress.pop(row.id, None)
        self._settle(row.id)
        self.stats.dead += 1
        self.stats.recent_errors.record(self.clock.time(), "telegram", f"chat {row.chat_id} (undeliverable): {error}")
        log.error("outbox row %s (%s) to chat %s is undeliverable: %s",
                  row.id, row.idempotency_key, row.chat_id, error)
        return _Retry()

    # ------------------------------------------------------------------ outage

    async def _outage_begins(self, error: str) -> None:
        if self.outage_since is not None:
            return
        self.outage_since = self.clock.time()  # claimed first: concurrent failures log once
        estimate = await self._estimate_outage_start()
        if self.outage_since is not None:
            self.outage_since = min(self.outage_since, estimate)
        log.warning("Telegram unreachable (%s); messages stay queued", error)

    async def _estimate_outage_start(self) -> float:
        """Now, or earlier when rows already failed before a restart of this process."""
        now = self.clock.time()

        async def earliest(session) -> float | None:
            stmt = select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status == PENDING, OutboxMessage.attempts > 0, OutboxMessage.last_error.is_not(None))
            return (await session.exec(stmt)).one()

        try:
            found = await self.db.run(earliest)
        except Exception:  # noqa: BLE001
            found = None
        return min(now, float(found)) if found is not None else now

    def _outage_ends_soon(self) -> None:
        """A definite answer (even a refusal) means Telegram is reachable."""
        if self.outage_since is not None:
            task = asyncio.get_running_loop().create_task(self._outage_ends())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _outage_ends(self) -> None:
        started = self.outage_since
        if started is None:
            return
        self.outage_since = None
        now = self.clock.time()
        duration = max(0.0, now - started)
        log.warning("Telegram reachable again after %.1fs", duration)
        if duration < self.outage_notice_after_s:
            return

        async def delayed(session) -> list[tuple[int, int]]:
            stmt = (select(OutboxMessage.chat_id, func.count())
                    .where(OutboxMessage.status == PENDING, OutboxMessage.created_at <= now,
                           OutboxMessage.method != "edit")
                    .group_by(OutboxMessage.chat_id))
            return [(int(c), int(n)) for c, n in (await session.exec(stmt)).all()]

        try:
            counts = await self.db.run(delayed)
            for chat_id, count in counts:
                text = (f"⚠️ Telegram was unreachable for {_human(duration)}: "
                        f"{count} message{'s' if count != 1 else ''} to this chat "
                        f"{'were' if count != 1 else 'was'} delayed and follow{'s' if count == 1 else ''} now.")
                if await self.outbox.enqueue(chat_id, text, key=f"outage-notice:{int(started)}:{chat_id}",
                                             priority=WARNING):
                    self.stats.outage_notices += 1
        except Exception:  # noqa: BLE001
            log.exception("could not queue the delayed-messages notice")

    async def _maybe_fallback(self, *, force: bool = False) -> None:
        started = self.outage_since
        if started is None:
            return
        now = self.clock.time()
        if now - started < self.settings.telegram_outage_fallback_after_s:
            return
        mono = self.clock.monotonic()
        if not force and mono < self._next_fallback_check:
            return
        self._next_fallback_check = mono + self.fallback_retry_s

        async def critical(session) -> list[OutboxMessage]:
            stmt = (select(OutboxMessage)
                    .where(OutboxMessage.status == PENDING, OutboxMessage.priority == CRITICAL,
                           OutboxMessage.fallback_sent == False)  # noqa: E712
                    .order_by(OutboxMessage.id).limit(100))
            return list((await session.exec(stmt)).all())

        for row in await self.db.run(critical):
            if row.id not in self._fallback_logged:
                self._fallback_logged.add(row.id)
                log.error("CRITICAL message undeliverable via Telegram for %.1fs (chat %s, key %s): %s",
                          now - started, row.chat_id, row.idempotency_key, to_plain(row.text)[:500])
            if await self._post_fallback(row, started):
                async def flag(session, row_id=row.id) -> None:
                    await session.exec(update(OutboxMessage).where(OutboxMessage.id == row_id)
                                       .values(fallback_sent=True))

                await self.db.run(flag)

    async def _post_fallback(self, row: OutboxMessage, started: float) -> bool:
        url = self.settings.fallback_webhook_url
        if not url:
            return True  # the ERROR log line is the fallback
        import aiohttp

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
        try:
            if self._http is None:
                self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.fallback_timeout_s))
            async with self._http.post(url, json=payload) as resp:
                if resp.status >= 300:
                    raise RuntimeError(f"HTTP {resp.status}")
            self.stats.fallback_posts += 1
            return True
        except Exception as exc:  # noqa: BLE001 - never fatal
            self.stats.fallback_failures += 1
            log.warning("fallback webhook failed for outbox row %s: %s", row.id, exc)
            return False


def _human(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
