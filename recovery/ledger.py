"""The action ledger: every :class:`~recovery.knobs.Action` the knob registry emits, persisted in
``recovery_action`` off the hot path, with its outcome once known; and the operator pins
(``knob_pin``), restored at start.

    ledger = ActionLedger(db, clock, registry)     # subscribes to registry.on_action
    await ledger.restore_pins()                    # at start: a manual change survives a restart
    scheduler.add_all(ledger.jobs())               # flushes every RECOVERY_LEDGER_FLUSH_S
    ledger.report_outcome("memory", None, "freed 40 MiB; share 91% -> 72%")   # a controller's own outcome
    with ledger.reverting(12):                     # the next action undoes action #12
        registry.adjust(...)
    await ledger.flush()                           # what is queued, now (an operator's change, at stop)

The listener only appends to a queue (it is called inside ``registry.adjust``, on the controllers'
hot path). ``flush`` writes the queue in batches; a database failure keeps everything queued for
the next flush (logged once when it starts failing, once when it writes again). The queue is
bounded (``queue_max``): past it the oldest action is dropped and counted (``dropped``).

Outcomes. An automatic knob change is followed up: when the same knob changes again its outcome
says how (``reversed by aimd after 40s``, ``moved further by rto after 12s``, ``overridden by
@ann after 2m 00s``); when nothing touched it for ``outcome_after_s`` it ``held``. A Revert marks
the reverted action (``reverted by @ann``) and links the revert to it (``revert_of``). A
controller that knows whether its measurement improved says so with :meth:`report_outcome`, which
replaces the generic outcome of its newest action on that knob.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import Clock
from app.db import Database
from app.durations import fmt_duration
from app.scheduler import JobSpec
from recovery.knobs import OPERATOR, Action, KnobRegistry
from app.tables import table_of
from recovery.ledger_queries import ActionView, load_pins
from recovery.models import KnobPin, RecoveryAction

ACTIONS = table_of(RecoveryAction)
PINS = table_of(KnobPin)

log = logging.getLogger(__name__)

ANNOUNCED_CONTROLLERS = frozenset({"breaker", "watchdog"})
"""Controllers whose every action is announced (a breaker opening or closing, a job restarted)."""

Written = Callable[[list[ActionView]], Awaitable[None]]


def matters(action: Action, registry: KnobRegistry) -> bool:
    """Whether ``action`` is told in the chat: the controller asked (``announce``), an operator's
    change, an act without a knob (a cleanup, a restart), a breaker or the watchdog, or a knob
    reaching one of its bounds. Routine adjustments within the bounds are only recorded."""
    if action.announce or action.controller == OPERATOR or action.knob is None:
        return True
    if action.controller in ANNOUNCED_CONTROLLERS:
        return True
    knob = registry.get(action.knob)
    return (knob is not None and action.after is not None and action.after != action.before
            and action.after in (knob.minimum, knob.maximum))


@dataclass(frozen=True)
class _Queued:
    seq: int
    action: Action
    revert_of: int | None
    announce: bool


@dataclass(frozen=True)
class _Check:
    """An automatic knob change waiting for its outcome."""

    knob: str
    controller: str
    at: float
    direction: float


def _direction(before: float | None, after: float | None) -> float:
    if before is None or after is None:
        return 0.0
    return (after > before) - (after < before)


class ActionLedger:
    def __init__(self, db: Database, clock: Clock, registry: KnobRegistry, *, queue_max: int = 10_000,
                 batch_max: int = 500, flush_s: float = 5.0, outcome_after_s: float = 300.0) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.queue_max = queue_max
        self.batch_max = batch_max
        self.flush_s = flush_s
        self.outcome_after_s = outcome_after_s
        self.dropped = 0
        self.written = 0
        self.failing: str | None = None     # the last write error while writes fail
        self._queue: deque[_Queued] = deque()
        self._seq = 0
        self._pins: dict[str, KnobPin | None] = {}        # knob -> the pin to persist (None: released)
        self._reported: list[tuple[str, str | None, str, float]] = []
        self._checks: dict[int, _Check] = {}
        self._reverting: tuple[int, str | None] | None = None
        self._written: list[Written] = []
        self._lock = asyncio.Lock()
        registry.on_action(self.listener)

    # ------------------------------------------------------------------ the hot path

    def listener(self, action: Action) -> None:
        """Queue ``action`` (sync, no I/O). Past ``queue_max`` the oldest queued one is dropped."""
        if len(self._queue) >= self.queue_max:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("action ledger queue full (%d): %d action(s) dropped so far", self.queue_max, self.dropped)
        revert_of = None
        if self._reverting is not None and action.knob is not None and action.controller == OPERATOR:
            revert_of, self._reverting = self._reverting[0], None
        if action.controller == OPERATOR and action.knob is not None:
            pin = self.registry.pinned(action.knob)
            self._pins[action.knob] = KnobPin(knob=action.knob, value=pin.value, actor=pin.actor, at=pin.at) \
                if pin is not None else None
        self._seq += 1
        self._queue.append(_Queued(self._seq, action, revert_of, matters(action, self.registry)))

    @contextlib.contextmanager
    def reverting(self, action_id: int, actor: str | None = None) -> Iterator[None]:
        """The operator action recorded inside this block reverts action ``action_id``."""
        self._reverting = (action_id, actor)
        try:
            yield
        finally:
            self._reverting = None

    def report_outcome(self, controller: str, knob: str | None, text: str) -> None:
        """A controller's own outcome for its newest action on ``knob`` (None: its newest act without
        a knob), e.g. ``"p95 2.4 s -> 1.1 s at the next check"``; written with the next flush."""
        self._reported.append((controller, knob, text[:500], self.clock.time()))

    def on_written(self, listener: Written) -> None:
        """``await listener(views)`` after each flush that wrote actions (the chat announcer)."""
        self._written.append(listener)

    @property
    def queued(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ writing

    def jobs(self) -> list[JobSpec]:
        return [JobSpec("recovery.ledger_flush", self.flush, interval_s=self.flush_s, budget_s=60.0)]

    async def flush(self) -> int:
        """Write what is queued (and the outcomes and pins due); returns the actions written.
        Raises nothing: a failed write stays queued and is retried at the next flush."""
        async with self._lock:
            total = 0
            while True:
                try:
                    views, announce = await self._write_batch()
                except Exception as exc:  # noqa: BLE001 - kept for the next flush
                    if self.failing is None:
                        log.warning("action ledger: cannot write (%s); %d action(s) kept queued",
                                    type(exc).__name__, len(self._queue))
                    self.failing = f"{type(exc).__name__}: {exc}"[:300]
                    return total
                if self.failing is not None:
                    log.info("action ledger: writing again (%d action(s) written)", len(views))
                    self.failing = None
                total += len(views)
                if views:
                    self.written += len(views)
                    await self._tell([v for v in views if v.id in announce])
                if not self._queue:
                    return total

    async def _tell(self, views: list[ActionView]) -> None:
        for listener in list(self._written):
            try:
                await listener(views)
            except Exception:  # noqa: BLE001 - an announcement's failure never loses the record
                log.exception("action ledger listener failed")

    async def _write_batch(self) -> tuple[list[ActionView], set[int]]:
        batch = [self._queue[i] for i in range(min(self.batch_max, len(self._queue)))]
        pins = dict(self._pins)
        reported = list(self._reported)
        now = self.clock.time()
        state: dict[str, dict[int, _Check]] = {}

        async def write(session: AsyncSession) -> tuple[list[ActionView], set[int]]:
            checks = dict(self._checks)
            rows = [dict(at=q.action.at, controller=q.action.controller[:32], knob=q.action.knob,
                         unit=self._unit(q.action.knob), before=q.action.before, after=q.action.after,
                         reason=q.action.reason, actor=q.action.actor[:128] if q.action.actor else None,
                         detail=q.action.detail, revert_of=q.revert_of, announced=q.announce) for q in batch]
            ids: list[int] = []
            if rows:   # one multi-row INSERT ... RETURNING, ids in the order of the rows
                stmt = insert(ACTIONS).returning(ACTIONS.c.id, sort_by_parameter_order=True)
                ids = [int(i) for i in (await session.exec(stmt, params=rows)).scalars().all()]
            outcomes: dict[int, str] = {}
            reverts: list[dict[str, object]] = []
            for aid, row in zip(ids, rows):
                knob, revert_of = row["knob"], row["revert_of"]
                at, actor = cast(float, row["at"]), cast("str | None", row["actor"])
                if knob is not None:
                    for cid, c in list(checks.items()):
                        if c.knob == knob and revert_of != cid:
                            outcomes[cid] = self._followed(c, row)
                            del checks[cid]
                if revert_of is not None:
                    reverts.append({"b_id": revert_of, "b_at": at, "b_by": actor or OPERATOR,
                                    "b_outcome": f"reverted by {actor or 'an operator'}"})
                    outcomes.pop(cast(int, revert_of), None)
                    checks.pop(cast(int, revert_of), None)
                if row["controller"] != OPERATOR and knob is not None and row["before"] != row["after"]:
                    checks[aid] = _Check(cast(str, knob), cast(str, row["controller"]), at,
                                         _direction(cast("float | None", row["before"]), cast("float | None", row["after"])))
            for cid, c in list(checks.items()):
                if now - c.at >= self.outcome_after_s:
                    outcomes[cid] = f"held: no further change for {fmt_duration(now - c.at)}"
                    del checks[cid]
            for controller, knob, text, at in reported:
                newest = select(ACTIONS.c.id).where(
                    ACTIONS.c.controller == controller, ACTIONS.c.at <= at,
                    ACTIONS.c.knob.is_(None) if knob is None else ACTIONS.c.knob == knob,
                ).order_by(ACTIONS.c.at.desc(), ACTIONS.c.id.desc()).limit(1)
                target = (await session.exec(newest)).first()    # the id (one column: a scalar)
                if target is not None:
                    outcomes[int(target)] = text
                    checks.pop(int(target), None)
            if reverts:
                await session.exec(update(ACTIONS).where(ACTIONS.c.id == bindparam("b_id")).values(
                    reverted_at=bindparam("b_at"), reverted_by=bindparam("b_by"), outcome=bindparam("b_outcome"),
                    outcome_at=bindparam("b_at")), params=reverts)
            if outcomes:
                await session.exec(update(ACTIONS).where(ACTIONS.c.id == bindparam("b_id")).values(
                    outcome=bindparam("b_outcome"), outcome_at=now),
                    params=[{"b_id": cid, "b_outcome": text} for cid, text in outcomes.items()])
            for knob, pin in pins.items():
                await session.exec(delete(PINS).where(PINS.c.knob == knob))
                if pin is not None:
                    await session.exec(insert(PINS).values(knob=pin.knob, value=pin.value, actor=pin.actor, at=pin.at))
            state["checks"] = checks
            views = [ActionView(id=aid, at=cast(float, r["at"]), controller=cast(str, r["controller"]),
                                knob=cast("str | None", r["knob"]), unit=cast(str, r["unit"]),
                                before=cast("float | None", r["before"]), after=cast("float | None", r["after"]),
                                reason=cast(str, r["reason"]), actor=cast("str | None", r["actor"]),
                                detail=cast(str, r["detail"]), outcome=None, reverted_at=None, reverted_by=None,
                                revert_of=cast("int | None", r["revert_of"])) for aid, r in zip(ids, rows)]
            return views, {aid for aid, q in zip(ids, batch) if q.announce}

        result = await self.db.run(write)
        # written: forget what went in (what was queued meanwhile stays)
        last = batch[-1].seq if batch else 0
        while self._queue and self._queue[0].seq <= last:
            self._queue.popleft()
        for knob, pin in pins.items():
            if self._pins.get(knob, pin) is pin:
                self._pins.pop(knob, None)
        del self._reported[:len(reported)]
        self._checks = state["checks"]
        return result

    def _unit(self, knob: str | None) -> str:
        k = self.registry.get(knob) if knob is not None else None
        return k.unit[:16] if k is not None else ""

    @staticmethod
    def _followed(c: _Check, row: Mapping[str, Any]) -> str:
        """The outcome of change ``c`` once ``row`` (the next action on its knob) happened."""
        after = fmt_duration(row["at"] - c.at)
        if row["controller"] == OPERATOR:
            return f"overridden by {row['actor'] or 'an operator'} after {after}"
        direction = _direction(row["before"], row["after"])
        if direction and direction == c.direction:
            return f"not enough: moved further by {row['controller']} after {after}"
        if direction:
            return f"reversed by {row['controller']} after {after}"
        return f"followed by {row['controller']} after {after}"

    # ------------------------------------------------------------------ pins

    async def restore_pins(self) -> int:
        """Re-apply every persisted operator pin to the registry; returns how many were restored."""
        restored = 0
        for pin in await load_pins(self.db):
            if self.registry.get(pin.knob) is None:
                log.warning("pinned knob %r is not registered in this process; its pin is kept", pin.knob)
                continue
            self.registry.restore_pin(pin.knob, pin.value, pin.actor, pin.at)
            restored += 1
        if restored:
            log.info("restored %d operator pin(s)", restored)
        return restored
