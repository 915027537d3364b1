"""/tune: how each rule behaved over the last 7 days, a suggested threshold from the metric's
own healthy history, manual Apply and Revert, and automatic tuning within declared bounds.

The threshold in force for a rule is its newest unreverted change (``alert_tuning``), clamped
into the rule's ``tune`` bounds, else the file's; it is cached in memory (loaded at start),
so :meth:`Tuning.threshold` (the engine's :class:`~alerts.policy.ThresholdSource`) never
queries::

    tuning = Tuning.from_settings(db, rules, metrics, outbox, settings, clock, buttons=lambda: alerts.buttons)
    await tuning.start()
    scheduler.add_all(tuning.jobs())           # automatic tuning, every ALERT_AUTOTUNE_INTERVAL_S
    rows = await tuning.report()                # [TuneRow] for /tune
    await tuning.apply("api_slow", actor)       # move to the suggestion (the bot checked the admin)
    await tuning.revert(change_id, actor)
    tuning.threshold(rules["api_slow"])

The suggestion: the metric's 1-minute rollups where they still exist, else its 1-hour rollups
(each hour weighing 60 minutes), over the last 7 days, leaving out the times an incident of that
rule was open; the ``ALERT_TUNE_PERCENTILE`` (p99) of them for ``>``/``>=`` rules, its mirror (p1)
for ``<``/``<=`` rules, rounded to 3 significant digits and clamped into the rule's bounds.
Rules aggregating ``max`` (``min``) use each bucket's max (min), others its average.
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.durations import fmt_duration
from app.scheduler import JobSpec
from app.settings import Settings
from delivery.html import esc
from delivery.models import INFO
from delivery.store import Outbox, OutboxError
from monitoring.models import HOUR, MINUTE
from monitoring.store import MetricStore, Point
from alerts import history
from alerts.api import NO_BUTTONS, ActionResult, Actor, ButtonFactory, TuneRow
from alerts.models import AlertTuning
from alerts.quiet_store import QuietStore
from alerts.rules import Rule, RuleSet

log = logging.getLogger(__name__)

REPORT_S = 7 * 86400.0
MAX_SERIES = 20
AUTO = "auto"


@dataclass(frozen=True)
class Suggestion:
    value: float | None
    basis: str
    healthy_s: float = 0.0


def round_sig(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant digits (2.3456 -> 2.35)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def weighted_percentile(weighted: list[tuple[float, float]], p: float) -> float:
    """Nearest rank with weights, as ``app.percentiles.percentile`` is without: the smallest value
    with at least ``p`` of the total weight at or below it (the smallest value for ``p = 0``).

        weighted_percentile([(1.0, 60), (2.0, 60)], 0.5)   # 1.0
    """
    ordered = sorted(weighted)
    total = sum(w for _, w in ordered)
    need = p * total
    seen = 0.0
    for value, w in ordered:
        seen += w
        if seen >= need - 1e-9 * total:
            return value
    return ordered[-1][0]


def fmt_threshold(value: float) -> str:
    return f"{value:g}"


class Tuning:
    """Threshold tuning (implements ``TuningService`` and ``ThresholdSource``)."""

    def __init__(self, db: Database, rules: RuleSet, metrics: MetricStore, outbox: Outbox, *,
                 clock: Clock = SYSTEM_CLOCK, chat_id: int | None = None,
                 buttons: Callable[[], ButtonFactory] = lambda: NO_BUTTONS,
                 percentile: float = 0.99, min_history_s: float = 86400.0,
                 auto_interval_s: float = 3600.0, auto_min_fires: int = 5, auto_window_s: float = 86400.0,
                 auto_unattended_share: float = 0.8, auto_step: float = 0.5,
                 auto_cooldown_s: float = 86400.0) -> None:
        self.db = db
        self.store = QuietStore(db)
        self.rules = rules
        self.metrics = metrics
        self.outbox = outbox
        self.clock = clock
        self.chat_id = chat_id
        self.buttons = buttons
        self.percentile = percentile
        self.min_history_s = min_history_s
        self.auto_interval_s = auto_interval_s
        self.auto_min_fires = auto_min_fires
        self.auto_window_s = auto_window_s
        self.auto_unattended_share = auto_unattended_share
        self.auto_step = auto_step
        self.auto_cooldown_s = auto_cooldown_s
        self._effective: dict[str, AlertTuning] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, db: Database, rules: RuleSet, metrics: MetricStore, outbox: Outbox, settings: Settings,
                      clock: Clock = SYSTEM_CLOCK, *,
                      buttons: Callable[[], ButtonFactory] = lambda: NO_BUTTONS,
                      chat_id: int | None = None) -> "Tuning":
        return cls(db, rules, metrics, outbox, clock=clock, buttons=buttons,
                   chat_id=chat_id if chat_id is not None else settings.telegram_alert_chat_id,
                   percentile=settings.alert_tune_percentile,
                   min_history_s=settings.alert_tune_min_history_h * 3600.0,
                   auto_interval_s=settings.alert_autotune_interval_s,
                   auto_min_fires=settings.alert_autotune_min_fires,
                   auto_window_s=settings.alert_autotune_window_h * 3600.0,
                   auto_unattended_share=settings.alert_autotune_unattended_share,
                   auto_step=settings.alert_autotune_step,
                   auto_cooldown_s=settings.alert_autotune_cooldown_h * 3600.0)

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Load the thresholds in force; announce recent automatic changes not yet queued (a crash
        between recording and queueing): the outbox key makes that a no-op when they were."""
        async with self._lock:
            self._effective = await self.store.effective_tunings()
        for change in await self.store.tunings(since=self.clock.time() - max(self.auto_cooldown_s, 3600.0)):
            if change.by == AUTO and change.reverted_at is None:
                await self._announce(change)

    def jobs(self) -> list[JobSpec]:
        return [JobSpec("alerts.autotune", self.auto_tune, interval_s=self.auto_interval_s, budget_s=120.0,
                        start_delay_s=min(300.0, self.auto_interval_s))]

    # --- ThresholdSource ------------------------------------------------------------
    def threshold(self, rule: Rule) -> float:
        change = self._effective.get(rule.name)
        if change is None or rule.tune is None:
            return rule.threshold
        return min(max(change.after, rule.tune.min), rule.tune.max)

    # --- the suggestion -------------------------------------------------------------
    async def suggest(self, rule: Rule, now: float | None = None) -> Suggestion:
        """A threshold from the metric's healthy history over the last 7 days (None without enough)."""
        now = self.clock.time() if now is None else now
        if rule.op in ("==", "!="):
            return Suggestion(None, f"no suggestion for {rule.op!r} rules")
        since = now - REPORT_S
        busy = await history.incident_intervals(self.db, rule.name, since, now)
        weighted: list[tuple[float, float]] = []   # (value, seconds of healthy time it stands for)
        for labels in await self._series(rule, now):
            minutes = await self.metrics.query(rule.metric, labels=labels, since=since, until=now, resolution=MINUTE)
            hours = await self.metrics.query(rule.metric, labels=labels, since=since, until=now, resolution=HOUR)
            by_hour: dict[int, list[Point]] = {}
            for p in minutes:
                by_hour.setdefault(int(p.ts // HOUR), []).append(p)
            # an hour with 1-minute rows is read from them (each standing for its share of the
            # hour, however sparse the samples were); older hours from their 1-hour row
            buckets = [(p, MINUTE, HOUR / len(by_hour[int(p.ts // HOUR)])) for p in minutes]
            buckets += [(p, HOUR, HOUR) for p in hours if int(p.ts // HOUR) not in by_hour]
            for p, size, weight in buckets:
                if p.ts + size > now or any(p.ts < b and p.ts + size > a for a, b in busy):
                    continue
                value = self._bucket_value(rule, p)
                if math.isfinite(value):
                    weighted.append((value, weight))
        healthy_s = sum(w for _, w in weighted)
        if healthy_s < self.min_history_s:
            return Suggestion(None, f"only {fmt_duration(healthy_s)} of healthy history; "
                                    f"needs {fmt_duration(self.min_history_s)}", healthy_s)
        q = self.percentile if rule.op in (">", ">=") else 1.0 - self.percentile
        raw = weighted_percentile(weighted, q)
        value = round_sig(raw)
        name = f"p{round(q * 100, 1):g}"
        basis = f"{name} of {fmt_duration(healthy_s)} of healthy history"
        if rule.tune is not None:
            clamped = min(max(value, rule.tune.min), rule.tune.max)
            if clamped != value:
                basis += f" ({fmt_threshold(value)}, kept within {fmt_threshold(rule.tune.min)}–" \
                         f"{fmt_threshold(rule.tune.max)})"
            value = clamped
        return Suggestion(value, basis, healthy_s)

    @staticmethod
    def _bucket_value(rule: Rule, point: Point) -> float:
        if rule.aggregation == "max":
            return point.max
        if rule.aggregation == "min":
            return point.min
        return point.value

    async def _series(self, rule: Rule, now: float) -> list[dict[str, str]]:
        seen = await self.metrics.series_labels(rule.metric, since=now - self.metrics.raw_retention_s)
        wanted = [s for s in seen if all(s.get(k) == v for k, v in rule.labels.items())]
        if dict(rule.labels) not in wanted:
            wanted.insert(0, dict(rule.labels))
        return wanted[:MAX_SERIES]

    # --- TuningService --------------------------------------------------------------
    async def report(self) -> list[TuneRow]:
        now = self.clock.time()
        stats = await history.rule_stats(self.db, now - REPORT_S, now)
        rows: list[TuneRow] = []
        for rule in self.rules:
            s = stats.get(rule.name, history.RuleStats(rule.name))
            suggestion = await self.suggest(rule, now)
            change = self._effective.get(rule.name)
            rows.append(TuneRow(
                rule=rule.name, severity=rule.severity, threshold=self.threshold(rule), file_threshold=rule.threshold,
                fired=s.fired, total_firing_s=s.firing_s, acked_share=s.acked_share,
                cleared_unattended_share=s.cleared_unattended_share, suggested=suggestion.value,
                suggestion_basis=suggestion.basis, last_change_id=change.id if change is not None else None,
                unit=rule.unit))
        return rows

    async def apply(self, rule: str, actor: Actor) -> ActionResult:
        found = self.rules.get(rule)
        if found is None:
            return ActionResult(False, False, f"Unknown rule {rule[:48]!r}; /tune lists the rules.")
        if found.tune is None:
            return ActionResult(False, False, f"{found.name} declares no tune bounds; add tune = {{ min = ..., "
                                              "max = ... }} to its rule in the rules file first.")
        suggestion = await self.suggest(found)
        if suggestion.value is None:
            return ActionResult(False, False, f"No suggestion for {found.name}: {suggestion.basis}.")
        async with self._lock:
            current = self.threshold(found)
            if math.isclose(suggestion.value, current, rel_tol=1e-9, abs_tol=1e-12):
                return ActionResult(True, False, f"{found.name} is already at {fmt_threshold(current)}.")
            change = await self.store.add_tuning(AlertTuning(
                rule=found.name, at=self.clock.time(), before=current, after=suggestion.value, by=actor.name[:128],
                by_id=actor.user_id, reason=f"suggested: {suggestion.basis}"))
            self._effective[found.name] = change
        return ActionResult(True, True, f"{found.name} threshold {fmt_threshold(current)} → "
                                        f"{fmt_threshold(change.after)} (change #{change.id}).")

    async def revert(self, change_id: int, actor: Actor) -> ActionResult:
        async with self._lock:
            change = await self.store.get_tuning(change_id)
            if change is None:
                return ActionResult(False, False, f"No tuning change #{change_id}; /tune lists the rules.")
            if change.reverted_at is not None:
                return ActionResult(True, False, f"Change #{change_id} was already reverted"
                                                 f"{' by ' + change.reverted_by if change.reverted_by else ''}.")
            newest = (await self.store.effective_tunings()).get(change.rule)
            if newest is not None and newest.id != change.id:
                return ActionResult(True, False, f"Change #{change_id} is not the newest for {change.rule}; "
                                                 f"revert #{newest.id} first.")
            if not await self.store.revert_tuning(change_id, at=self.clock.time(), by=actor.name, by_id=actor.user_id):
                return ActionResult(True, False, f"Change #{change_id} was already reverted.")
            self._effective = await self.store.effective_tunings()
        rule = self.rules.get(change.rule)
        now_text = fmt_threshold(self.threshold(rule)) if rule is not None else fmt_threshold(change.before)
        return ActionResult(True, True, f"{change.rule} threshold back to {now_text} (change #{change_id} reverted).")

    # --- automatic tuning -----------------------------------------------------------
    async def auto_tune(self) -> list[AlertTuning]:
        """Loosen non-critical ``tune.auto`` rules that keep firing with nobody acting, one step
        toward the suggestion, within bounds; each change is announced with a Revert button."""
        now = self.clock.time()
        recent = await self.store.tunings(since=now - self.auto_cooldown_s) if self.auto_cooldown_s else []
        reverted_lately = {c.rule for c in await self.store.tunings(since=now - 30 * 86400.0)
                           if c.reverted_at is not None and c.reverted_at >= now - self.auto_cooldown_s}
        cooling = {c.rule for c in recent} | reverted_lately
        made: list[AlertTuning] = []
        for rule in self.rules:
            tune = rule.tune
            if tune is None or not tune.auto or rule.severity == "critical" or rule.name in cooling:
                continue
            if rule.op not in (">", ">=", "<", "<="):
                continue
            stats = (await history.rule_stats(self.db, now - self.auto_window_s, now, rule=rule.name)).get(rule.name)
            if stats is None or stats.fired < self.auto_min_fires or stats.acked:
                continue
            share = stats.cleared_unattended_share or 0.0
            if share < self.auto_unattended_share:
                continue
            suggestion = await self.suggest(rule, now)
            if suggestion.value is None:
                continue
            current = self.threshold(rule)
            looser = suggestion.value > current if rule.op in (">", ">=") else suggestion.value < current
            if not looser:
                continue
            target = round_sig(current + self.auto_step * (suggestion.value - current))
            target = min(max(target, tune.min), tune.max)
            if math.isclose(target, current, rel_tol=1e-9, abs_tol=1e-12):
                continue
            reason = (f"fired {stats.fired} times in {fmt_duration(self.auto_window_s)}, none acknowledged, "
                      f"{stats.cleared_unattended} cleared by themselves; suggested "
                      f"{fmt_threshold(suggestion.value)} ({suggestion.basis})")
            async with self._lock:
                change = await self.store.add_tuning(AlertTuning(
                    rule=rule.name, at=now, before=current, after=target, by=AUTO, reason=reason))
                self._effective[rule.name] = change
            await self._announce(change)
            made.append(change)
        return made

    def announcement(self, change: AlertTuning) -> str:
        rule = self.rules.get(change.rule)
        unit = f" {rule.unit}" if rule is not None and rule.unit in ("s", "bytes") else ""
        bounds = (f"\nBounds {esc(fmt_threshold(rule.tune.min))}–{esc(fmt_threshold(rule.tune.max))}."
                  if rule is not None and rule.tune is not None else "")
        return (f"🎚 <b>Automatic tuning</b> #{change.id}: <code>{esc(change.rule)}</code> threshold "
                f"{esc(fmt_threshold(change.before))} → <b>{esc(fmt_threshold(change.after))}</b>{esc(unit)}\n"
                f"Why: {esc(change.reason)}.{bounds}\nRevert puts {esc(fmt_threshold(change.before))} back.")

    async def _announce(self, change: AlertTuning) -> None:
        if self.chat_id is None or change.id is None:
            return
        try:
            await self.outbox.enqueue(self.chat_id, self.announcement(change), key=f"alerts:tuning:{change.id}:auto",
                                      priority=INFO, reply_markup=self.buttons().tuning(change.id))
        except OutboxError as err:
            log.error("tuning announcement #%s refused by the outbox: %s", change.id, err)
