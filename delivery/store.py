"""The outbox: every outgoing Telegram message is a database row before it is sent.

Producers (alerts, reports, command follow-ups) only ever enqueue; ``OutboxSender``
delivers. Enqueueing is idempotent on ``key``, so a producer that retries or restarts
never causes a duplicate::

    outbox = Outbox(db, clock)
    await outbox.enqueue(-100123, f"<b>{esc(name)}</b> rugged", key=f"alert:{alert_id}:fire",
                         priority=CRITICAL)
    await outbox.enqueue_edit(-100123, target_key=f"alert:{alert_id}:fire",
                              text="<s>rugged</s> resolved", key=f"alert:{alert_id}:resolve")
    await outbox.pending_count()          # 2 until the sender has run

Pending edits of the same target merge: only the newest is sent, older ones become
``superseded``. An edit inherits its target's priority so it never overtakes it.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from delivery.models import CRITICAL, INFO, PENDING, REPLY, SUPERSEDED, WARNING, OutboxMessage

log = logging.getLogger(__name__)

MAX_KEY_LEN = 128
PRIORITIES = (CRITICAL, WARNING, INFO)


class OutboxError(ValueError):
    """A message the outbox refuses to store (bad key, empty text, unknown edit target...)."""


def _markup_json(reply_markup: Any) -> str | None:
    if reply_markup is None:
        return None
    if hasattr(reply_markup, "model_dump"):  # an aiogram InlineKeyboardMarkup
        reply_markup = reply_markup.model_dump(exclude_none=True)
    if isinstance(reply_markup, str):
        try:
            json.loads(reply_markup)
        except ValueError:
            raise OutboxError("reply_markup is not valid JSON") from None
        return reply_markup
    if not isinstance(reply_markup, dict):
        raise OutboxError("reply_markup must be a dict, JSON text or an InlineKeyboardMarkup")
    try:
        return json.dumps(reply_markup, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise OutboxError(f"reply_markup is not JSON-serialisable: {exc}") from None


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN:
        raise OutboxError(f"key must be a non-empty string of at most {MAX_KEY_LEN} characters")


class Outbox:
    """Durable, idempotent queue of outgoing Telegram messages (table ``outbox``).

        outbox = Outbox(db)
        fresh = await outbox.enqueue(42, "hello", key="greeting:42")   # True
        again = await outbox.enqueue(42, "hello", key="greeting:42")   # False: already queued
    """

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.clock = clock
        self.duplicates = 0
        self.rejected = 0
        # Set by the sender while nothing can be sent (Telegram refuses the token), for /ping.
        self.sending_stopped: str | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ producers

    async def enqueue_reply(self, chat_id: int, text: str, *, key: str, reply_markup: Any = None) -> bool:
        """Queue a command reply: first in its chat's line, paced and retried like any row.

        ``key`` derives from the Telegram update, so a redelivered update is answered once.
        A reply Telegram could not take for a while goes out once it is back, headed "Late reply".
        """
        return await self.enqueue(chat_id, text, key=key, priority=REPLY, reply_markup=reply_markup, _reply=True)

    async def enqueue(self, chat_id: int, text: str, *, key: str, priority: int = INFO,
                      reply_markup: Any = None, photo: bytes | None = None, _reply: bool = False) -> bool:
        """Queue a message (or, with ``photo``, a picture captioned ``text``).

        Returns False when ``key`` was queued before (nothing changes). Raises
        :class:`OutboxError` for a message that can never be sent.
        """
        try:
            _check_key(key)
            if not isinstance(chat_id, int) or isinstance(chat_id, bool):
                raise OutboxError("chat_id must be an int")
            if priority not in PRIORITIES:
                raise OutboxError(f"priority must be one of {PRIORITIES}")
            if not isinstance(text, str):
                raise OutboxError("text must be a string")
            if photo is not None and not isinstance(photo, (bytes, bytearray)):
                raise OutboxError("photo must be bytes")
            if not text.strip() and photo is None:
                raise OutboxError("message text is empty")
            markup = _markup_json(reply_markup)
        except OutboxError:
            self.rejected += 1
            raise
        now = self.clock.time()

        async def insert(session) -> bool:
            if await _key_taken(session, key):
                return False
            session.add(OutboxMessage(
                idempotency_key=key, chat_id=chat_id, method="photo" if photo is not None else "send",
                priority=priority, text=text, reply_markup=markup,
                photo=bytes(photo) if photo is not None else None, created_at=now, next_attempt_at=now,
                is_reply=_reply,
            ))
            return True

        return await self._insert(key, insert)

    async def enqueue_edit(self, chat_id: int, *, target_key: str | None = None, message_id: int | None = None,
                           text: str, reply_markup: Any = None, key: str) -> bool:
        """Queue an edit of an earlier outbox message (``target_key``) or of ``message_id``.

        Older pending edits of the same target become ``superseded`` (only the newest
        text matters). An edit by ``target_key`` goes to the chat its target is in now (it
        may have moved when a group became a supergroup); the edit of a picture changes its
        caption. Returns False when ``key`` was queued before.
        """
        try:
            _check_key(key)
            if (target_key is None) == (message_id is None):
                raise OutboxError("give exactly one of target_key or message_id")
            if not isinstance(text, str) or not text.strip():
                raise OutboxError("edit text is empty")
            markup = _markup_json(reply_markup)
        except OutboxError:
            self.rejected += 1
            raise
        now = self.clock.time()

        async def insert(session) -> bool:
            if await _key_taken(session, key):
                return False
            priority = INFO
            target: OutboxMessage | None = None
            same_target: list[Any] = [OutboxMessage.method == "edit", OutboxMessage.status == PENDING]
            if target_key is not None:
                target = (await session.exec(
                    select(OutboxMessage).where(OutboxMessage.idempotency_key == target_key))).first()
                if target is None:
                    raise OutboxError(f"edit target {target_key!r} is not in the outbox")
                if target.chat_id != chat_id:  # e.g. the target moved when its group became a supergroup
                    log.info("edit %s follows its target %r to chat %s (asked for chat %s)",
                             key, target_key, target.chat_id, chat_id)
                priority = target.priority
                same_target.append(OutboxMessage.target_key == target_key)
            else:
                same_target += [OutboxMessage.chat_id == chat_id, OutboxMessage.message_id == message_id]
            await session.exec(update(OutboxMessage).where(*same_target).values(status=SUPERSEDED))
            session.add(OutboxMessage(
                idempotency_key=key, chat_id=target.chat_id if target is not None else chat_id,
                method="edit", priority=priority, text=text,
                reply_markup=markup, target_key=target_key, message_id=message_id,
                created_at=now, next_attempt_at=now,
            ))
            return True

        try:
            return await self._insert(key, insert)
        except OutboxError:
            self.rejected += 1
            raise

    async def _insert(self, key: str, fn) -> bool:
        """Run ``fn`` (which checks ``_key_taken`` first); a race on the unique key counts as a duplicate."""
        try:
            fresh = await self.db.run(fn)
        except IntegrityError:  # a concurrent producer inserted the same key first
            fresh = False
        if fresh:
            self._wake.set()
        else:
            self.duplicates += 1
            log.debug("outbox key %s already queued", key)
        return fresh

    # ------------------------------------------------------------------ observers

    async def pending_count(self) -> int:
        """Rows still waiting to be delivered."""
        async def count(session) -> int:
            result = await session.exec(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == PENDING))
            return int(result.one())

        return await self.db.run(count)

    async def oldest_pending_age(self) -> float | None:
        """Seconds the oldest pending row has waited, or None when nothing is pending."""
        async def oldest(session) -> float | None:
            result = await session.exec(
                select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == PENDING))
            return result.one()

        created = await self.db.run(oldest)
        return None if created is None else max(0.0, self.clock.time() - float(created))

    async def queued_before(self, at: float) -> bool:
        """Whether anything was ever queued before ``at`` (and not yet pruned): the service ran then."""
        async def any_before(session) -> bool:
            found = await session.exec(select(OutboxMessage.id).where(OutboxMessage.created_at < at).limit(1))
            return found.first() is not None

        return await self.db.run(any_before)

    async def get(self, key: str) -> OutboxMessage | None:
        """The row queued under ``key`` (for tests and /outbox views)."""
        async def fetch(session) -> OutboxMessage | None:
            return (await session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))).first()

        return await self.db.run(fetch)

    async def wait_for_work(self, timeout: float) -> bool:
        """Used by the sender: wait up to ``timeout`` s for a new enqueue in this process."""
        if self._wake.is_set():
            self._wake.clear()
            return True
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        self._wake.clear()
        return True

    def wake(self) -> None:
        self._wake.set()


async def _key_taken(session, key: str) -> bool:
    found = await session.exec(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key))
    return found.first() is not None
