"""The live line on the terminal: counts by status and rates, every few seconds.

Every ``period_s`` (30 s) it prints one compact line on a terminal, or logs it without one,
so a service under systemd or Docker still shows it is alive. An unchanged line is repeated
only every ``REPEAT_S``, so it does not scroll the console chat's replies away. It runs as
a supervised loop (``loops()``: ``status_line``), beating once per line::

    supervisor.add_all(StatusLine(ctx).loops())

The line reads the latest ``MonitoringSnapshot`` (``ctx.collectors.coordinator.latest``), the
same picture /status, /readyz and /metrics show; it runs no query of its own::

    monitoring=11 active=1 archived=0 | checks/min(last 1 min)=14 ok, 0 failed backlog=0 activations(last 1h)=1
    monitoring=11 active=1 archived=0 | checks/min(last 1 min)=0 ok, 212 failed ... | STALLED at fetch for 2m 05s
"""
from __future__ import annotations

import asyncio
import logging
import sys

from app.supervisor import LoopSpec, beat
from bot.views.fmt import fmt_duration, fmt_rate
from bot.views.status import window_label
from monitoring.context import MonitoringContext
from monitoring.snapshot import MonitoringSnapshot

log = logging.getLogger("tokenwatch.status")

REPEAT_S = 300.0
HEARTBEAT_MIN_BUDGET_S = 60.0


def snapshot_line(snap: MonitoringSnapshot | None, now: float) -> str:
    """The status line for one snapshot (pure)."""
    if snap is None:
        return "no metrics collection yet"
    p = snap.pipeline
    age = snap.age_s(now)
    stale = f" | as of {fmt_duration(age)} ago" if age > 2 * snap.collect_interval_s else ""
    if p is None:
        health = snap.collectors.get("pipeline")
        why = health.last_error if health is not None and health.last_error else "no pipeline figures"
        return f"pipeline figures unavailable: {why}{stale}"
    line = (
        f"monitoring={p.counts.get('monitoring', 0)} active={p.counts.get('active', 0)} "
        f"archived={p.counts.get('archived', 0)} | checks/min({window_label(snap.rate_window_s)})="
        f"{fmt_rate(p.check_rates.ok)} ok, {fmt_rate(p.check_rates.failed)} failed backlog={p.lag.due} "
        f"activations({window_label(p.activation.window_s)})={p.activation.activated}"
    )
    if p.stall.stalled:
        where = f" at {p.stall.stage}" if p.stall.stage else ""
        silent = f" for {fmt_duration(p.stall.silent_for_s)}" if p.stall.silent_for_s is not None else ""
        line += f" | STALLED{where}{silent}"
    return line + stale


async def status_text(ctx: MonitoringContext) -> str:
    """The current status line: from the latest snapshot of ``ctx.collectors``."""
    registry = ctx.collectors
    if registry is None:
        return "monitoring is not running"
    return snapshot_line(registry.coordinator.latest, ctx.clock.time())


class StatusLine:
    def __init__(self, ctx: MonitoringContext, period_s: float | None = None, stream=None) -> None:
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
