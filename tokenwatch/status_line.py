"""The live line on the terminal: counts by status and rates, every few seconds.

Every ``period_s`` (30 s) it prints one compact line on a terminal, or logs it without one,
so a service under systemd or Docker still shows it is alive. An unchanged line is repeated
only every ``REPEAT_S``, so it does not scroll the console chat's replies away. It runs as
a supervised loop (``loops()``: ``status_line``), beating once per line::

    supervisor.add_all(StatusLine(ctx).loops())
"""
from __future__ import annotations

import asyncio
import logging
import sys

from app.context import AppContext
from app.supervisor import LoopSpec, beat
from tokens.queries import pipeline_summary

log = logging.getLogger("tokenwatch.status")

REPEAT_S = 300.0
HEARTBEAT_MIN_BUDGET_S = 60.0


async def status_text(ctx: AppContext) -> str:
    async with ctx.db.session() as session:
        p = await pipeline_summary(session, ctx.clock.time())
    return (
        f"monitoring={p.counts.get('monitoring', 0)} active={p.counts.get('active', 0)} "
        f"archived={p.counts.get('archived', 0)} | checks/min={p.checks_per_min:.0f} backlog={p.backlog} "
        f"activations/1h={p.activations_1h}"
    )


class StatusLine:
    def __init__(self, ctx: AppContext, period_s: float | None = None, stream=None) -> None:
        self.ctx = ctx
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.period_s = period_s or 30.0
        self._last = ""
        self._last_at = 0.0

    def loops(self) -> list[LoopSpec]:
        """The status line as a supervised loop: cancelled and restarted if a line takes longer
        than a few periods (a hung query), restarted if it ever ends."""
        return [LoopSpec("status_line", self.run, heartbeat_budget_s=max(HEARTBEAT_MIN_BUDGET_S, 3 * self.period_s))]

    async def run(self) -> None:
        """Print (or log) a line every ``period_s`` until cancelled."""
        while True:
            beat()
            await asyncio.sleep(self.period_s)
            try:
                text = await status_text(self.ctx)
            except Exception as exc:  # noqa: BLE001 - the status line never takes the service down
                text = f"status unavailable: {type(exc).__name__}"
            now = asyncio.get_running_loop().time()
            if text == self._last and now - self._last_at < REPEAT_S:
                continue
            self._last, self._last_at = text, now
            if self.tty:
                self.stream.write(f"\x1b[2m[tokenwatch]\x1b[0m {text}\n")
                self.stream.flush()
            else:
                log.info(text)
