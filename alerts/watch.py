"""Watching the watcher and digests, built from the settings in one call for the composition root.

    watch = build_watch(ctx, ctx.outbox, incidents=alerts.incidents, quiet=alerts.quiet,
                        chart=DigestChart(ctx.metrics, worker, settings=ctx.settings))
    ctx.scheduler.add_all(watch.jobs())        # alerts.heartbeat (HEARTBEAT_S), alerts.digest (DIGEST_CRON)
    await supervisor.start()
    await watch.on_started()                   # the started notice, a missed digest
    ...
    await watch.on_stopping()                  # BEFORE supervisor.stop(): the outbox sender still runs

``alerts.parts.Alerts.digest`` should be ``watch.digest`` (``/digest`` calls it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from alerts.api import IncidentService, QuietService
from alerts.context import AlertsContext
from alerts.digest import ChartProvider, Digest
from alerts.heartbeat import Heartbeat
from alerts.notices import Notices
from app.scheduler import JobSpec
from delivery.store import Outbox

log = logging.getLogger(__name__)


@dataclass
class Watch:
    heartbeat: Heartbeat | None
    notices: Notices | None
    digest: Digest
    heartbeat_s: float = 60.0

    def jobs(self) -> list[JobSpec]:
        jobs = self.digest.jobs()
        if self.heartbeat is not None:
            jobs.append(self.heartbeat.job(self.heartbeat_s))
        return jobs

    async def on_started(self) -> None:
        if self.notices is not None:
            await self.notices.started()
        try:
            await self.digest.catch_up()
        except Exception as exc:  # noqa: BLE001 - a missed digest never stops the start
            log.warning("digest catch-up failed: %s: %s", type(exc).__name__, exc)

    async def on_stopping(self) -> None:
        if self.notices is not None:
            await self.notices.stopping()


def build_watch(ctx: AlertsContext, outbox: Outbox | None, *, incidents: IncidentService | None = None,
                quiet: QuietService | None = None, chart: ChartProvider | None = None,
                alert_chat_id: int | None = None) -> Watch:
    """``alert_chat_id`` overrides ``TELEGRAM_ALERT_CHAT_ID`` (the console chat when running without Telegram)."""
    s = ctx.settings
    chat = alert_chat_id if alert_chat_id is not None else s.telegram_alert_chat_id
    heartbeat = None
    if s.heartbeat_url:
        collectors = ctx.collectors
        interval = collectors.collect_interval_s if collectors is not None else s.collect_interval_s
        heartbeat = Heartbeat(s.heartbeat_url, snapshot=lambda: collectors.coordinator.latest if collectors else None,
                              clock=ctx.clock, started_at=ctx.started_at or ctx.clock.time(),
                              max_age_s=max(30.0, 3 * interval), timeout_s=s.heartbeat_timeout_s)
    notices = None
    if outbox is not None and chat is not None:
        notices = Notices(outbox, chat, ctx.clock, started_at=ctx.started_at or ctx.clock.time(),
                          database=ctx.db.dialect, market=s.market, incidents=incidents, quiet=quiet)
    digest = Digest(ctx.db, outbox, ctx.clock, chart=chart, alert_chat_id=chat,
                    cron=s.digest_cron, hours=s.digest_hours)
    return Watch(heartbeat, notices, digest, s.heartbeat_s)
