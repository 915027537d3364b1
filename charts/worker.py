"""Renders pictures off the event loop: a process pool behind a bounded queue, one render per chat.

    worker = RenderWorker(processes=1, max_queue=8)
    await worker.start()                         # warms the pool up (a first picture in each process)
    try:
        picture = await worker.render(chat_id, data)
    except AlreadyDrawing:  ...                  # this chat's previous graph is still being drawn
    except RenderBusy:      ...                  # max_queue renders waiting: try again shortly
    await worker.stop()

A process pool keeps matplotlib's CPU time off the loop's GIL (threads are safe with the object
API but still take the GIL for most of the drawing); ``mode="thread"`` exists for comparison
(bench/graph_render.py measures both).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Iterator
from typing import Literal

from charts.data import ChartData
from charts.render import Picture, render_chart, warm_up

log = logging.getLogger(__name__)


class RenderRefused(Exception):
    """A render that was not started."""


class AlreadyDrawing(RenderRefused):
    """The chat already has a render in progress."""


class RenderBusy(RenderRefused):
    """The queue is full."""


def _warm_up() -> int:
    import charts.render  # noqa: F401 - the import is the warm-up (a thread pool's)

    return os.getpid()


OWNER_CHECK_S = 2.0  # how often a drawing process looks whether the service that started it is alive


def _exit_with_owner(owner_pid: int, every_s: float = OWNER_CHECK_S) -> None:
    """In a drawing process (a daemon thread): exit once the service that started the pool is gone.
    A service killed without ``stop`` (SIGKILL, OOM) would otherwise leave its drawing processes
    (and the forkserver) behind for good, ~100 MiB each: their parent is the forkserver, not the service."""
    while True:
        time.sleep(every_s)
        try:
            os.kill(owner_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # alive, another user's (a reused pid is not ours to judge)
            pass


def _start_process(owner_pid: int | None = None) -> None:
    """Each drawing process, once: Ctrl-C at the terminal reaches the whole process group, but
    only the service decides when its workers stop (``RenderWorker.stop``), so it is ignored
    (else each worker would print a KeyboardInterrupt traceback); it exits by itself when the
    service is gone (``_exit_with_owner``); then one picture is drawn and what is alive frozen out
    of the garbage collector's passes (``charts.render.warm_up``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if owner_pid is not None:
        threading.Thread(target=_exit_with_owner, args=(owner_pid,), name="owner-watch", daemon=True).start()
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - a process that could not warm up still draws (or says why then)
        log.exception("render process warm-up failed")


class RenderWorker:
    def __init__(self, *, processes: int = 1, max_queue: int = 8, timeout_s: float = 60.0,
                 mode: Literal["process", "thread"] = "process") -> None:
        if processes < 1 or max_queue < 1:
            raise ValueError("processes and max_queue must be >= 1")
        self.processes = processes
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.mode = mode
        self._pool: Executor | None = None
        self._in_flight: set[int] = set()
        self.rendered = 0
        self.refused = 0
        self.failed = 0
        self.pids: set[int] = set()   # the processes ``start``'s warm-ups ran in (threads: this pid)

    def _make_pool(self) -> Executor:
        if self.mode == "thread":
            return ThreadPoolExecutor(self.processes, thread_name_prefix="render")
        # forkserver: never fork a process that runs an event loop and threads.
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("forkserver"),
                                   initializer=_start_process, initargs=(os.getpid(),))

    async def start(self) -> None:
        if self._pool is None:
            self._pool = self._make_pool()
        loop = asyncio.get_running_loop()
        self.pids = set(await asyncio.gather(*(loop.run_in_executor(self._pool, _warm_up)
                                               for _ in range(self.processes))))

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    @property
    def queued(self) -> int:
        return len(self._in_flight)

    def is_drawing(self, chat_id: int) -> bool:
        return chat_id in self._in_flight

    @contextlib.contextmanager
    def slot(self, chat_id: int) -> Iterator[None]:
        """Hold ``chat_id``'s one render slot (for the query and the drawing); raises
        ``AlreadyDrawing`` / ``RenderBusy`` instead of queueing a second one."""
        if chat_id in self._in_flight:
            self.refused += 1
            raise AlreadyDrawing(chat_id)
        if len(self._in_flight) >= self.max_queue:
            self.refused += 1
            raise RenderBusy(chat_id)
        self._in_flight.add(chat_id)
        try:
            yield
        finally:
            self._in_flight.discard(chat_id)

    async def draw(self, data: ChartData) -> Picture:
        """Draw ``data`` in the pool (callers hold a ``slot``, which bounds the queue)."""
        if self._pool is None:
            self._pool = self._make_pool()
        loop = asyncio.get_running_loop()
        try:
            picture = await asyncio.wait_for(loop.run_in_executor(self._pool, render_chart, data), self.timeout_s)
        except BrokenProcessPool:  # a worker died (OOM kill...): a fresh pool for the next render
            self.failed += 1
            log.warning("render pool broke; starting a new one")
            old, self._pool = self._pool, self._make_pool()
            old.shutdown(wait=False, cancel_futures=True)
            raise
        except Exception:
            self.failed += 1
            raise
        self.rendered += 1
        return picture

    async def render(self, chat_id: int, data: ChartData) -> Picture:
        """``slot`` + ``draw`` in one call."""
        with self.slot(chat_id):
            return await self.draw(data)
