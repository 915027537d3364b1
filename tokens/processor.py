"""The processor: take due tokens, fetch their pools, score, evaluate, write, reschedule.

``run_once()`` is the ``pipeline.process`` job. It dispatches batches while fewer than
``limit()`` are fetching (an explicit bound on requests at the market, counted across runs; a
batch frees its slot once the market answered, and at most ``MAX_BATCHES_WRITING`` fetched
batches may wait for their write): for each it takes a rate-limiter slot, takes ``batch_size()``
tokens from the claimed-ahead queue and starts the batch as a tracked task, which fetches them in
one request, evaluates every token and writes all checks and transitions of the batch in one
transaction (one UPDATE for the token rows, one executemany for the checks:
``tokens.repository.apply_checks``). Writes use group commit: batches waiting to write go into
one transaction together (up to ``MAX_WRITE_GROUP_ROWS``; one writer task on SQLite, whose
writes take the database's write turn with every other writer of the process (``app.db``) instead
of meeting in SQLite's busy-wait with its 25-100 ms sleeps, ``PG_WRITERS`` on PostgreSQL); when a group's write fails, each of its batches is written alone.
Claims run ahead of dispatch: one claim leases two runs' worth of batches (a run's worth is what
the limiter lets through in a tick, but no more than the last run sent or the in-flight limit, so
a process held back by round trips does not lease tokens the other processes could check; at most
``CLAIM_AHEAD_BATCHES``) and the next starts in the background when less than a run's worth is
left, so the database is not on the path of every request; tokens claimed but not sent stay
leased and queued for the next run (released, due when they were due, when the circuit breaker
opens and on ``close()``). The due count for the backlog decision is taken beside dispatch too.
The run stops dispatching when the next slot would start after the run's budget (the tick less
``RUN_TICK_MARGIN_S``), so a run ends just before the next tick, the limiter's burst covers the
gap, and the limiter (not the database, not the scheduler) stays the bottleneck. A run never waits past its budget for
a slow batch: one still in flight at the deadline finishes in the background (its tokens stay
leased and in ``inflight_ids``, it keeps its in-flight slot, so no later run claims them or
exceeds the limit; ``close()`` cancels such tasks); its checks, counters and stage timings are
recorded when it ends. After every batch and every run the ``flow`` hook (``tokens.flow``) hears
how it went; recovery's flow controller sets the limit and the batch size from that. When more is
due than the ceiling lets a run check (``backlogged``), claims put hot and high-score tokens first
and cold checks stretch (``tokens.repository.ClaimPriority``)::

    processor = Processor(db, client, settings, clock)
    checked = await processor.run_once()
    processor.set_limit(2); processor.set_batch_size(20)    # recovery's controls (through the knobs)

A failed fetch writes a failed check (``ok=False`` with the error), bumps
``consecutive_failures`` and reschedules the token with backoff: a token is never lost.
While the market's circuit breaker is open (``tokens.breaker``) workers claim nothing, and a batch
the breaker refused is released unchecked, due when it was due: an outage costs one probe at a time,
not a failed check for every due token.
A batch's checks are written in one transaction; if that write fails for a non-transient reason
(a value no database takes), they are written one by one, so one bad row never holds the others:
a check that still cannot be written is counted against its token (``record_write_failure``:
lease released, retried soon, quarantined after ``QUARANTINE_AFTER_WRITE_FAILURES`` in a row, the
quarantine shown by /stuck and /token and lifted by the next check that is written).
Batch failures are logged on change of state (``FailureStreak``): one WARNING when fetching
starts failing, DEBUG while it fails, one INFO with the count when it recovers.
Every check's log lines carry ``mint`` and ``check_id`` in ``extra``.
"""
from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database, is_transient
from app.settings import Settings
from app.tasks import SHUTDOWN_GRACE_S, finish_or_cancel
from tokens.activation import (
    INSUFFICIENT_LIQUIDITY,
    NO_EXTERNAL_POOL,
    NO_PUMP_POOL,
    ActivationRules,
    evaluate,
)
from tokens.catch_up import CatchUp
from tokens.counters import PipelineCounters
from tokens.api_stats import tally_requests
from tokens.dexscreener import CIRCUIT_OPEN, TOKENS_BATCH, BatchResult, DexScreenerClient, FetchError
from tokens.failure_streak import FailureStreak
from tokens.flow import BatchSample, FlowHook, RunSample
from tokens.lifecycle import ACTIVATED, Decision, LifecyclePolicy, TokenState, decide
from tokens.models import ACTIVE
from tokens.repository import (
    QUARANTINE_AFTER_WRITE_FAILURES,
    QUARANTINE_S,
    WRITE_RETRY_S,
    CheckOutcome,
    ClaimPriority,
    DueToken,
    apply_checks,
    archive_expired,
    claim_due,
    delete_old,
    due_count,
    lease_due,
    record_write_failure,
    release_claims,
    select_due,
)
from tokens.scoring import ewma, score_pairs
from tokens.stage_stats import StageStats
from tokens.text import clean_text

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
BACKLOG_SCORE_WEIGHT_S = 0.1  # under a backlog, each point of smoothed score moves a token 0.1 s up the queue
RUN_TICK_MARGIN_S = 0.1  # a run stops dispatching this long before the next tick (the limiter's burst covers it)
MAX_BATCHES_WRITING = 32  # fetched batches waiting for their write beyond which no more are sent
PG_WRITERS = 4  # PostgreSQL: batches' writes in up to this many transactions at once (disjoint tokens)
MAX_WRITE_GROUP_ROWS = 300  # checks written in one transaction at most (batches waiting to write, together)
CLAIM_AHEAD_BATCHES = 128  # one claim leases at most this many batches (two runs' worth, ahead of dispatch)


# Checks that failed for these reasons while pools were present are handed to failure listeners
# (monitoring cross-checks the batch data against the per-token endpoint for them).
POOL_FAILURES = frozenset({NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY})
FailureListener = Callable[[DueToken, list, float], Awaitable[object]]


def _cached_note(result: BatchResult, mint: str, now: float) -> str | None:
    """A check judged on cached pools says so (its ``error`` column, ``ok`` stays true): how old
    the pools were and why they were not asked for (``tokens.pool_cache``)."""
    fetched_at = result.cached_at.get(mint)
    if fetched_at is None:
        return None
    age = max(0.0, now - fetched_at)
    why = result.stale_reason.get(mint)
    note = (f"stale: pools from {age:.0f}s ago (the market failed: {why})" if why is not None
            else f"cached: pools from {age:.0f}s ago (the market is slow)")
    return note[:MAX_ERROR_CHARS]


def _log_background_failure(task: asyncio.Task) -> None:
    """A background claim or count: its failure is logged here (a claim's is raised to the run waiting for it too)."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.warning("processor background query failed: %s: %s", type(exc).__name__, exc)


def _applier(outcomes: Sequence[CheckOutcome]) -> Callable[[Any], Awaitable[int]]:
    return lambda session: apply_checks(session, outcomes)


class Processor:
    """Checks due tokens (see module docstring). Implements ``ConcurrencyControl`` and
    ``BatchSizeControl`` from ``recovery.controllers``.

        processor = Processor(db, client, settings, clock, run_budget_s=0.8)
        await processor.run_once()
    """

    def __init__(self, db: Database, client: DexScreenerClient, settings: Settings, clock: Clock = SYSTEM_CLOCK, *,
                 stages: StageStats | None = None, counters: PipelineCounters | None = None,
                 rules: ActivationRules | None = None, policy: LifecyclePolicy | None = None,
                 run_budget_s: float | None = None, lease_s: float | None = None) -> None:
        self.db = db
        self.client = client
        self.settings = settings
        self.clock = clock
        self.stages = stages or StageStats(clock)
        self.counters = counters or PipelineCounters()
        self.rules = rules or ActivationRules.from_settings(settings)
        self.policy = policy or LifecyclePolicy.from_settings(settings)
        self._base_policy = self.policy
        self._cold_factor = 1.0
        interval = settings.process_interval_s
        self.run_budget_s = (run_budget_s if run_budget_s is not None
                             else max(interval * 0.5, interval - RUN_TICK_MARGIN_S))
        self.lease_s = lease_s if lease_s is not None else max(120.0, settings.api_timeout_s * 6)
        self._limit = settings.fetch_concurrency
        self._batch_size = settings.batch_size
        self._claim_lock = asyncio.Lock()
        self._slot_freed = asyncio.Event()
        self._inflight: set[int] = set()
        self._queued: deque[DueToken] = deque()  # claimed (leased) ahead of dispatch, not sent yet
        # SQLite has one writer: every db.run takes the database's write turn (app.db), not SQLite's busy-wait
        self._sqlite = db.write_turn is not None
        self._write_queue: deque[tuple[Sequence[CheckOutcome], asyncio.Future[int]]] = deque()  # group commit
        self._writers: set[asyncio.Task] = set()  # writer tasks (SQLite: one; PostgreSQL: up to PG_WRITERS)
        self._max_writers = 1 if self._sqlite else PG_WRITERS
        self._refill: asyncio.Task | None = None  # the claim running ahead of dispatch
        self._due_task: asyncio.Task[int] | None = None  # the due count for the next run, taken during this one
        self._last_due = 0
        self.failure_listeners: list[FailureListener] = []
        self.max_listener_calls_per_batch = 2
        self._listener_tasks: set[asyncio.Task] = set()
        self._batch_tasks: set[asyncio.Task] = set()  # batches fetching or writing (some outlive their run)
        self._fetch_started: dict[object, float] = {}   # batches at the market -> perf_counter() at start
        self._dispatched_last_run = 0   # batches the last run sent (sizes the claims ahead)
        self._fetching = 0  # batches whose request is at the market: at most limit()
        self.batches_overrun = 0  # batches still in flight at a run's deadline, finished in the background
        self.max_batches_in_flight = 0  # the most batches ever fetching at once
        self.flow: FlowHook | None = None  # told about every batch and run (recovery's flow controller)
        self.backlogged = False  # more due than the ceiling allows per run: claims by priority
        self.fetching = FailureStreak(log, "fetching", unit="batches", clock=clock)
        self.last_run_at: float | None = None
        self.last_run_checked = 0
        self.catch_up: CatchUp | None = None  # the first run's backlog, summed up in one line
        self._first_run, self._created_at = True, clock.time()

    # --- ConcurrencyControl / BatchSizeControl ---------------------------------
    def limit(self) -> int:
        return self._limit

    def set_limit(self, value: int) -> None:
        self._limit = max(1, min(64, int(value)))

    def batch_size(self) -> int:
        return self._batch_size

    def cold_factor(self) -> float:
        """How much longer than ``COLD_CHECK_INTERVAL_S`` cold tokens wait between checks (1: not at all)."""
        return self._cold_factor

    def set_cold_factor(self, value: float) -> None:
        """Stretch cold checks (load shedding): the cold interval times ``value`` (1..10)."""
        self._cold_factor = max(1.0, min(10.0, float(value)))
        base = self._base_policy
        self.policy = replace(base, cold_interval_s=base.cold_interval_s * self._cold_factor)

    def set_batch_size(self, value: int) -> None:
        self._batch_size = max(1, min(30, int(value)))

    @property
    def inflight_ids(self) -> frozenset[int]:
        return frozenset(self._inflight)

    # --- the job -----------------------------------------------------------------
    async def run_once(self) -> int:
        """Check due tokens until none are due or the run's budget is spent; returns tokens checked."""
        started = time.perf_counter()
        deadline = time.monotonic() + self.run_budget_s  # a real-time budget, whatever the clock
        now = self.clock.time()
        if self._first_run or self._due_task is None:
            queued = await self.db.run(lambda s: due_count(s, now))
        else:  # counted while the previous run dispatched: the count is not on the dispatch path
            queued = self._last_due if not self._due_task.done() or self._due_task.exception() else self._due_task.result()
        self._last_due = queued
        self._due_task = asyncio.create_task(self.db.run(lambda s: due_count(s, now)))
        self._due_task.add_done_callback(_log_background_failure)
        if self._first_run:  # tokens due before this processor existed fell due while tokenwatch was stopped
            born = self._created_at
            self._first_run, self.catch_up = False, CatchUp.at_start(await self.db.run(lambda s: due_count(s, born)))
        self.stages.set_queue("scheduler", queued)
        self.stages.set_queue("fetch", queued)
        limiter = self.client.limiter
        self._note_backlog(queued, limiter.rate_per_min / 60.0)
        drained = False
        slot_waits = 0
        mine: list[asyncio.Task[int]] = []
        try:
            while True:
                if self._slots_full():  # the in-flight limit holds this run back
                    slot_waits += 1
                    if not await self._wait_for_slot(deadline):
                        break
                if time.monotonic() + limiter.delay() > deadline:
                    break
                if not self.client.admits(TOKENS_BATCH):
                    await self._release_queued()  # the market's circuit is open: give claims back, wait
                    break
                batch = await self._take_batch(limiter.rate_per_min / 60.0)
                if not batch:
                    drained = True
                    break
                await limiter.acquire()
                if not self.client.admits(TOKENS_BATCH):
                    self._inflight.difference_update(t.id for t in batch)  # the one probe went out meanwhile
                    self._queued.extendleft(reversed(batch))
                    await self._release_queued()
                    break
                mine.append(self._start_batch(batch))
        except Exception as exc:  # noqa: BLE001 - a claim that failed (database down): the run ends, nothing lost
            log.error("processor run failed: %s: %s", type(exc).__name__, exc)
        self._dispatched_last_run = len(mine)
        # Wait for this run's batches only until the deadline: a slow (hanging) batch goes on in the
        # background, its tokens still leased and in flight (and holding its slot), and the run ends on time.
        pending = [t for t in mine if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        checked = 0
        for task in mine:
            if not task.done():
                self.batches_overrun += 1
            elif not task.cancelled() and task.exception() is None:
                checked += task.result()
        self.stages.record("scheduler", time.perf_counter() - started)
        self.last_run_at = self.clock.time()
        self.last_run_checked = checked
        if self.catch_up is not None and self.catch_up.over(queue_drained=drained and not self._batch_tasks):
            log.info(self.catch_up.summary())
            self.catch_up = None
        if self.flow is not None:
            self._tell_flow(lambda f: f.run_done(RunSample(
                at=self.clock.monotonic(), due=queued, inflight=len(self._batch_tasks), limit=self._limit,
                batch_size=self._batch_size, rate_per_s=limiter.rate_per_min / 60.0, burst=limiter.burst,
                slot_waits=slot_waits, backlogged=self.backlogged, fetch_age_s=self._median_fetch_age())))
        return checked

    def _note_backlog(self, due: int, rate_per_s: float) -> None:
        """Backlogged: more tokens due than the ceiling lets this run check (limiter pace x interval x
        batch size). Then claims put hot and high-score tokens first and cold checks stretch by up to a
        cold interval (``ClaimPriority``). Logged on change of state."""
        per_run = rate_per_s * self.settings.process_interval_s * self._batch_size
        backlogged = due > max(1.0, per_run)
        if backlogged != self.backlogged:
            if backlogged:
                log.info("backlog: %d tokens due, the ceiling allows about %.0f per run; hot and high-score "
                         "tokens go first, cold checks stretch", due, per_run)
            else:
                log.info("backlog cleared: %d tokens due; oldest due first again", due)
        self.backlogged = backlogged

    @property
    def claim_priority(self) -> ClaimPriority | None:
        """How claims are ordered now: by priority while backlogged, else oldest due first."""
        if not self.backlogged:
            return None
        p = self.policy
        return ClaimPriority(hot_boost_s=p.cold_interval_s, score_weight_s=BACKLOG_SCORE_WEIGHT_S,
                             hot_score_threshold=p.hot_score_threshold, fresh_hot_s=p.fresh_hot_s)

    async def _wait_for_slot(self, deadline: float) -> bool:
        """Wait until fewer than ``limit()`` batches are in flight; False when the deadline comes first."""
        while self._slots_full():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._slot_freed.clear()
            try:
                await asyncio.wait_for(self._slot_freed.wait(), remaining)
            except asyncio.TimeoutError:
                return False
        return True

    def _tell_flow(self, call: Callable[[FlowHook], object]) -> None:
        """Hand a sample to the flow hook; its failure is logged, never raised into processing."""
        if self.flow is None:
            return
        try:
            call(self.flow)
        except Exception:  # noqa: BLE001 - a controller's bug never stops the checks
            log.exception("flow controller failed")

    def _median_fetch_age(self) -> float:
        """The median age of the batches at the market now (0 when none): the flow controller's early
        sign of a latency step (the first slow answer comes one whole round trip later)."""
        if not self._fetch_started:
            return 0.0
        now = time.perf_counter()
        return float(statistics.median(now - t for t in self._fetch_started.values()))

    def _slots_full(self) -> bool:
        """``limit()`` batches are fetching (the bound on market requests in flight), or so many
        fetched batches wait to be written that the database, not the market, holds work back."""
        return (self._fetching >= self._limit
                or len(self._batch_tasks) >= self._limit + MAX_BATCHES_WRITING)

    def _start_batch(self, batch: Sequence[DueToken]) -> asyncio.Task[int]:
        """Run one batch as a tracked task. It holds an in-flight slot while it fetches (the limit
        bounds requests at the market, not database writes); its tokens leave ``_inflight`` only
        when it ends, written."""
        ids = [t.id for t in batch]
        held = [True]
        self._fetching += 1
        self.max_batches_in_flight = max(self.max_batches_in_flight, self._fetching)
        key = object()
        self._fetch_started[key] = time.perf_counter()

        def fetched() -> None:
            if held[0]:
                held[0] = False
                self._fetching -= 1
                self._fetch_started.pop(key, None)
                self._slot_freed.set()

        task = asyncio.create_task(self._process_batch(batch, fetched))
        self._batch_tasks.add(task)

        def finished(t: asyncio.Task[int]) -> None:
            fetched()
            self._batch_tasks.discard(t)
            self._inflight.difference_update(ids)
            self._slot_freed.set()
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                log.error("processor batch failed: %s: %s", type(exc).__name__, exc)

        task.add_done_callback(finished)
        return task

    @property
    def batches_in_flight(self) -> int:
        """Batches being fetched or written right now (including ones that outlived their run)."""
        return len(self._batch_tasks)

    async def _take_batch(self, rate_per_s: float) -> list[DueToken]:
        """The next ``batch_size()`` claimed tokens. Claims run ahead: one claim leases two runs' worth
        of batches (what the limiter lets through in two ticks, at most ``CLAIM_AHEAD_BATCHES``), and
        the next one starts in the background once less than a run's worth is left, so dispatch
        waits for the database only when the queue runs dry."""
        size = self._batch_size
        # a run's worth: what the limiter lets through in a tick, but no more than this process sent in
        # its last run (or its in-flight limit): a process held back by round trips claims only what
        # it can send, and leaves the rest due for the other processes instead of leasing it to its queue
        pace = max(1, math.ceil(rate_per_s * self.settings.process_interval_s))
        per_run = min(pace, max(self._limit, self._dispatched_last_run))
        want = min(CLAIM_AHEAD_BATCHES, 2 * per_run) * size
        if len(self._queued) < size:
            await self._refill_now(want)
        elif len(self._queued) < per_run * size and (self._refill is None or self._refill.done()):
            self._refill = asyncio.create_task(self._claim_more(want))
            self._refill.add_done_callback(_log_background_failure)
        batch = [self._queued.popleft() for _ in range(min(size, len(self._queued)))]
        self._inflight.update(t.id for t in batch)
        return batch

    async def _refill_now(self, want: int) -> None:
        """Wait for the claim in flight (or start one); a claim's failure is raised here."""
        for _ in range(2):  # a background claim that found too little: one fresh claim more
            task, fresh = self._refill, False
            if task is None or task.done():
                task = self._refill = asyncio.create_task(self._claim_more(want))
                task.add_done_callback(_log_background_failure)
                fresh = True
            await asyncio.shield(task)  # a run ending (cancelled) does not cancel a claim half-way
            if fresh or len(self._queued) >= self._batch_size:
                return

    async def _claim_more(self, want: int) -> int:
        """Claim up to ``want`` tokens less those queued; append them to the queue."""
        async with self._claim_lock:  # one claimer at a time: no token is handed to two workers
            need = want - len(self._queued)
            if need <= 0:
                return 0
            now = self.clock.time()
            exclude = frozenset(self._inflight).union(t.id for t in self._queued)
            claimed = await self._claim_due(now, need, exclude, self.claim_priority)
            self._queued.extend(claimed)
            return len(claimed)

    async def _claim_due(self, now: float, want: int, exclude: frozenset[int],
                         priority: ClaimPriority | None) -> list[DueToken]:
        """PostgreSQL: ``claim_due``, one statement. SQLite: the read (a ranked backlog read scans
        every due row) beside the writers, then only the lease takes the write turn."""
        if not self._sqlite:
            return await self.db.run(lambda s: claim_due(s, now, want, self.lease_s, exclude, priority))
        rows = await self.db.run(lambda s: select_due(s, now, want, exclude, priority), turn=False)
        return await self.db.run(lambda s: lease_due(s, rows, now, self.lease_s))

    async def _release_queued(self) -> None:
        """Give back tokens claimed ahead but not sent (due when they were due)."""
        if not self._queued:
            return
        queued = list(self._queued)
        self._queued.clear()
        try:
            await self.db.run(lambda s: release_claims(s, queued))
        except Exception as exc:  # noqa: BLE001 - their leases expire: checked again later, never lost
            log.warning("could not release %d claimed tokens (%s); they are due again when their lease ends",
                        len(queued), type(exc).__name__)

    @property
    def queued(self) -> int:
        """Tokens claimed ahead of dispatch, waiting for a limiter slot."""
        return len(self._queued)

    async def _process_batch(self, batch: Sequence[DueToken], fetched: Callable[[], None] = lambda: None) -> int:
        mints = [t.mint for t in batch]
        result: BatchResult | None = None
        error: str | None = None
        tally = tally_requests()  # this task's attempts, by outcome, for the flow hook
        t0 = time.perf_counter()
        try:
            result = await self.client.fetch_batch(mints, acquired=True)
        except FetchError as exc:
            if exc.kind == CIRCUIT_OPEN:  # nothing was sent: not a check; the tokens keep their due place
                fetched()
                await self.db.run(lambda s: release_claims(s, batch))
                return 0
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever happens, the tokens stay scheduled
            error = f"{type(exc).__name__}: {exc}"
            log.exception("unexpected error fetching a batch of %d", len(mints))
        fetched()  # the market answered (or failed): the in-flight slot is free for the next request
        fetch_s = time.perf_counter() - t0
        self.stages.record("fetch", fetch_s, items=len(mints))
        if error is not None:
            self.counters.batch_failures += 1
            self.fetching.failed(f"batch of {len(mints)} tokens failed: {error[:200]}")
        else:
            assert result is not None
            self.fetching.succeeded()
            self.counters.malformed_pairs.update(result.skipped)

        t1 = time.perf_counter()
        now = self.clock.time()
        per_token_ms = fetch_s * 1000.0 / max(1, len(mints))
        outcomes = [self._safe_outcome(tok, result, error, now, per_token_ms) for tok in batch]
        self.stages.record("scoring", time.perf_counter() - t1, items=len(outcomes))

        t2 = time.perf_counter()
        written = await self._write(outcomes, now)
        self.stages.record("db_write", time.perf_counter() - t2, items=len(outcomes))
        self.counters.checks += written
        if self.flow is not None:
            sample = BatchSample(
                at=self.clock.monotonic(), tokens=len(mints), hold_s=time.perf_counter() - t0, fetch_s=fetch_s,
                ok=error is None, attempts=tally.attempts, rate_limited=tally.rate_limited,
                timeouts=tally.timeouts, errors=tally.errors, inflight=len(self._batch_tasks),
                timeout_s=self.client.timeout_s(TOKENS_BATCH))
            self._tell_flow(lambda f: f.batch_done(sample))
        if result is not None:
            self._notify_failures(batch, outcomes, result, now)
        for o in outcomes:
            if o.write_error is not None:
                continue  # logged by _write_one
            if not o.written:
                log.info("token changed during its check; result dropped",
                         extra={"mint": o.mint, "check_id": o.check["check_id"]})
                continue
            if not o.check["ok"]:
                self.counters.check_failures += 1
            in_catch_up = self.catch_up is not None and self.catch_up.take(o.transition)
            if o.transition is not None:
                frm, to, reason, _ = o.transition
                self.counters.transitions[reason] += 1
                log.log(logging.DEBUG if in_catch_up else logging.INFO, "%s -> %s (%s)", frm, to, reason,
                        extra={"mint": o.mint, "check_id": o.check["check_id"]})
        return written

    async def _write(self, outcomes: Sequence[CheckOutcome], now: float) -> int:
        """Write the batch in one transaction; on a non-transient failure, row by row (see the module
        docstring). A transient fault (the database is down) propagates: the leases keep the tokens."""
        try:
            return await self._write_combined(outcomes)
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_transient(exc):
                raise
            log.warning("writing a batch of %d checks failed (%s); writing them one by one",
                        len(outcomes), clean_text(f"{type(exc).__name__}: {exc}", 200))
        written = 0
        for o in outcomes:
            try:
                written += await self._write_one(o, now)
            except Exception as exc:  # noqa: BLE001 - a transient fault mid-way: the rest stay leased
                if not is_transient(exc):
                    raise
                log.warning("database fault while writing checks one by one (%s); the rest are retried when "
                            "their lease ends", type(exc).__name__)
                break
        return written

    async def _write_combined(self, outcomes: Sequence[CheckOutcome]) -> int:
        """Write one batch's checks, in one transaction with whatever other batches are waiting to
        write (group commit: up to ``MAX_WRITE_GROUP_ROWS`` rows, one UPDATE and one INSERT for all).
        Returns this batch's rows written or raises this batch's own failure: when a group's write
        fails, each batch of it is written again alone, so one batch's bad row never costs another."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._write_queue.append((outcomes, future))
        if len(self._writers) < self._max_writers:
            writer = asyncio.create_task(self._drain_writes())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await future

    async def _drain_writes(self) -> None:
        """A writer task: takes the waiting batches a group at a time until none wait. On SQLite the
        group is formed once the write turn is ours, so batches that arrived meanwhile join it."""
        while self._write_queue:
            try:
                async with self.db.turn():   # SQLite: the group forms once the turn is ours
                    await self._write_group()
            except asyncio.CancelledError:  # stopping: nobody writes these; their leases keep the tokens
                for _, future in self._write_queue:
                    future.cancel()
                self._write_queue.clear()
                raise

    async def _write_group(self) -> None:
        """Write the next group of waiting batches in one transaction (the caller holds the write turn)."""
        group: list[tuple[Sequence[CheckOutcome], asyncio.Future[int]]] = []
        rows = 0
        while self._write_queue and (not group or rows + len(self._write_queue[0][0]) <= MAX_WRITE_GROUP_ROWS):
            item = self._write_queue.popleft()
            group.append(item)
            rows += len(item[0])
        if not group:
            return
        everything = [o for outcomes, _ in group for o in outcomes]
        try:
            await self.db.run(_applier(everything))
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the batches below
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(exc)
                return
            for outcomes, future in group:  # each batch alone: its own result or its own failure
                try:
                    await self.db.run(_applier(outcomes))
                except Exception as alone:  # noqa: BLE001 - the batch's own failure, raised in _write
                    if not future.done():
                        future.set_exception(alone)
                    continue
                if not future.done():
                    future.set_result(sum(o.written for o in outcomes))
            return
        for outcomes, future in group:
            if not future.done():
                future.set_result(sum(o.written for o in outcomes))

    async def _write_one(self, o: CheckOutcome, now: float) -> int:
        try:
            return await self.db.run(lambda s: apply_checks(s, [o]))
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_transient(exc):
                raise
            o.written = False
            cause = getattr(exc, "orig", None) or exc  # the driver's error, without SQLAlchemy's SQL dump
            reason = clean_text(f"write_failed: {type(cause).__name__}: {cause}", 256) or "write_failed"
            o.write_error = reason
        self.counters.write_failures += 1
        extra = {"mint": o.mint, "check_id": o.check["check_id"]}
        try:
            quarantined = await self.db.run(lambda s: record_write_failure(s, o.token_id, reason, now))
        except Exception as exc:  # noqa: BLE001 - the token stays leased and is retried when the lease ends
            log.error("check could not be written (%s), nor its failure recorded (%s: %s)", reason,
                      type(exc).__name__, clean_text(str(exc), 200), extra=extra)
            return 0
        if quarantined:
            self.counters.quarantined += 1
            log.warning("token quarantined: %d checks in a row could not be written (%s); retried in %.0fs",
                        QUARANTINE_AFTER_WRITE_FAILURES, reason, QUARANTINE_S, extra=extra)
        else:
            log.warning("check could not be written (%s); the token is retried in %.0fs", reason, WRITE_RETRY_S,
                        extra=extra)
        return 0

    def _notify_failures(self, batch: Sequence[DueToken], outcomes: Sequence[CheckOutcome], result: BatchResult,
                         now: float) -> None:
        """Hand checks that failed on pool conditions (with pools present) to the failure listeners,
        at most ``max_listener_calls_per_batch`` per batch. The most useful go first: active tokens
        (this check demotes them), then liquidity failures (possible near misses), then the rest.
        Listeners keep their own request budget (``monitoring.discrepancies.PoolVerifier``) and may
        decline. They run as tracked background tasks; their failures are logged, never raised."""
        if not self.failure_listeners or self.max_listener_calls_per_batch < 1:
            return
        candidates = []
        for tok, o in zip(batch, outcomes):
            pairs = result.pairs_by_mint.get(tok.mint) or []
            if (o.written and o.check["ok"] and not o.check["passed"] and pairs
                    and o.check["primary_failure"] in POOL_FAILURES):
                candidates.append((tok, pairs, o.check["primary_failure"]))
        candidates.sort(key=lambda c: (c[0].status != ACTIVE, c[2] != INSUFFICIENT_LIQUIDITY))  # stable
        for tok, pairs, _ in candidates[: self.max_listener_calls_per_batch]:
            for listener in self.failure_listeners:
                task = asyncio.create_task(self._call_listener(listener, tok, pairs, now))
                self._listener_tasks.add(task)
                task.add_done_callback(self._listener_tasks.discard)

    async def _call_listener(self, listener: "FailureListener", tok: DueToken, pairs: list, now: float) -> None:
        try:
            await listener(tok, pairs, now)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a listener never breaks processing
            log.exception("failure listener failed", extra={"mint": tok.mint})

    async def close(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Let batches and listener tasks in flight finish within ``grace_s``, then cancel the rest
        (their leases expire, so their tokens are checked again later); tokens claimed ahead but not
        sent are given back, due when they were due."""
        await finish_or_cancel([*self._batch_tasks, *self._listener_tasks], grace_s)
        if self._writers:
            await finish_or_cancel(list(self._writers), grace_s)
        if self._refill is not None:
            await finish_or_cancel([self._refill], grace_s)
        if self._due_task is not None:
            await finish_or_cancel([self._due_task], 0.0)
        await self._release_queued()

    def _safe_outcome(self, tok: DueToken, result: BatchResult | None, batch_error: str | None, now: float,
                      duration_ms: float) -> CheckOutcome:
        """``_outcome``, but a surprise from one token's data (a bug, junk nobody foresaw) becomes
        that token's failed check instead of costing the whole batch its checks."""
        try:
            return self._outcome(tok, result, batch_error, now, duration_ms)
        except Exception as exc:  # noqa: BLE001 - one token's junk never sinks the batch
            log.exception("could not evaluate a token; recorded as a failed check", extra={"mint": tok.mint})
            return self._outcome(tok, None, f"check_error: {type(exc).__name__}: {exc}", now, duration_ms)

    def _outcome(self, tok: DueToken, result: BatchResult | None, batch_error: str | None, now: float,
                 duration_ms: float) -> CheckOutcome:
        check_id = uuid.uuid4().hex
        extra = {"mint": tok.mint, "check_id": check_id}
        state = TokenState(tok.status, tok.status_since, tok.low_score_since, tok.consecutive_failures)
        error = batch_error if batch_error is not None else (result.errors.get(tok.mint) if result else None)
        if error is not None or result is None:
            decision = decide(state, ok=False, passed=False, primary_failure=None, score_ewma=tok.score_ewma,
                              now=now, policy=self.policy)
            log.debug("check failed: %s", error, extra=extra)
            values = {"last_check_at": now, "consecutive_failures": tok.consecutive_failures + 1,
                      **self._decision_values(decision, tok, now)}
            check = {"check_id": check_id, "at": now, "status_at_check": tok.status, "ok": False, "passed": False,
                     "failure_codes": None, "primary_failure": None, "conditions": None, "score": None,
                     "pairs_count": 0, "duration_ms": duration_ms, "error": (error or "unknown")[:MAX_ERROR_CHARS]}
            return self._finish(tok, decision, check, values, ())

        pairs = result.pairs_by_mint.get(tok.mint, [])
        activation = evaluate(pairs, self.rules, now, result.fetched_at_for(tok.mint) or now,
                              malformed=result.skipped_by_mint.get(tok.mint, 0), mint=tok.mint)
        breakdown = score_pairs(activation.pairs, now)
        smoothed = ewma(tok.score_ewma, breakdown.score, self.settings.score_ewma_alpha)
        decision = decide(state, ok=True, passed=activation.passed, primary_failure=activation.primary_failure,
                          score_ewma=smoothed, now=now, policy=self.policy)
        codes = ",".join(activation.failure_codes)[:256] or None
        values = {"last_check_at": now, "last_success_at": now, "consecutive_failures": 0,
                  "score": breakdown.score, "score_ewma": round(smoothed, 3), "last_failure_codes": codes,
                  **self._decision_values(decision, tok, now)}
        if not tok.has_name:
            named = next((p for p in activation.pairs if p.base_name or p.base_symbol), None)
            if named is not None:
                values["name"], values["symbol"] = named.base_name, named.base_symbol
        check = {"check_id": check_id, "at": now, "status_at_check": tok.status, "ok": True,
                 "passed": activation.passed, "failure_codes": codes, "primary_failure": activation.primary_failure,
                 "conditions": activation.conditions_json(), "score": breakdown.score,
                 "pairs_count": len(activation.pairs), "duration_ms": duration_ms,
                 "error": _cached_note(result, tok.mint, now)}
        log.debug("checked: passed=%s score=%.1f codes=%s", activation.passed, breakdown.score, codes, extra=extra)
        discrepancies = [(kind, addr) for mint, kind, addr in result.discrepancies if mint == tok.mint]
        return self._finish(tok, decision, check, values, discrepancies)

    def _decision_values(self, decision: Decision, tok: DueToken, now: float) -> dict:
        values = {"status": decision.status, "status_since": decision.status_since,
                  "low_score_since": decision.low_score_since, "next_check_at": decision.next_check_at}
        if decision.reason == ACTIVATED:
            values["activated_at"] = now
        return values

    def _finish(self, tok: DueToken, decision: Decision, check: dict, values: dict,
                discrepancies: Sequence[tuple[str, str]]) -> CheckOutcome:
        transition = None
        if decision.changed:
            assert decision.reason is not None
            transition = (tok.status, decision.status, decision.reason, max(0.0, check["at"] - tok.status_since))
        return CheckOutcome(token_id=tok.id, expected_status=tok.status, check=check, token_values=values,
                            transition=transition, discrepancies=discrepancies, mint=tok.mint)

    # --- housekeeping jobs ----------------------------------------------------------
    async def archive_expired(self) -> int:
        """Archive tokens past their timeouts that are not being checked right now."""
        now = self.clock.time()
        archived = await self.db.run(lambda s: archive_expired(
            s, now, monitoring_timeout_s=self.policy.monitoring_timeout_s,
            low_score_timeout_s=self.policy.low_score_timeout_s, exclude_ids=frozenset(self._inflight)))
        for mint, reason in archived:
            self.counters.transitions[reason] += 1
            log.info("archived (%s)", reason, extra={"mint": mint, "check_id": None})
        return len(archived)

    async def retention(self) -> tuple[int, int]:
        """Delete old checks/transitions of archived tokens (``RETENTION_DAYS``)."""
        now = self.clock.time()
        retention_s = self.settings.retention_days * 86400.0
        deleted = await self.db.run(lambda s: delete_old(s, now, retention_s))
        if any(deleted):
            log.info("retention deleted %d checks and %d transitions", *deleted)
        return deleted

