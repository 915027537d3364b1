"""The one seam between leadership and the singletons: the ``LeaderGate`` holds the jobs and
loops only the leader runs, and starts or stops them when this process wins or loses the lease.

    gate = LeaderGate(leadership, scheduler, supervisor, renew_s=settings.leader_renew_s)
    gate.add(jobs=alerts.jobs(), loops=bot.loops(),
             on_elected=alerts.resume, on_deposed=pause_alerts)   # hooks run in that order
    await gate.step()                     # at start: a lone process leads at once
    supervisor.add_all(gate.loops())      # "leadership": a step every LEADER_RENEW_S (standby: every second)
    sender.may_send = gate.is_leader      # checked before every send
    ...
    await gate.stop()                     # singletons stopped, lease released (a standby takes over)

On election the ``on_elected`` hooks run first (reload what the last leader left in the
database), then the jobs are scheduled and the loops started. On losing the lease (another
process holds it, or this one hung past it) the loops are stopped and the jobs unscheduled at
once, then the ``on_deposed`` hooks run. ``is_leader()`` is true only while the gate is active
AND the lease is provably valid, so a part that asks it never acts on a stale lease.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

from app.clock import SYSTEM_CLOCK, Clock
from app.leadership import Leadership
from app.scheduler import JobSpec, Scheduler
from app.supervisor import LoopSpec, Sleep, Supervisor, beat

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[object]]
Role = Literal["leader", "standby", "worker"]
MIN_WAIT_S = 0.05
STANDBY_POLL_S = 1.0   # a standby tries the lock this often (sooner than the leader renews): a freed
                       # lease is taken within a second of running out, so takeover <= lease + 1 s


class LeaderGate:
    """Starts and stops the singletons with the lease (see the module docstring)."""

    def __init__(self, leadership: Leadership, scheduler: Scheduler, supervisor: Supervisor, *,
                 renew_s: float, clock: Clock = SYSTEM_CLOCK, sleep: Sleep = asyncio.sleep) -> None:
        if not renew_s > 0:
            raise ValueError(f"renew_s must be positive, got {renew_s!r}")
        self.leadership = leadership
        self.scheduler = scheduler
        self.supervisor = supervisor
        self.renew_s = renew_s
        self.clock = clock
        self._sleep = sleep
        self.jobs: list[JobSpec] = []
        self.loop_specs: list[LoopSpec] = []
        self._elected_hooks: list[Hook] = []
        self._deposed_hooks: list[Hook] = []
        self.active = False
        self.elections = 0       # times this process became the leader
        self.depositions = 0     # times it stopped leading without a clean stop
        self.elected_at: float | None = None   # epoch seconds of the current term
        #: while the lock does not answer, a leader asks this whether another process leads
        #: (the process registry); True makes it step down
        self.rival: Callable[[], bool] | None = None
        self._lock = asyncio.Lock()

    # -- registration -----------------------------------------------------------
    def add(self, *, jobs: Iterable[JobSpec] = (), loops: Iterable[LoopSpec] = (),
            on_elected: Hook | None = None, on_deposed: Hook | None = None) -> None:
        """Singletons: scheduled/started only while this process leads."""
        jobs = list(jobs)
        for spec in jobs:
            self.scheduler.declare(spec)   # known (and retimable) before this process first leads
        self.jobs.extend(jobs)
        self.loop_specs.extend(loops)
        if on_elected is not None:
            self._elected_hooks.append(on_elected)
        if on_deposed is not None:
            self._deposed_hooks.append(on_deposed)

    # -- reading ------------------------------------------------------------------
    def is_leader(self) -> bool:
        return self.active and self.leadership.is_leader()

    @property
    def role(self) -> Role:
        return "leader" if self.is_leader() else "standby"

    # -- running ------------------------------------------------------------------
    async def step(self) -> bool:
        """Renew or acquire once, then start or stop the singletons to match; returns ``is_leader()``."""
        async with self._lock:
            leader = await self.leadership.step()
            if leader and not self.leadership.reachable and self.rival is not None and self.rival():
                self.leadership.abandon("the lock does not answer and another process leads")
                leader = False
            if leader and not self.active:
                await self._elect()
            elif not leader and self.active:
                await self._depose(clean=False)
            return self.is_leader()

    async def run(self) -> None:
        """The ``leadership`` loop: a step every ``renew_s`` (sooner when the lease would run out first)."""
        failing = False
        while True:
            beat()
            try:
                await self.step()
                failing = False
            except Exception:  # noqa: BLE001 - e.g. the database is away while taking over: renew, retry
                if not failing:
                    log.exception("leadership step failed; this process keeps renewing and tries again")
                failing = True
            await self._sleep(self._next_wait())

    def _next_wait(self) -> float:
        wait = self.renew_s if self.active else min(self.renew_s, STANDBY_POLL_S)
        valid_until = getattr(self.leadership, "valid_until", None)
        if self.active and isinstance(valid_until, float):
            wait = min(wait, valid_until - self.clock.monotonic())  # step down on time even if renewals hang
        return max(MIN_WAIT_S, wait)

    def loops(self) -> list[LoopSpec]:
        return [LoopSpec("leadership", self.run, heartbeat_budget_s=max(30.0, 10 * self.renew_s))]

    async def stop(self) -> None:
        """A clean stop: the singletons end, then the lease is released for a standby."""
        async with self._lock:
            if self.active:
                await self._depose(clean=True)
            await self.leadership.release()

    async def _elect(self) -> None:
        log.info("this process (%s) leads: starting %d singleton jobs and %d loops", self.leadership.owner,
                 len(self.jobs), len(self.loop_specs))
        for hook in self._elected_hooks:
            await hook()   # a failure leaves the gate inactive: the next step tries again
        self.active = True
        self.elections += 1
        self.elected_at = self.clock.time()
        self.scheduler.add_all(self.jobs)
        self.supervisor.add_all(self.loop_specs)

    async def _depose(self, *, clean: bool) -> None:
        self.active = False
        self.elected_at = None
        if not clean:
            self.depositions += 1
            log.warning("this process (%s) no longer leads: stopping its singletons", self.leadership.owner)
        for spec in self.jobs:
            self.scheduler.remove(spec.id, reason="this process no longer leads")
        await asyncio.gather(*(self.supervisor.remove(spec.id) for spec in self.loop_specs))
        for hook in reversed(self._deposed_hooks):
            try:
                await hook()
            except Exception:  # noqa: BLE001 - stepping down goes on whatever one hook does
                log.exception("a step-down hook failed")
