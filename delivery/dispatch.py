"""OutboxSender: the dispatch loop that drains the outbox without losing, duplicating or spamming.

Rules, in the order they matter to an operator:

* Nothing is dropped for a temporary reason. 5xx, network errors and unclassified answers
  leave the row ``pending`` with a jittered exponential backoff (``app.backoff.Backoff``),
  however long Telegram is away. Only a permanent refusal (chat not found, bot blocked)
  makes a row ``dead``, with the error stored and logged.
* A refused token (401) stops all sending (``TokenGuard``): rows stay pending, the ERROR
  names TELEGRAM_BOT_TOKEN, and a ``getMe`` probe every minute resumes sending once it works.
* Two senders (processes) never send one row: a row is leased (``SenderQueries.claim``)
  before it is sent; a lease that ran out (its sender died) is claimed again.
* Order: per chat, critical (and command replies) before warning before info, then oldest
  first; at most one request in flight per chat; chats are served in parallel.
* Pacing (``Pacer``) keeps under Telegram's limits so 429s are rare.
* Several processes: only the leader sends. ``may_send`` (the leader gate's ``is_leader``) is
  asked before each claim and again just before each row goes out; a process that stopped
  leading (or hung past its lease) sends nothing more and gives the row back.
* What one row's delivery does (splitting, plain-text fallback, edits, migrations) is in
  ``delivery.row_delivery``; outage handling (fallback webhook, delayed notice) in
  ``delivery.outage``; every SQL statement in ``delivery.queries``.

Usage::

    sender = OutboxSender(db, outbox, BotTransport(bot), settings)
    supervisor.add(LoopSpec("bot.outbox_sender", sender.run, stop=sender.stop))  # run() until stop()

    await sender.drain_once()     # in tests: send everything that may go out now, then return
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable

from app.supervisor import beat
from app.backoff import Backoff
from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.settings import Settings
from delivery.limits import Pacer
from delivery.models import OutboxMessage
from delivery.outage import OutageWatch
from delivery.outcome import Dead, Outcome, RetryAt, Sent, TokenRefused
from delivery.queries import SenderQueries
from delivery.row_delivery import RowDelivery
from delivery.stats import SenderStats
from delivery.store import Outbox
from delivery.token_guard import STOPPED_MESSAGE, TokenGuard
from delivery.transport import Transport

log = logging.getLogger(__name__)

MAX_INTERNAL_FAILURES = 5  # unexpected exceptions (bugs) on one row before it is parked as dead
DEFAULT_LEASE_S = 120.0


def sender_id() -> str:
    """A name unique to this sender: host, process id and a random part (lease owner)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxSender:
    """Sends pending outbox rows through a ``Transport`` (see the module docstring).

        sender = OutboxSender(db, outbox, BotTransport(bot), settings, clock)
        await sender.drain_once()
    """

    def __init__(self, db: Database, outbox: Outbox, transport: Transport, settings: Settings,
                 clock: Clock = SYSTEM_CLOCK, *, retry_base_s: float = 1.0, retry_max_s: float = 30.0,
                 poll_interval_s: float = 1.0, outage_notice_after_s: float = 30.0,
                 fallback_retry_s: float = 5.0, fallback_timeout_s: float = 5.0,
                 pacer: Pacer | None = None, owner: str | None = None, lease_s: float = DEFAULT_LEASE_S,
                 token_probe_interval_s: float = 60.0) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.owner = owner or sender_id()
        self.lease_s = lease_s
        self.backoff = Backoff(base_s=retry_base_s, max_s=retry_max_s)
        self.pacer = pacer or Pacer.from_settings(settings, clock)
        self.stats = SenderStats()
        self.rows = SenderQueries(db, clock)
        self.outage = OutageWatch(self.rows, outbox, settings, self.stats, clock, notice_after_s=outage_notice_after_s,
                                  fallback_retry_s=fallback_retry_s, fallback_timeout_s=fallback_timeout_s)
        self.guard = TokenGuard(clock, probe_interval_s=token_probe_interval_s)
        self.delivery = RowDelivery(self.rows, outbox, transport, self.pacer, self.stats, self.outage,
                                    backoff=self.backoff, owner=self.owner, lease_s=lease_s,
                                    edit_wait_s=poll_interval_s, clock=clock)
        self._inflight: dict[int, asyncio.Task] = {}
        self._seq = 0  # bumped whenever a delivery task finishes
        self._finished_at_seq: dict[int, int] = {}  # chat id -> seq of its last finished task
        self._internal_failures: dict[int, int] = {}
        self._stopping = False
        self._wake = asyncio.Event()
        #: asked before every claim and every send (the leader gate); None = always allowed
        self.may_send: Callable[[], bool] | None = None
        self.fenced = 0  # rows given back because this process no longer leads

    @property
    def transport(self) -> Transport:
        return self.delivery.transport

    @transport.setter
    def transport(self, transport: Transport) -> None:
        self.delivery.transport = transport

    @property
    def outage_since(self) -> float | None:
        """Epoch seconds Telegram has been unreachable since, or None."""
        return self.outage.since

    @property
    def token_refused(self) -> bool:
        """True while Telegram refuses the bot token (401) and nothing is sent."""
        return self.guard.refused

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Deliver until :meth:`stop` is called (or the task is cancelled). Never raises on delivery problems."""
        self._stopping = False
        log.info("outbox sender %s started", self.owner)
        while not self._stopping:
            beat()  # a pass waits at most poll_interval_s (or the 401 probe interval) before the next
            try:
                wait = await self._pass()
                await self.outage.fallback()
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
        await self.outage.close()

    async def drain_once(self) -> int:
        """One pass: start every row that may go out now, wait for them; return how many started."""
        if self.guard.refused:
            if self.guard.probe_in() > 0 or not await self._probe():
                return 0
        started, _wait = await self._start_ready()
        await self._join_inflight()
        await self.outage.fallback(force=True)
        return len(started)

    async def _pass(self) -> float:
        if self.guard.refused:
            wait = self.guard.probe_in()
            if wait > 0 or not await self._probe():
                return wait or self.guard.probe_interval_s
        _started, wait = await self._start_ready()
        return wait

    async def _probe(self) -> bool:
        if await self.guard.probe(self.transport):
            self.outbox.sending_stopped = None
            return True
        return False

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

    async def _start_ready(self) -> tuple[list[int], float]:
        """Claim and start the head row of each chat that may go now; return (started, wait)."""
        seq_before = self._seq
        heads = await self.rows.heads()
        now = self.clock.time()
        wait = self.poll_interval_s
        started: list[int] = []
        if not self._allowed():
            return started, wait
        for row in heads:
            assert row.id is not None
            if self.guard.refused or self._stopping:
                break
            if row.chat_id in self._inflight:
                continue
            if self._finished_at_seq.get(row.chat_id, -1) >= seq_before:
                wait = 0.0  # a task of this chat finished while we queried: the row may be stale
                continue
            if row.next_attempt_at > now:
                wait = min(wait, row.next_attempt_at - now)
                continue
            if row.lease_owner not in (None, self.owner) and (row.lease_until or 0.0) >= now:
                continue  # another sender is delivering it
            delay = self.pacer.ready_in(row.chat_id)
            if delay > 0:
                wait = min(wait, delay)
                continue
            if not await self.rows.claim(row.id, owner=self.owner, lease_s=self.lease_s):
                self.stats.lease_conflicts += 1  # claimed by another sender, or changed since the query
                continue
            self.pacer.reserve(row.chat_id)
            task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}")
            self._inflight[row.chat_id] = task
            task.add_done_callback(functools.partial(self._finished, row.chat_id))
            started.append(row.id)
        return started, wait

    def _allowed(self) -> bool:
        return self.may_send is None or self.may_send()

    def _finished(self, chat_id: int, _task: object = None) -> None:
        self._inflight.pop(chat_id, None)
        self._finished_at_seq[chat_id] = self._seq
        self._seq += 1
        self._wake.set()

    # ------------------------------------------------------------------ one row's outcome

    async def _deliver(self, row: OutboxMessage) -> None:
        assert row.id is not None
        if not self._allowed():  # leadership lost between the claim and the send: the next leader sends it
            self.fenced += 1
            try:
                await self.rows.release(row.id, owner=self.owner)
            except Exception:  # noqa: BLE001 - the lease runs out by itself
                log.warning("outbox row %s: could not give the lease back", row.id)
            return
        try:
            outcome = await self.delivery.deliver(row)
        except Exception as exc:  # noqa: BLE001 - a bug or DB fault must not kill the loop
            outcome = self._internal_failure(row, exc)
        try:
            await self._record(row, outcome)
        except Exception:  # noqa: BLE001 - the lease runs out and the row is tried again
            self.stats.internal_errors += 1
            log.exception("outbox row %s: could not record %s", row.id, type(outcome).__name__)

    def _internal_failure(self, row: OutboxMessage, exc: Exception) -> Outcome:
        assert row.id is not None
        self.stats.internal_errors += 1
        failures = self._internal_failures[row.id] = self._internal_failures.get(row.id, 0) + 1
        log.error("outbox row %s (%s): unexpected error (%d)", row.id, row.idempotency_key, failures,
                  exc_info=exc)
        error = f"internal: {type(exc).__name__}: {exc}"
        if failures >= MAX_INTERNAL_FAILURES:  # a row that always crashes must not block its chat
            self._internal_failures.pop(row.id, None)
            return Dead(error)
        return RetryAt(self.clock.time() + self.backoff.delay(row.attempts), error)

    async def _record(self, row: OutboxMessage, outcome: Outcome) -> None:
        assert row.id is not None
        now = self.clock.time()
        if isinstance(outcome, Sent):
            await self.rows.mark_sent(row.id, message_id=outcome.message_id, attempts=row.attempts + 1,
                                      plain_fallback=row.plain_fallback)
            self.delivery.forget(row.id)
            self.stats.sent += 1
        elif isinstance(outcome, RetryAt):
            if outcome.counted:
                self.stats.recent_errors.record(now, "telegram", f"chat {row.chat_id}: {outcome.error}")
            await self.rows.reschedule(row.id, at=max(now, outcome.at), error=outcome.error,
                                       attempts=row.attempts + 1 if outcome.counted else None,
                                       plain_fallback=row.plain_fallback)
        elif isinstance(outcome, Dead):
            await self.rows.mark_dead(row.id, error=outcome.reason, attempts=row.attempts + 1,
                                      plain_fallback=row.plain_fallback)
            self.delivery.forget(row.id)
            self.stats.dead += 1
            self.stats.recent_errors.record(now, "telegram", f"chat {row.chat_id} (undeliverable): {outcome.reason}")
            log.error("outbox row %s (%s) to chat %s is undeliverable: %s",
                      row.id, row.idempotency_key, row.chat_id, outcome.reason)
        elif isinstance(outcome, TokenRefused):
            self.stats.unauthorized += 1
            if not self.guard.refused:
                self.stats.recent_errors.record(now, "telegram", "401 Unauthorized: TELEGRAM_BOT_TOKEN refused")
            self.guard.refuse(outcome.reason)
            self.outbox.sending_stopped = STOPPED_MESSAGE
            await self.rows.release(row.id, owner=self.owner)
