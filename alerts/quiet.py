"""Maintenance windows and silences: what /maintenance and /silence change, and what the
engine asks before it notifies (:class:`~alerts.policy.MutePolicy`).

State is read once at start and kept in memory, so ``muted()`` and ``current_maintenance()``
never query; every change is written first (``alerts/quiet_store.py``), then cached. A timer
(:meth:`Quiet.jobs`, every ``ALERT_QUIET_TICK_S``) ends what ran its time, reminds before a
silence ends and posts a maintenance window's one summary; messages go through the outbox
with keys derived from ids, so a restart never sends one twice::

    quiet = Quiet.from_settings(db, rules, outbox, settings, clock, buttons=lambda: alerts.buttons)
    await quiet.start()                     # load; end and summarise what ended while we were down
    scheduler.add_all(quiet.jobs())
    await quiet.silence("api_slow endpoint=tokens", 3600, "deploy", actor)   # ActionResult
    await quiet.maintenance_on(1800, "migrating the database", actor)
    await quiet.muted(rule, labels, now)    # "silence #3", "maintenance" or None
    quiet.in_maintenance(now)               # rules apply their maintenance relaxation

Maintenance mutes every notification except critical ones; silences mute what they match,
whatever its severity.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.durations import fmt_duration, parse_duration
from app.scheduler import JobSpec
from app.settings import Settings
from delivery.html import esc
from delivery.models import INFO
from delivery.store import Outbox, OutboxError
from alerts import history
from alerts.api import NO_BUTTONS, ActionResult, Actor, ButtonFactory, MaintenanceView, SilenceView
from alerts.models import AlertMaintenance, AlertSilence
from alerts.quiet_store import QuietStore
from alerts.rules import Rule, RuleSet
from alerts.silences import (EXAMPLE as SILENCE_EXAMPLE, Matcher, MatcherError, matchers_from_json, matchers_text,
                             matchers_to_json, matches_all, parse_matchers, series_labels)

log = logging.getLogger(__name__)

MIN_DURATION_S = 60.0
MAX_REASON_LEN = 200
MAINTENANCE_EXAMPLE = "/maintenance on 30m deploy"
SUMMARY_MAX_RULES = 25
REMINDER_MIN_FACTOR = 3.0   # only silences at least this many reminder leads long get a reminder


def clock_text(ts: float, now: float | None = None) -> str:
    """``14:05 UTC``; ``3 Mar 14:05 UTC`` when ``ts`` is more than 20 hours from ``now``."""
    if now is not None and abs(ts - now) > 20 * 3600:
        return time.strftime("%d %b %H:%M UTC", time.gmtime(ts)).lstrip("0")
    return time.strftime("%H:%M UTC", time.gmtime(ts))


def check_duration(seconds: float, *, max_s: float, example: str) -> str | None:
    """Why ``seconds`` cannot be a silence or maintenance duration (one line), or None."""
    if not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return f"Not a duration; write it like {example}"
    if math.isinf(seconds):
        return f"It needs an end (at most {fmt_duration(max_s)}); write it like {example}"
    if seconds < MIN_DURATION_S:
        return f"Too short: at least {fmt_duration(MIN_DURATION_S)}; write it like {example}"
    if seconds > max_s:
        return f"Too long: at most {fmt_duration(max_s)}; write it like {example}"
    return None


def parse_quiet_duration(text: str, *, max_s: float, example: str = MAINTENANCE_EXAMPLE) -> float:
    """Seconds in an operator's duration (``30m``, ``2h``), within ``[1m, max_s]``; ``ValueError``
    with one line and an example otherwise (``forever``, ``0m``, ``1000d``)."""
    try:
        seconds = parse_duration(text, min_s=0.0)
    except ValueError as err:
        raise ValueError(f"{err}; for example {example}") from None
    problem = check_duration(seconds, max_s=max_s, example=example)
    if problem is not None:
        raise ValueError(f"{(text or '').strip()[:20]!r}: {problem}")
    return seconds


@dataclass
class _Silence:
    row: AlertSilence
    matchers: tuple[Matcher, ...]

    @property
    def id(self) -> int:
        assert self.row.id is not None
        return self.row.id

    def view(self) -> SilenceView:
        return SilenceView(id=self.id, matchers=matchers_text(self.matchers), reason=self.row.reason,
                           created_by=self.row.created_by, created_at=self.row.created_at, ends_at=self.row.ends_at)


class Quiet:
    """Silences and maintenance (implements ``QuietService`` and ``MutePolicy``)."""

    def __init__(self, db: Database, rules: RuleSet, outbox: Outbox, *, clock: Clock = SYSTEM_CLOCK,
                 chat_id: int | None = None, buttons: Callable[[], ButtonFactory] = lambda: NO_BUTTONS,
                 silence_max_s: float = 7 * 86400.0, maintenance_max_s: float = 86400.0,
                 reminder_before_s: float = 300.0, tick_s: float = 5.0) -> None:
        self.db = db
        self.store = QuietStore(db)
        self.rules = rules
        self.outbox = outbox
        self.clock = clock
        self.chat_id = chat_id
        self.buttons = buttons
        self.silence_max_s = silence_max_s
        self.maintenance_max_s = maintenance_max_s
        self.reminder_before_s = reminder_before_s
        self.tick_s = tick_s
        self._silences: dict[int, _Silence] = {}
        self._maintenance: AlertMaintenance | None = None     # the window on (not ended)
        self._unsummarised: list[AlertMaintenance] = []       # ended, summary not yet queued
        self._fired_meanwhile = 0
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, db: Database, rules: RuleSet, outbox: Outbox, settings: Settings,
                      clock: Clock = SYSTEM_CLOCK, *,
                      buttons: Callable[[], ButtonFactory] = lambda: NO_BUTTONS,
                      chat_id: int | None = None) -> "Quiet":
        return cls(db, rules, outbox, clock=clock, buttons=buttons,
                   chat_id=chat_id if chat_id is not None else settings.telegram_alert_chat_id,
                   silence_max_s=settings.alert_silence_max_s, maintenance_max_s=settings.alert_maintenance_max_s,
                   reminder_before_s=settings.alert_silence_reminder_s, tick_s=settings.alert_quiet_tick_s)

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Load what is on from the database, then end (and summarise) what ran its time meanwhile."""
        async with self._lock:
            self._silences = {}
            for row in await self.store.open_silences():
                try:
                    cached = _Silence(row, matchers_from_json(row.matchers_json))
                except MatcherError as err:
                    log.warning("silence #%s has unusable matchers (%s); ending it", row.id, err)
                    assert row.id is not None
                    await self.store.end_silence(row.id, at=self.clock.time(), by="system", expired=True)
                    continue
                self._silences[cached.id] = cached
            self._maintenance, self._unsummarised = None, []
            for m in await self.store.unfinished_maintenance():
                older: AlertMaintenance | None = self._maintenance
                if m.ended_at is not None:
                    self._unsummarised.append(m)
                    continue
                if older is not None and older.id is not None:  # two open windows: end the older one now
                    now = min(self.clock.time(), older.ends_at)
                    await self.store.end_maintenance(older.id, at=now, by="system")
                    older.ended_at = now
                    self._unsummarised.append(older)
                self._maintenance = m
        await self.tick()

    def jobs(self) -> list[JobSpec]:
        return [JobSpec("alerts.quiet", self.tick, interval_s=self.tick_s, budget_s=max(30.0, self.tick_s))]

    async def tick(self) -> None:
        """End silences and maintenance that ran their time, send due reminders and summaries."""
        now = self.clock.time()
        async with self._lock:
            for step in (self._expire_silences, self._remind, self._end_maintenance, self._summaries):
                try:
                    await step(now)
                except Exception:  # noqa: BLE001 - one failing step must not stop the others
                    log.exception("quiet timer: %s failed", step.__name__)

    # --- MutePolicy -----------------------------------------------------------------
    async def muted(self, rule: Rule, labels: Mapping[str, str], now: float) -> str | None:
        if self._silences:
            series = series_labels(rule, labels)
            for silence in sorted(self._silences.values(), key=lambda s: s.id):
                if silence.row.created_at <= now < silence.row.ends_at and matches_all(silence.matchers, series):
                    return f"silence #{silence.id}"
        if rule.severity != "critical" and self.in_maintenance(now):
            return "maintenance"
        return None

    def in_maintenance(self, now: float) -> bool:
        m = self._maintenance
        return m is not None and m.ended_at is None and m.started_at <= now < m.ends_at

    # --- QuietService: maintenance --------------------------------------------------
    def current_maintenance(self, now: float) -> MaintenanceView | None:
        m = self._maintenance
        if m is None or not self.in_maintenance(now):
            return None
        return MaintenanceView(id=m.id or 0, started_at=m.started_at, ends_at=m.ends_at, reason=m.reason,
                               started_by=m.started_by, fired_meanwhile=self._fired_meanwhile)

    async def maintenance(self) -> MaintenanceView | None:
        now = self.clock.time()
        m = self._maintenance
        if m is None or not self.in_maintenance(now):
            return None
        self._fired_meanwhile = sum((await history.count_by_rule(self.db, m.started_at, now + 1e-6)).values())
        return self.current_maintenance(now)

    async def maintenance_on(self, duration_s: float, reason: str, actor: Actor) -> ActionResult:
        problem = check_duration(duration_s, max_s=self.maintenance_max_s, example=MAINTENANCE_EXAMPLE)
        if problem is not None:
            return ActionResult(False, False, problem)
        reason = " ".join((reason or "").split())[:MAX_REASON_LEN]
        async with self._lock:
            now = self.clock.time()
            ends_at = now + duration_s
            m = self._maintenance
            if m is not None and m.id is not None and self.in_maintenance(now):
                new_reason = reason or m.reason
                if not await self.store.extend_maintenance(m.id, ends_at=ends_at, reason=new_reason, at=now,
                                                           by=actor.name):
                    return ActionResult(True, False, "Maintenance just ended; turn it on again.")
                m.ends_at, m.reason = ends_at, new_reason
                return ActionResult(True, True, f"Maintenance extended until {clock_text(ends_at, now)} "
                                                f"({fmt_duration(duration_s)} from now).")
            row = AlertMaintenance(started_at=now, ends_at=ends_at, reason=reason, started_by=actor.name[:128])
            self._maintenance = await self.store.add_maintenance(
                row, detail=f"for {fmt_duration(duration_s)}" + (f": {reason}" if reason else ""))
            self._fired_meanwhile = 0
        return ActionResult(True, True, f"Maintenance on until {clock_text(ends_at, now)} ({fmt_duration(duration_s)}): "
                                        "non-critical alerts are muted and recorded; a summary follows at the end.")

    async def maintenance_off(self, actor: Actor) -> ActionResult:
        async with self._lock:
            now = self.clock.time()
            m = self._maintenance
            if m is None or m.id is None or not self.in_maintenance(now):
                return ActionResult(True, False, "Maintenance is not on.")
            if not await self.store.end_maintenance(m.id, at=now, by=actor.name):
                return ActionResult(True, False, "Maintenance had already ended.")
            m.ended_at, m.ended_by = now, actor.name
            self._maintenance = None
            self._unsummarised.append(m)
            await self._summaries(now)
        return ActionResult(True, True, f"Maintenance off after {fmt_duration(now - m.started_at)}; "
                                        "the summary goes to the alert chat.")

    # --- QuietService: silences -----------------------------------------------------
    async def silences(self) -> list[SilenceView]:
        now = self.clock.time()
        return [s.view() for s in sorted(self._silences.values(), key=lambda s: (s.row.ends_at, s.id))
                if s.row.ends_at > now]

    async def silence(self, matchers: str, duration_s: float, reason: str, actor: Actor) -> ActionResult:
        try:
            parsed = parse_matchers(matchers, known_rules=self.rules.names)
        except MatcherError as err:
            return ActionResult(False, False, str(err))
        problem = check_duration(duration_s, max_s=self.silence_max_s, example=SILENCE_EXAMPLE)
        if problem is not None:
            return ActionResult(False, False, problem)
        reason = " ".join((reason or "").split())[:MAX_REASON_LEN]
        text = matchers_text(parsed)
        async with self._lock:
            now = self.clock.time()
            row = AlertSilence(matchers_json=matchers_to_json(parsed), reason=reason, created_by=actor.name[:128],
                               created_by_id=actor.user_id, created_at=now, ends_at=now + duration_s)
            stored = await self.store.add_silence(
                row, detail=f"{text} for {fmt_duration(duration_s)}" + (f": {reason}" if reason else ""))
            cached = _Silence(stored, parsed)
            self._silences[cached.id] = cached
        return ActionResult(True, True, f"Silence #{cached.id} on {text} until {clock_text(row.ends_at, now)} "
                                        f"({fmt_duration(duration_s)}).")

    async def unsilence(self, silence_id: int, actor: Actor) -> ActionResult:
        async with self._lock:
            now = self.clock.time()
            row = await self.store.get_silence(silence_id)
            if row is None:
                return ActionResult(False, False, f"No silence #{silence_id}; /silence lists them.")
            if row.ended_at is not None or row.ends_at <= now:
                return ActionResult(True, False, f"Silence #{silence_id} has already ended.")
            if not await self.store.end_silence(silence_id, at=now, by=actor.name, actor_id=actor.user_id):
                return ActionResult(True, False, f"Silence #{silence_id} has already ended.")
            self._silences.pop(silence_id, None)
        return ActionResult(True, True, f"Silence #{silence_id} lifted.")

    # --- the timer's steps ----------------------------------------------------------
    async def _expire_silences(self, now: float) -> None:
        for silence in [s for s in self._silences.values() if s.row.ends_at <= now]:
            await self.store.end_silence(silence.id, at=silence.row.ends_at, by="expired", expired=True)
            self._silences.pop(silence.id, None)

    async def _remind(self, now: float) -> None:
        lead = self.reminder_before_s
        for silence in list(self._silences.values()):
            row = silence.row
            if row.reminded or not row.ends_at - lead <= now < row.ends_at:
                continue
            if row.ends_at - row.created_at >= REMINDER_MIN_FACTOR * lead:
                text = (f"🔕 Silence #{silence.id} on <code>{esc(matchers_text(silence.matchers))}</code> ends in "
                        f"{esc(fmt_duration(row.ends_at - now))}, at {esc(clock_text(row.ends_at))}.\n"
                        f"Set by {esc(row.created_by or 'someone')}"
                        + (f": {esc(row.reason)}" if row.reason else "") + ".\n"
                        f"To keep it: <code>/silence {esc(matchers_text(silence.matchers))} 1h</code>")
                await self._send(text, key=f"alerts:silence:{silence.id}:reminder",
                                 markup=self.buttons().silence(silence.id))
            await self.store.mark_reminded(silence.id)
            row.reminded = True

    async def _end_maintenance(self, now: float) -> None:
        m = self._maintenance
        if m is None or m.id is None:
            return
        if m.ended_at is None and now >= m.ends_at:
            await self.store.end_maintenance(m.id, at=m.ends_at, by=None)
            m.ended_at = m.ends_at
        if m.ended_at is not None:
            self._maintenance = None
            self._unsummarised.append(m)
        else:
            self._fired_meanwhile = sum((await history.count_by_rule(self.db, m.started_at, now + 1e-6)).values())

    async def _summaries(self, now: float) -> None:
        while self._unsummarised:
            m = self._unsummarised[0]
            assert m.id is not None
            text = await self.summary_text(m)
            await self._send(text, key=f"alerts:maintenance:{m.id}:summary", markup=None)
            await self.store.mark_summary_sent(m.id)
            m.summary_sent = True
            self._unsummarised.pop(0)

    async def summary_text(self, m: AlertMaintenance) -> str:
        """The one message at a window's end: what fired meanwhile, by rule, with counts."""
        end = m.ended_at if m.ended_at is not None else m.ends_at
        fired = await history.count_by_rule(self.db, m.started_at, end)
        resolved = await history.count_by_rule(self.db, m.started_at, end, kind=history.RESOLVED)
        how = f"ended by {esc(m.ended_by)}" if m.ended_by else "ran its time"
        lines = [f"🛠 <b>Maintenance over</b> after {esc(fmt_duration(end - m.started_at))} ({how})."]
        if m.reason:
            lines.append(f"Reason: {esc(m.reason)}")
        total = sum(fired.values())
        if not total:
            lines.append("Nothing fired while it was on.")
        else:
            lines.append(f"While it was on, {total} alert{'s' if total != 1 else ''} fired:")
            for rule, count in list(fired.items())[:SUMMARY_MAX_RULES]:
                done = resolved.get(rule, 0)
                lines.append(f"• <code>{esc(rule)}</code> ×{count}" + (f" ({done} resolved)" if done else ""))
            if len(fired) > SUMMARY_MAX_RULES:
                lines.append(f"… and {len(fired) - SUMMARY_MAX_RULES} more rules")
        return "\n".join(lines)

    async def _send(self, text: str, *, key: str, markup: object) -> None:
        if self.chat_id is None:
            log.info("no TELEGRAM_ALERT_CHAT_ID; not sent: %s", key)
            return
        try:
            await self.outbox.enqueue(self.chat_id, text, key=key, priority=INFO, reply_markup=markup)
        except OutboxError as err:
            log.error("quiet message %s refused by the outbox: %s", key, err)
