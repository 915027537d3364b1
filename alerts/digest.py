"""The digest: a day of the pipeline and its alerts in one message, with the chart of the day.

``Digest`` implements ``alerts.api.DigestService``. ``/digest`` (the chat front) calls
``send_now``; the scheduled job (``DIGEST_CRON``, UTC, daily at 09:00 by default) sends one to
the alert chat, keyed by the cron's fire time, so each period's digest is queued once even
when the service restarts (a start within ``catch_up_s`` of a missed fire time sends it late)::

    digest = Digest(db, outbox, clock, chart=charts.digest_chart.DigestChart(store, worker),
                    alert_chat_id=settings.telegram_alert_chat_id, cron=settings.digest_cron)
    view = await digest.build(hours=24)        # DigestView(text=<Telegram HTML>, chart=<PNG or None>)
    await digest.send_now(chat_id, key="digest:cmd:<update id>")
    ctx.scheduler.add_all(digest.jobs())       # "alerts.digest" at DIGEST_CRON
    await digest.catch_up()                    # at start: a digest missed while the service was down

The picture comes through the injected ``chart(since, until) -> PNG | None`` (``charts/`` draws
it; ``alerts/`` never imports ``charts/``). Without it, or when it fails or times out, the
digest is text alone. The figures are read through the pipeline's query functions
(``tokens.queries``, ``monitoring.pipeline``) and ``alerts.history``; no SQL here.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.triggers.cron import CronTrigger

from alerts.api import ActionResult, DigestView
from alerts.history import AlertStats, alert_stats
from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.durations import fmt_duration
from app.scheduler import JobSpec
from delivery.html import MAX_CAPTION_LEN, bold, esc, visible_len
from delivery.models import INFO
from delivery.store import Outbox, OutboxError
from monitoring.pipeline.activation import ActivationSuccess, activation_success, time_to_activation
from monitoring.pipeline.percentiles import Distribution
from monitoring.pipeline.rates import transitions_per_minute
from tokens.queries import CheckRates, check_outcomes_per_minute

log = logging.getLogger(__name__)

ChartProvider = Callable[[float, float], Awaitable[bytes | None]]
DEFAULT_CRON = "0 9 * * *"
CATCH_UP_S = 6 * 3600.0          # a start this soon after a missed fire time sends that digest
CHART_TIMEOUT_S = 60.0
_LOOKBACKS = (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32))
_MAX_STEPS = 200


@dataclass(frozen=True)
class DigestFigures:
    """Everything a digest says, as numbers (``build`` renders them)."""

    since: float
    until: float
    checks_ok: int
    checks_failed: int
    discovered: int
    activation: ActivationSuccess
    time_to_activation: Distribution
    alerts: AlertStats

    @property
    def checks(self) -> int:
        return self.checks_ok + self.checks_failed


def last_fire_time(cron: str, now: float) -> float | None:
    """The newest fire time of ``cron`` (UTC crontab) at or before ``now``, or None within 32 days.

        last_fire_time("0 9 * * *", <10:30 UTC on 14 Nov>)   # 09:00 UTC on 14 Nov
    """
    trigger = CronTrigger.from_crontab(cron, timezone=timezone.utc)
    end = datetime.fromtimestamp(now, tz=timezone.utc)
    for lookback in _LOOKBACKS:  # short first: a minutely cron needs few steps, a weekly one a long look
        fire = trigger.get_next_fire_time(None, end - lookback)
        last = None
        steps = 0
        while fire is not None and fire <= end and steps < _MAX_STEPS:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
            steps += 1
        if last is not None and (fire is None or fire > end):
            return last.timestamp()
    return None


def _count(rate_per_min: float, minutes: float) -> int:
    return int(round(rate_per_min * minutes))


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "—"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%H:%M UTC %d %b")


def render_digest(f: DigestFigures) -> str:
    """The digest's Telegram HTML (every dynamic string escaped; short enough for a caption
    in the usual case, and ``Outbox`` sends the picture then the text when it is not)."""
    hours = (f.until - f.since) / 3600.0
    a = f.activation
    tta = f.time_to_activation
    s = f.alerts
    lines = [f"📊 {bold('Digest')} · last {esc(f'{hours:g}')}h, to {esc(_when(f.until))}", "",
             bold("Pipeline")]
    if f.checks:
        lines.append(f"Checks: {f.checks:,} ({f.checks_ok:,} ok, {f.checks_failed:,} failed, "
                     f"{_pct(f.checks_failed, f.checks)} failed)")
    else:
        lines.append("Checks: none")
    lines.append(f"Tokens discovered: {f.discovered:,}")
    if a.left_monitoring:
        lines.append(f"Activations: {a.activated:,} of {a.left_monitoring:,} that left monitoring "
                     f"({_pct(a.activated, a.left_monitoring)} success)")
    else:
        lines.append("Activations: none (no token left monitoring)")
    if tta.count:
        lines.append(f"Time to activation: p50 {esc(fmt_duration(tta.p50))} · p95 {esc(fmt_duration(tta.p95))}")
    lines += ["", bold("Alerts")]
    if s.fired or s.acknowledged or s.resolved or s.opened:
        lines.append(f"Fired {s.fired} · acknowledged {s.acknowledged} · resolved {s.resolved}"
                     f" · incidents opened {s.opened}")
        if s.escalated or s.muted:
            lines.append(f"Escalated {s.escalated} · muted {s.muted}")
        lines.append("Mean time to acknowledge: "
                     + ("— (none acknowledged)" if s.mean_time_to_ack_s is None
                        else esc(fmt_duration(s.mean_time_to_ack_s))))
        if s.noisiest:
            lines.append("Noisiest: " + ", ".join(f"{esc(rule)} ×{n}" for rule, n in s.noisiest))
    else:
        lines.append("No alerts fired. ✅")
    return "\n".join(lines)


class Digest:
    """``DigestService``: builds and sends digests (see the module docstring)."""

    def __init__(self, db: Database, outbox: Outbox | None, clock: Clock = SYSTEM_CLOCK, *,
                 chart: ChartProvider | None = None, alert_chat_id: int | None = None,
                 cron: str = DEFAULT_CRON, hours: float = 24.0, chart_timeout_s: float = CHART_TIMEOUT_S,
                 catch_up_s: float = CATCH_UP_S) -> None:
        CronTrigger.from_crontab(cron, timezone=timezone.utc)  # a bad expression fails at the start
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self.chart = chart
        self.alert_chat_id = alert_chat_id
        self.cron = cron
        self.hours = hours
        self.chart_timeout_s = chart_timeout_s
        self.catch_up_s = catch_up_s
        self.sent = 0

    async def figures(self, *, hours: float = 24.0) -> DigestFigures:
        if not hours > 0:
            raise ValueError(f"hours must be positive, got {hours!r}")
        until = self.clock.time()
        window = hours * 3600.0
        since = until - window
        minutes = window / 60.0

        async def read(session) -> DigestFigures:
            rates: CheckRates = await check_outcomes_per_minute(session, until, window)
            moves = await transitions_per_minute(session, until, window)
            success = await activation_success(session, until, window)
            tta = await time_to_activation(session, until, window)
            alerts = await alert_stats(session, since, until)
            discovered = sum(_count(rate, minutes) for (frm, _to), rate in moves.items() if frm is None)
            return DigestFigures(since, until, _count(rates.ok, minutes), _count(rates.failed, minutes),
                                 discovered, success, tta, alerts)

        return await self.db.run(read, turn=False)

    async def build(self, *, hours: float = 24.0) -> DigestView:
        f = await self.figures(hours=hours)
        return DigestView(f.since, f.until, render_digest(f), await self._picture(f.since, f.until))

    async def _picture(self, since: float, until: float) -> bytes | None:
        if self.chart is None:
            return None
        try:
            return await asyncio.wait_for(self.chart(since, until), self.chart_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the numbers go out without the picture
            log.warning("digest chart failed, sending the numbers alone: %s: %s", type(exc).__name__, exc)
            return None

    async def send_now(self, chat_id: int, key: str) -> ActionResult:
        """Build and queue a digest to ``chat_id`` under the outbox key ``key`` (once per key)."""
        if self.outbox is None:
            return ActionResult(False, False, "Delivery is not running in this process; no digest can be sent.")
        if await self.outbox.get(key) is not None:
            return ActionResult(True, False, "That digest was already sent.")
        view = await self.build(hours=self.hours)
        text = view.text
        if view.chart is not None and visible_len(text) > MAX_CAPTION_LEN:
            log.info("digest text is %d characters: the picture goes first, the text after it", visible_len(text))
        try:
            fresh = await self.outbox.enqueue(chat_id, text, key=key, priority=INFO, photo=view.chart)
        except OutboxError as exc:
            return ActionResult(False, False, f"The digest could not be queued: {exc}")
        if not fresh:
            return ActionResult(True, False, "That digest was already sent.")
        self.sent += 1
        return ActionResult(True, True, "Digest sent." if view.chart is None else "Digest with the chart of the day sent.")

    # --- the scheduled digest ---------------------------------------------------------------
    def period_key(self, now: float) -> str | None:
        """The outbox key of the period ``now`` falls in (its cron fire time, UTC), or None."""
        if self.alert_chat_id is None:
            return None
        fired = last_fire_time(self.cron, now)
        if fired is None:
            return None
        stamp = datetime.fromtimestamp(fired, tz=timezone.utc).strftime("%Y%m%dT%H%M")
        return f"digest:{self.alert_chat_id}:{stamp}"

    async def send_scheduled(self) -> bool:
        """The job body: this period's digest to the alert chat, unless it was queued already."""
        key = self.period_key(self.clock.time())
        if key is None or self.alert_chat_id is None:
            return False
        result = await self.send_now(self.alert_chat_id, key)
        return result.changed

    async def catch_up(self) -> bool:
        """At start: send the latest period's digest if its fire time passed less than
        ``catch_up_s`` ago and it was never queued (the service was down at that time). A first
        start (nothing was ever queued before that fire time) has missed nothing: no empty digest."""
        now = self.clock.time()
        fired = last_fire_time(self.cron, now)
        if fired is None or now - fired > self.catch_up_s or self.outbox is None:
            return False
        if not await self.outbox.queued_before(fired):
            log.info("digest catch-up skipped: nothing was queued before %s (a first start)", fired)
            return False
        return await self.send_scheduled()

    def jobs(self) -> list[JobSpec]:
        if self.alert_chat_id is None or self.outbox is None:
            return []
        return [JobSpec("alerts.digest", self.send_scheduled, cron=self.cron,
                        budget_s=self.chart_timeout_s + 60.0, misfire_grace_s=3600)]
