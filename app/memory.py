"""What holds memory and how to give it back: one registry of the caches and queues, by component.

Caches register a callable that drops what they can rebuild (and, best, a ``size``); queues register
only their ``size`` (their work is never thrown away). The leak report (``recovery.memory``) names
the registered structures that grew, and the cleanup clears caches by ``priority`` (lowest first)::

    RECLAIMERS.register("charts.cache", render_cache.clear, size=lambda: len(render_cache),
                        component="charts", priority=10)          # sync or async clear
    RECLAIMERS.register("delivery.queue", size=queue.qsize, kind="queue")   # reported, never cleared
    RECLAIMERS.sizes()            # {'charts.cache': 120.0, 'delivery.queue': 3.0}
    report = await RECLAIMERS.reclaim(reason="memory_critical")     # gc -> caches -> malloc_trim
    report.ran        # ['gc.collect', 'charts.cache', 'malloc_trim']
    report.failed     # ['flaky.cache: RuntimeError: boom'] (a failing clear never stops the others)
    report.detail()   # 'gc 12 MiB, caches 30 MiB, trim 8 MiB' (resident memory before - after each step)
    RECLAIMERS.on_reclaim(lambda report: ...)    # every cleanup, whoever asked (recovery accounts for it)

``gc.collect()`` and glibc's ``malloc_trim(0)`` (where it exists) run off the event loop, in a thread;
the clear callables run on the event loop (caches are rarely thread-safe): keep them quick.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import inspect
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

import psutil

log = logging.getLogger(__name__)

Kind = Literal["cache", "queue"]
MIB = 1024 * 1024


@dataclass(frozen=True)
class Reclaimable:
    """One registered cache or queue. ``component`` is the project package it belongs to (tokens,
    monitoring, alerts, bot, recovery, charts, delivery, simulator); ``size`` counts what it holds
    now (items, or bytes when that is cheap), ``None`` when it cannot say."""

    name: str
    clear: Callable[[], object] | None
    component: str
    priority: int = 50
    size: Callable[[], float] | None = None
    kind: Kind = "cache"


@dataclass
class ReclaimReport:
    ran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    collected: int = 0   # objects gc.collect() found unreachable
    reason: str = ""
    before: int | None = None          # resident bytes before the cleanup
    after: int | None = None           # and after it
    freed: dict[str, int] = field(default_factory=dict)   # step (gc, caches, trim) -> resident bytes freed

    def detail(self) -> str:
        """``gc 12 MiB, caches 30 MiB, trim 8 MiB`` (what each step gave back; negative = grew)."""
        if not self.freed:
            return ", ".join(self.ran)
        return ", ".join(f"{step} {_mib(v)}" for step, v in self.freed.items())


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if abs(n) < 10 * MIB else f"{n / MIB:.0f} MiB"


def _malloc_trim() -> bool:
    """glibc's malloc_trim(0): hand freed heap pages back to the OS. False where unavailable."""
    try:
        name = ctypes.util.find_library("c")
        if not name:
            return False
        libc = ctypes.CDLL(name)
        trim = getattr(libc, "malloc_trim", None)
        if trim is None:
            return False
        trim(0)
        return True
    except (OSError, AttributeError):
        return False


def resident_bytes() -> int:
    """This process's resident memory (a quick read of /proc/self/statm on Linux)."""
    return int(psutil.Process().memory_info().rss)


def component_of(name: str) -> str:
    """``charts.cache`` -> ``charts``: the package a registered name starts with."""
    return name.split(".", 1)[0] or "other"


class Reclaimers:
    """The registry (see the module docstring). ``rss`` reads resident bytes (injectable; None: not
    measured); ``collect`` and ``trim`` are ``gc.collect`` and ``malloc_trim`` (injectable for tests)."""

    def __init__(self, *, rss: Callable[[], int] | None = resident_bytes,
                 collect: Callable[[], int] = gc.collect, trim: Callable[[], bool] = _malloc_trim) -> None:
        self._entries: dict[str, Reclaimable] = {}
        self._listeners: list[Callable[[ReclaimReport], None]] = []
        self.rss, self.collect, self.trim = rss, collect, trim
        self._lock: asyncio.Lock | None = None

    def register(self, name: str, clear: Callable[[], object] | None = None, *, component: str | None = None,
                 priority: int = 50, size: Callable[[], float] | None = None, kind: Kind = "cache") -> None:
        """Add (or replace) a cache (``clear`` sync or async) or a queue (``kind="queue"``, no clear)."""
        if kind == "cache" and clear is None:
            raise ValueError(f"cache {name!r} needs a clear callable")
        self._entries[name] = Reclaimable(name, clear if kind == "cache" else None,
                                          component or component_of(name), priority, size, kind)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def on_reclaim(self, listener: Callable[[ReclaimReport], None]) -> None:
        """Call ``listener(report)`` after every cleanup (a raising listener is logged, never fatal)."""
        self._listeners.append(listener)

    def off_reclaim(self, listener: Callable[[ReclaimReport], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Reclaimable]:
        return sorted(self._entries.values(), key=lambda e: (e.priority, e.name))

    def sizes(self) -> dict[str, float]:
        """What each entry with a ``size`` holds now (one that raises is left out)."""
        out: dict[str, float] = {}
        for e in self._entries.values():
            if e.size is None:
                continue
            try:
                out[e.name] = float(e.size())
            except Exception as exc:  # noqa: BLE001 - a broken size() must not stop a report
                log.debug("size() of %s failed: %s", e.name, exc)
        return out

    async def _measure(self) -> int | None:
        if self.rss is None:
            return None
        try:
            return await asyncio.to_thread(self.rss)
        except Exception as exc:  # noqa: BLE001 - a cleanup does not need the measurement to work
            log.debug("resident memory read failed: %s", exc)
            return None

    async def reclaim(self, *, only: Collection[str] | None = None, reason: str = "") -> ReclaimReport:
        """``gc.collect()``, then the caches by priority (all, or those named in ``only``), then
        ``malloc_trim(0)``; resident memory is read before and after each step. Two cleanups never
        overlap (a second caller waits and runs its own)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            report = await self._reclaim(only, reason)
        for listener in list(self._listeners):
            try:
                listener(report)
            except Exception:  # noqa: BLE001
                log.exception("reclaim listener failed")
        return report

    async def _reclaim(self, only: Collection[str] | None, reason: str) -> ReclaimReport:
        report = ReclaimReport(reason=reason)
        report.before = last = await self._measure()

        def step(name: str, now: int | None) -> int | None:
            if last is not None and now is not None:
                report.freed[name] = last - now
            return now

        report.collected = await asyncio.to_thread(self.collect)
        report.ran.append("gc.collect")
        last = step("gc", await self._measure())
        cleared = False
        for e in self.entries():
            if e.clear is None or (only is not None and e.name not in only):
                continue
            try:
                result = e.clear()
                if inspect.isawaitable(result):
                    await result
                report.ran.append(e.name)
                cleared = True
            except Exception as exc:  # noqa: BLE001 - one failing cache must not stop the rest
                log.warning("memory reclaimer %s failed: %s", e.name, exc)
                report.failed.append(f"{e.name}: {type(exc).__name__}: {exc}")
        if cleared:
            await asyncio.to_thread(self.collect)  # what the caches let go of
            last = step("caches", await self._measure())
        if await asyncio.to_thread(self.trim):
            report.ran.append("malloc_trim")
            last = step("trim", await self._measure())
        report.after = last
        return report


RECLAIMERS = Reclaimers()
"""The process-wide registry (caches and queues register here at build time)."""
