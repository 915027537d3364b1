"""Giving memory back before a memory alert fires: a registry of reclaimers.

``gc.collect()`` always runs, and glibc's ``malloc_trim(0)`` where it exists (both off the
event loop, in a thread); caches register a callable that drops what they can rebuild::

    RECLAIMERS.register("charts.cache", render_cache.clear)        # sync or async callable
    report = await RECLAIMERS.reclaim()
    report.ran        # ['gc.collect', 'malloc_trim', 'charts.cache']
    report.failed     # ['flaky.cache: RuntimeError: boom'] (a failing reclaimer never stops the others)

Registered callables run on the event loop (caches are rarely thread-safe); keep them quick.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class ReclaimReport:
    ran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    collected: int = 0   # objects gc.collect() found unreachable


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


def _collect() -> tuple[int, bool]:
    return gc.collect(), _malloc_trim()


class Reclaimers:
    def __init__(self) -> None:
        self._fns: dict[str, Callable[[], object]] = {}

    def register(self, name: str, fn: Callable[[], object]) -> None:
        """Add (or replace) a reclaimer; ``fn`` may be sync or return an awaitable."""
        self._fns[name] = fn

    def unregister(self, name: str) -> None:
        self._fns.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._fns)

    async def reclaim(self) -> ReclaimReport:
        report = ReclaimReport()
        for name, fn in list(self._fns.items()):
            try:
                result = fn()
                if inspect.isawaitable(result):
                    await result
                report.ran.append(name)
            except Exception as exc:  # noqa: BLE001 - one failing cache must not stop the rest
                log.warning("memory reclaimer %s failed: %s", name, exc)
                report.failed.append(f"{name}: {type(exc).__name__}: {exc}")
        collected, trimmed = await asyncio.to_thread(_collect)
        report.collected = collected
        report.ran.append("gc.collect")
        if trimmed:
            report.ran.append("malloc_trim")
        return report


RECLAIMERS = Reclaimers()
"""The process-wide registry (caches register here at build time)."""
