"""Supervised long-lived loops: restarted with backoff when they fail, cancelled when they hang.

The scheduler runs periodic jobs; everything that runs *forever* (the outbox sender, the
websocket listener, Telegram polling, the console chat, the loop-lag probe, the status line,
the scheduler's watchdog) runs under one ``Supervisor`` instead of as a bare task, so a loop
that died or hung is noticed, restarted and shown in ``/jobs`` and ``/metrics``. Parts
contribute ``LoopSpec``s from ``loops()`` (next to ``jobs()``); the composition root registers
them::

    supervisor = Supervisor(clock)
    supervisor.add(LoopSpec("bot.outbox_sender", sender.run, stop=sender.stop,
                            backoff=Backoff(base_s=1.0, max_s=60.0), heartbeat_budget_s=None))
    await supervisor.start()                 # inside a running event loop
    for stats in supervisor.loop_stats():
        print(stats.id, stats.state, stats.restarts, stats.last_error)
    await supervisor.restart("bot.outbox_sender")   # an operator's restart (/jobs button)
    await supervisor.stop()                  # each loop's ``stop`` first, then cancellation

Rules, by their names:

* A loop that raised, or returned while it should run forever (``restart_on_return``), is
  restarted after ``backoff.delay(attempt)``; ``attempt`` counts consecutive failures and
  starts over once a run has lasted ``stable_after_s``.
* ``FatalLoopError`` raised from a loop marks it ``failed`` and it is not restarted (e.g.
  Telegram refused the bot token); an operator may still restart it from ``/jobs``.
* Heartbeats: a loop with ``heartbeat_budget_s`` calls :func:`beat` (from anywhere in its
  task) at least that often; the watchdog (every ``watchdog_interval_s``) cancels a loop whose
  last beat is older than its budget and restarts it, when ``restart_gate`` (if set) allows. When the watchdog itself woke late (the
  event loop was blocked), every loop is pardoned once instead of judged.
* Logging on change of state: the first failure after a healthy run is a WARNING, repeats are
  DEBUG, the recovery is an INFO line saying how many restarts it took; a fatal error is one
  ERROR. Stopping logs no error.
* ``clock`` and ``sleep`` are injectable: tests drive restarts without waiting.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from app.backoff import Backoff
from app.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

LoopState = Literal["idle", "running", "restarting", "failed", "stopped"]
LOOP_STATES: tuple[LoopState, ...] = ("idle", "running", "restarting", "failed", "stopped")

DEFAULT_BACKOFF = Backoff(base_s=1.0, max_s=60.0)
DEFAULT_STABLE_AFTER_S = 60.0
DEFAULT_STOP_TIMEOUT_S = 5.0
DEFAULT_WATCHDOG_INTERVAL_S = 1.0
MAX_ERROR_CHARS = 500

Sleep = Callable[[float], Awaitable[object]]


class RestartGate(Protocol):
    """Asked before a watchdog restarts a job or a loop on its own (never for an operator's restart):
    False leaves it as it is (``recovery.watchdog`` allows N restarts an hour each, then alerts)::

        supervisor.restart_gate = scheduler.restart_gate = watchdog
    """

    def allow(self, kind: str, name: str, reason: str) -> bool: ...


class FatalLoopError(Exception):
    """Raised by a loop body that must not be restarted (the reason is the message)."""


@dataclass(frozen=True)
class LoopSpec:
    """One long-lived loop, with its limits named (in the manner of arq's worker settings).

    ``run``: the body; it should run until cancelled (or until ``stop`` is awaited).
    ``stop``: asks the body to return gracefully on shutdown; without it, it is cancelled.
    ``backoff``: the delay before restart number ``attempt`` (``app.backoff.Backoff``).
    ``heartbeat_budget_s``: the longest gap between two :func:`beat` calls; None = not watched.
    ``restart_on_return``: a body that returns by itself is restarted (True) or left ``stopped``.
    ``stable_after_s``: a run this long resets the backoff and counts as recovered.
    ``stop_timeout_s``: how long ``stop()`` (and a cancellation) may take before giving up.
    """

    id: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]] | None = None
    backoff: Backoff = DEFAULT_BACKOFF
    heartbeat_budget_s: float | None = None
    restart_on_return: bool = True
    stable_after_s: float = DEFAULT_STABLE_AFTER_S
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.id or not self.id.strip():
            raise ValueError("LoopSpec.id must be a non-empty name")
        if self.heartbeat_budget_s is not None and not self.heartbeat_budget_s > 0:
            raise ValueError(f"loop {self.id}: heartbeat_budget_s must be positive, got {self.heartbeat_budget_s!r}")
        if not self.stable_after_s >= 0 or not self.stop_timeout_s > 0:
            raise ValueError(f"loop {self.id}: stable_after_s must be >= 0 and stop_timeout_s > 0")


@dataclass
class LoopStats:
    """What ``/jobs`` and the ``loops`` collector show about one loop (epoch seconds)."""

    id: str
    heartbeat_budget_s: float | None = None
    state: LoopState = "idle"
    restarts: int = 0          # every start after the first (failures, hangs and operator restarts)
    failures: int = 0          # runs that raised or returned unexpectedly
    hangs: int = 0             # runs cancelled for a missed heartbeat
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_start: float | None = None
    last_beat: float | None = None
    next_restart_at: float | None = None

    def uptime_s(self, now: float) -> float | None:
        """How long the current run has lasted; None unless running."""
        if self.state != "running" or self.last_start is None:
            return None
        return max(0.0, now - self.last_start)

    def beat_age_s(self, now: float) -> float | None:
        return None if self.last_beat is None else max(0.0, now - self.last_beat)


@dataclass
class _Loop:
    spec: LoopSpec
    stats: LoopStats
    beat_mono: float = 0.0
    start_mono: float = 0.0
    body: asyncio.Task[None] | None = None
    keeper: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    removed: bool = False
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Clock = SYSTEM_CLOCK

    def beat(self) -> None:
        self.beat_mono = self.clock.monotonic()
        self.stats.last_beat = self.clock.time()


_current: contextvars.ContextVar[_Loop | None] = contextvars.ContextVar("tokenwatch_supervised_loop", default=None)


def beat() -> None:
    """Tell the supervisor the calling loop is alive (a no-op outside a supervised loop).

    Works from the loop's own task and from tasks it created (they inherit its context)::

        async def run(self) -> None:
            while True:
                beat()
                await self.one_pass()
    """
    loop = _current.get()
    if loop is not None:
        loop.beat()


class Supervisor:
    """Runs ``LoopSpec``s, restarts them, watches their heartbeats (see the module docstring)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, *, sleep: Sleep = asyncio.sleep,
                 watchdog_interval_s: float | None = DEFAULT_WATCHDOG_INTERVAL_S) -> None:
        if watchdog_interval_s is not None and not watchdog_interval_s > 0:
            raise ValueError("watchdog_interval_s must be positive (or None to drive check() by hand)")
        self.clock = clock
        self._sleep = sleep
        self.watchdog_interval_s = watchdog_interval_s
        self._loops: dict[str, _Loop] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._last_check_mono: float | None = None
        self._started = False
        self._stopping = False
        self.restart_gate: RestartGate | None = None

    # -- registration ---------------------------------------------------------
    def add(self, spec: LoopSpec) -> None:
        """Register a loop under its stable id; started now if the supervisor already runs."""
        if spec.id in self._loops:
            raise ValueError(f"loop {spec.id} is already registered")
        self._loops[spec.id] = _Loop(spec, LoopStats(spec.id, heartbeat_budget_s=spec.heartbeat_budget_s),
                                     clock=self.clock)
        if self._started and not self._stopping:
            self._spawn(self._loops[spec.id])

    def add_all(self, specs: list[LoopSpec]) -> None:
        for spec in specs:
            self.add(spec)

    async def remove(self, loop_id: str) -> bool:
        """Stop a loop (its ``stop`` first, then cancellation) and forget it; ``add`` may register
        it again (a process that stops and starts leading). False if the id is unknown."""
        loop = self._loops.pop(loop_id, None)
        if loop is None:
            return False
        loop.removed = True
        await self._stop_one(loop)
        return True

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        """Start every registered loop and the heartbeat watchdog; needs a running event loop."""
        if self._started:
            return
        self._started, self._stopping = True, False
        for loop in self._loops.values():
            self._spawn(loop)
        if self.watchdog_interval_s is not None:
            self._watchdog = asyncio.create_task(self._watch(), name="supervisor-watchdog")

    async def stop(self) -> None:
        """Stop every loop: its ``stop`` first (bounded by ``stop_timeout_s``), then cancellation."""
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        await asyncio.gather(*(self._stop_one(loop) for loop in self._loops.values()))
        self._started = False

    async def _stop_one(self, loop: _Loop) -> None:
        spec = loop.spec
        loop.kick.set()
        body = loop.body
        if spec.stop is not None and body is not None and not body.done():
            try:
                await asyncio.wait_for(spec.stop(), spec.stop_timeout_s)
            except Exception as exc:  # noqa: BLE001 - stopping goes on whatever one loop does
                log.warning("loop %s: its stop() failed (%s: %s); cancelling it", spec.id, type(exc).__name__, exc)
            if not body.done():
                await asyncio.wait({body}, timeout=spec.stop_timeout_s)
        for task in (loop.body, loop.keeper):
            if task is not None and not task.done():
                task.cancel()
        pending = [t for t in (loop.body, loop.keeper) if t is not None]
        if pending:
            done, still = await asyncio.wait(pending, timeout=spec.stop_timeout_s)
            if still:
                log.warning("loop %s did not stop within %.0fs of being cancelled", spec.id, spec.stop_timeout_s)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: a body's last error on stop is not "never retrieved"
        if loop.stats.state != "failed":
            loop.stats.state = "stopped"
        loop.stats.next_restart_at = None

    async def restart(self, loop_id: str) -> bool:
        """An operator's restart: cancel the running body (or skip the backoff wait, or revive a
        failed/stopped loop) and start it again at once. False if the id is unknown."""
        loop = self._loops.get(loop_id)
        if loop is None or self._stopping or not self._started:
            return False
        log.info("loop %s: restart requested", loop_id)
        loop.stats.consecutive_failures = 0
        if loop.keeper is None or loop.keeper.done():
            loop.stats.restarts += 1
            self._spawn(loop)
            return True
        body = loop.body
        if body is not None and not body.done():
            loop.cancel_reason = "restart"
            body.cancel()
        else:
            loop.kick.set()
        return True

    # -- the watchdog -----------------------------------------------------------
    async def _watch(self) -> None:
        assert self.watchdog_interval_s is not None
        failing = False
        while True:
            await self._sleep(self.watchdog_interval_s)
            try:
                self.check()
                failing = False
            except Exception:  # noqa: BLE001 - the watchdog itself must not die; said once per streak
                if not failing:
                    log.exception("supervisor watchdog pass failed; it keeps watching")
                failing = True

    def check(self) -> list[str]:
        """One watchdog pass: cancel (for a restart) every loop whose heartbeat is older than its
        budget; returns their ids. Also notices a run that lasted ``stable_after_s`` (recovered)."""
        now = self.clock.monotonic()
        last, self._last_check_mono = self._last_check_mono, now
        if (self.watchdog_interval_s is not None and last is not None
                and now - last > 2 * self.watchdog_interval_s + 1.0):
            # The watchdog itself is late: the event loop was blocked, so nobody could beat.
            for loop in self._loops.values():
                loop.beat_mono = max(loop.beat_mono, now)
            return []
        hung: list[str] = []
        for loop in self._loops.values():
            body, stats, spec = loop.body, loop.stats, loop.spec
            if stats.state != "running" or body is None or body.done():
                continue
            self._note_recovery(loop, now)
            budget = spec.heartbeat_budget_s
            if budget is not None and now - loop.beat_mono > budget and loop.cancel_reason is None:
                reason = f"hung: no heartbeat for {now - loop.beat_mono:.0f}s (budget {budget:g}s)"
                if self.restart_gate is not None and not self.restart_gate.allow("loop", spec.id, reason):
                    continue   # restarted too often: left as it is (the gate alerts)
                loop.cancel_reason = reason
                body.cancel()
                hung.append(spec.id)
        return hung

    def _note_recovery(self, loop: _Loop, now_mono: float) -> None:
        stats = loop.stats
        if stats.consecutive_failures and now_mono - loop.start_mono >= loop.spec.stable_after_s:
            log.info("loop %s recovered (running for %.0fs after %d restarts)", loop.spec.id,
                     now_mono - loop.start_mono, stats.consecutive_failures)
            stats.consecutive_failures = 0

    # -- running --------------------------------------------------------------
    def _spawn(self, loop: _Loop) -> None:
        loop.kick = asyncio.Event()
        loop.keeper = asyncio.create_task(self._keep(loop), name=f"supervise:{loop.spec.id}")

    async def _body(self, loop: _Loop) -> None:
        _current.set(loop)
        await loop.spec.run()

    async def _keep(self, loop: _Loop) -> None:
        spec, stats = loop.spec, loop.stats
        while not self._stopping and not loop.removed:
            loop.cancel_reason = None
            loop.start_mono = self.clock.monotonic()
            stats.last_start = self.clock.time()
            stats.next_restart_at = None
            stats.state = "running"
            loop.beat()
            loop.body = asyncio.create_task(self._body(loop), name=f"loop:{spec.id}")
            await asyncio.wait({loop.body})
            if self._stopping or loop.removed:
                return
            body, reason = loop.body, loop.cancel_reason
            if self.clock.monotonic() - loop.start_mono >= spec.stable_after_s:
                self._note_recovery(loop, self.clock.monotonic())
                stats.consecutive_failures = 0
            exc: BaseException | None = None
            if reason == "restart":
                stats.restarts += 1
                continue
            if reason is not None:  # the watchdog cancelled it
                stats.hangs += 1
                error = reason
            elif body.cancelled():
                error = "cancelled"
            else:
                exc = body.exception()
                if isinstance(exc, FatalLoopError):
                    self._record_error(stats, str(exc) or type(exc).__name__)
                    stats.state = "failed"
                    log.error("loop %s stopped for good: %s", spec.id, stats.last_error)
                    return
                if exc is None and not spec.restart_on_return:
                    stats.state = "stopped"
                    log.info("loop %s finished", spec.id)
                    return
                error = "returned unexpectedly" if exc is None else f"{type(exc).__name__}: {exc}"
            stats.failures += 1
            self._record_error(stats, error)
            delay = spec.backoff.delay(stats.consecutive_failures)
            if stats.consecutive_failures == 0:
                log.warning("loop %s: %s; restarting in %.1fs (logged again when it recovers)",
                            spec.id, stats.last_error, delay, exc_info=exc)
            else:
                log.debug("loop %s: %s; restart %d in %.1fs", spec.id, stats.last_error,
                          stats.consecutive_failures + 1, delay)
            stats.consecutive_failures += 1
            stats.state = "restarting"
            stats.next_restart_at = self.clock.time() + delay
            await self._wait_or_kick(loop, delay)
            if self._stopping or loop.removed:
                return
            stats.restarts += 1

    async def _wait_or_kick(self, loop: _Loop, delay: float) -> None:
        loop.kick.clear()
        waiter = asyncio.ensure_future(self._sleep(delay))
        kicked = asyncio.ensure_future(loop.kick.wait())
        try:
            await asyncio.wait({waiter, kicked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (waiter, kicked):
                if not fut.done():
                    fut.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(waiter, kicked, return_exceptions=True)

    def _record_error(self, stats: LoopStats, message: str) -> None:
        stats.last_error = message[:MAX_ERROR_CHARS]
        stats.last_error_at = self.clock.time()

    # -- reading --------------------------------------------------------------
    def loop_ids(self) -> list[str]:
        return sorted(self._loops)

    def loop_stats(self) -> list[LoopStats]:
        """Stats of every registered loop, sorted by id."""
        return [self._loops[i].stats for i in sorted(self._loops)]

    def get(self, loop_id: str) -> LoopStats | None:
        loop = self._loops.get(loop_id)
        return None if loop is None else loop.stats
