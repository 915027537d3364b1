"""Ending tasks at shutdown: let work in flight finish, then cancel what is left.

A task cancelled in the middle of a database call leaves its connection to be torn down under
cancellation (SQLAlchemy then logs a traceback for a connection it could not close cleanly);
a short grace lets a job or a batch that is about to finish write its result instead::

    await finish_or_cancel(running_tasks, grace_s=5.0)   # waits at most 5 s, then cancels the rest
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

SHUTDOWN_GRACE_S = 5.0


async def finish_or_cancel(tasks: Iterable[asyncio.Future], grace_s: float = SHUTDOWN_GRACE_S) -> int:
    """Wait up to ``grace_s`` for ``tasks`` to end, cancel the ones still running and wait for
    them; return how many had to be cancelled. Never raises the tasks' own errors."""
    pending = {t for t in tasks if not t.done()}
    if not pending:
        return 0
    if grace_s > 0:
        _done, pending = await asyncio.wait(pending, timeout=grace_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)
