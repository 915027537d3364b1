"""Rules over monitoring's snapshots: one :class:`Observation` per rule per matching series.

Pure and fast: no notification, no state machine (``for``, ``keep_firing_for``, inhibition and
muting are the engine's), no database except the metric store for forecasts and seeding::

    evaluator = Evaluator(rules, thresholds, mutes, store=metric_store, configured=configured_parts(settings))
    await evaluator.seed(now)                              # once at start: the window survives a restart

    async def on_snapshot(snap: MonitoringSnapshot) -> None:   # coordinator.add_listener(on_snapshot)
        observations = await evaluator.evaluate(snap, clock.time())

    obs = (await evaluator.evaluate(snapshot, now))[0]
    obs.rule, obs.labels, obs.value, obs.threshold, obs.breached
    rule.summary.format_map(obs.context)                   # every placeholder is present

What one cycle does, rule by rule:

- **Series**: every series of ``rule.metric`` whose labels include ``rule.labels`` exactly
  (each is its own alert: ``Observation.labels`` are the series' full labels). A rule with no
  matching series gives no observation. A series that had data and has none now (gone from the
  snapshot, or its newest point older than ``stale_after_s``: its collector is failing) gives
  a ``value=None``, ``breached=False`` observation every cycle, so the engine can resolve what it
  opened, until it has been gone for ``forget_after_s`` (1 h).
- **Value**: ``rule.aggregation`` over ``rule.window`` of the in-memory history
  (:mod:`alerts.window`), compared with ``rule.op`` against the threshold in force:
  ``thresholds.threshold(rule)``, or the rule's ``maintenance.threshold`` while
  ``mutes.in_maintenance(now)``. Rules with ``when_configured`` run only when that part is in
  ``configured`` (``None``: whenever their metric reports; the Redis collector exists only
  when ``REDIS_URL`` is set).
- **Forecast rules** (``rule.forecast``): the value is the predicted seconds until the metric
  reaches ``forecast.limit`` (or the newest value of ``forecast.limit_metric``), from the
  Theil-Sen trend (``monitoring.trend``) of the metric store's history over
  ``forecast.history``; ``None`` when the trend does not get there within ``forecast.horizon``,
  or when less than half of the history is stored yet (a start-up ramp is not a trend). The
  rule's op/threshold compare that time (``op = "<="``, ``threshold`` = seconds). The store is
  queried at most once per ``forecast_every_s`` (60 s) per rule and series, and a cycle
  refreshes at most ``refreshes_per_cycle`` (1) fits that are due (a series' first fit is made
  at once), so the cost never piles up in one cycle; cycles in between reuse the fit.
- **Context** (plain text, the renderer escapes it): the series' labels, ``value`` and
  ``threshold`` formatted in ``rule.unit`` (forecasts: as durations), the stall evidence
  (``stage``, ``stage_reason``, ``silent_for``; from ``snapshot.pipeline.stall``), stuck tokens
  (``stuck``, ``top_reasons``), memory (``resident``, ``memory_limit``, ``culprit``: the leak diagnosis'
  component, line and growth), forecasts (``eta``:
  the predicted UTC time, ``eta_in``, ``current``, ``limit``); ``—`` where unknown. Any other
  placeholder a summary names gets ``—``, so ``summary.format_map(context)`` never fails.
"""
from __future__ import annotations

import logging
import math
import string
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.durations import fmt_duration
from alerts.observation import Observation
from alerts.policy import FILE_THRESHOLDS, NEVER_MUTED, MutePolicy, ThresholdSource
from alerts.rules import Rule, RuleSet
from alerts.units import fmt_unit
from alerts.window import Series, SeriesWindow
from monitoring import metric_names as m
from monitoring.sample import parse_labels
from monitoring.trend import TrendFit, theil_sen, time_to_reach

if TYPE_CHECKING:  # pragma: no cover
    from monitoring.snapshot import MonitoringSnapshot
    from monitoring.store import MetricStore

log = logging.getLogger(__name__)

FORECAST_EVERY_S = 60.0
FORECAST_MAX_POINTS = 60    # Theil-Sen is O(n²): 60 points (one per 2 min of a 2 h history) is 1,770 slopes
FORGET_AFTER_S = 3600.0
DASH = "—"
TOP_REASONS = 3
#: keys every observation's context carries (besides the series' labels)
CONTEXT_KEYS = ("value", "threshold", "stage", "stage_reason", "silent_for", "stuck", "top_reasons",
                "resident", "memory_limit", "culprit", "eta", "eta_in", "current", "limit")


@dataclass
class _Fit:
    fetched_at: float
    fit: TrendFit | None


def summary_fields(rule: Rule) -> set[str]:
    """The placeholders ``rule.summary`` names."""
    return {f for _, f, _, _ in string.Formatter().parse(rule.summary) if f}


def configured_parts(settings: object) -> set[str]:
    """The optional parts a rule's ``when_configured`` may name that ``settings`` switch on."""
    return {"redis"} if getattr(settings, "redis_url", None) else set()


def _leak_culprit(snapshot: MonitoringSnapshot) -> str:
    """``tokens (tokens/pools.py:120, +9.5 MiB)`` from the memory policy's last leak diagnosis."""
    for (name, key), sample in snapshot.samples.items():
        if name == m.MEMORY_LEAK_CULPRIT:
            labels = parse_labels(key)
            return (f"{labels.get('component', 'unknown')} ({labels.get('source', 'unknown')}, "
                    f"+{fmt_unit(sample.value, 'bytes')})")
    return "not named yet"


def _fmt_utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


class Evaluator:
    """See the module docstring."""

    def __init__(self, rules: RuleSet, thresholds: ThresholdSource = FILE_THRESHOLDS,
                 mutes: MutePolicy = NEVER_MUTED, *, store: MetricStore | None = None,
                 configured: Collection[str] | None = None, forecast_every_s: float = FORECAST_EVERY_S,
                 forget_after_s: float = FORGET_AFTER_S, refreshes_per_cycle: int = 1) -> None:
        self.rules = rules
        self.thresholds = thresholds
        self.mutes = mutes
        self.store = store
        self.configured = None if configured is None else frozenset(configured)
        self.forecast_every_s = forecast_every_s
        self.forget_after_s = forget_after_s
        self.refreshes_per_cycle = refreshes_per_cycle
        self._refresh_budget = 0
        names: set[str] = set()
        span = 60.0
        for rule in rules:
            names.add(rule.metric)
            if rule.forecast is not None and rule.forecast.limit_metric:
                names.add(rule.forecast.limit_metric)
            span = max(span, rule.window_s + 60.0)
        self.window = SeriesWindow(names, span)
        self._fields = {rule.name: summary_fields(rule) for rule in rules}
        self._known: dict[str, dict[str, tuple[Mapping[str, str], float]]] = {rule.name: {} for rule in rules}
        self._fits: dict[tuple[str, str], _Fit] = {}
        self._store_failing = False
        self.store_queries = 0  # forecast queries made (for tests and the benchmark)

    # --- start ------------------------------------------------------------------------------
    async def seed(self, now: float) -> int:
        """Fill the window from the metric store (no-op without one); points loaded."""
        if self.store is None:
            return 0
        try:
            return await self.window.seed(self.store, now)
        except Exception as exc:  # noqa: BLE001 - a cold window is not a reason not to start
            log.warning("alert window not seeded from the metric store: %s", exc)
            return 0

    # --- one cycle --------------------------------------------------------------------------
    async def evaluate(self, snapshot: MonitoringSnapshot, now: float) -> list[Observation]:
        """Every rule over ``snapshot`` (see the module docstring)."""
        self.window.observe(snapshot)
        stale_after = max(3.0 * snapshot.collect_interval_s, 30.0)
        maintenance = self.mutes.in_maintenance(now)
        extras = self._cycle_context(snapshot)
        self._refresh_budget = self.refreshes_per_cycle
        out: list[Observation] = []
        for rule in self.rules:
            if rule.when_configured and self.configured is not None and rule.when_configured not in self.configured:
                continue
            if maintenance and rule.maintenance is not None and rule.maintenance.threshold is not None:
                threshold = rule.maintenance.threshold
            else:
                threshold = self.thresholds.threshold(rule)
            known = self._known[rule.name]
            seen: set[str] = set()
            for series in self.window.matching(rule.metric, rule.labels):
                if series.last_ts is None or series.last_ts < now - stale_after:
                    continue
                seen.add(series.key)
                known[series.key] = (series.labels, now)
                out.append(await self._observe(rule, series, snapshot, threshold, now, extras))
            for key, (labels, last) in list(known.items()):
                if key in seen:
                    continue
                if now - last > self.forget_after_s:
                    del known[key]
                    self._fits.pop((rule.name, key), None)
                    continue
                out.append(self._observation(rule, labels, None, threshold, now, extras, {}))
        self.window.forget_older_than(now - self.forget_after_s)
        return out

    async def _observe(self, rule: Rule, series: Series, snapshot: MonitoringSnapshot, threshold: float,
                       now: float, extras: Mapping[str, str]) -> Observation:
        if rule.forecast is None:
            value = series.aggregate(rule.aggregation, now=now, window_s=rule.window_s, quantile=rule.quantile)
            return self._observation(rule, series.labels, value, threshold, now, extras, {})
        fit = await self._fit(rule, series, now)
        current = series.last_value
        limit = rule.forecast.limit if rule.forecast.limit is not None else self._limit(rule, series)
        eta: float | None = None
        if fit is not None and current is not None and limit is not None:
            eta = time_to_reach(fit, now=now, current=current, limit=limit)
            if eta is not None and eta > rule.forecast.horizon_s:
                eta = None
        more = {
            "current": fmt_unit(current, rule.unit),
            "limit": fmt_unit(limit, rule.unit),
            "eta": _fmt_utc(now + eta) if eta is not None else "not predicted",
            "eta_in": fmt_duration(eta) if eta is not None else "not predicted",
        }
        return self._observation(rule, series.labels, eta, threshold, now, extras, more)

    def _observation(self, rule: Rule, labels: Mapping[str, str], value: float | None, threshold: float,
                     now: float, extras: Mapping[str, str], more: Mapping[str, str]) -> Observation:
        unit = "s" if rule.forecast is not None else rule.unit
        context: dict[str, str] = dict(extras)
        context.update(labels)
        context["value"] = fmt_unit(value, unit)
        context["threshold"] = fmt_unit(threshold, unit)
        context.update(more)
        for name in self._fields[rule.name]:
            context.setdefault(name, DASH)
        breached = value is not None and math.isfinite(value) and rule.breached(value, threshold)
        return Observation(rule.name, dict(labels), value, threshold, breached, now, context)

    # --- forecasts --------------------------------------------------------------------------
    def _limit(self, rule: Rule, series: Series) -> float | None:
        assert rule.forecast is not None and rule.forecast.limit_metric is not None
        same = self.window.get(rule.forecast.limit_metric, series.labels)
        if same is None:
            same = self.window.get(rule.forecast.limit_metric)
        return None if same is None else same.last_value

    async def _fit(self, rule: Rule, series: Series, now: float) -> TrendFit | None:
        assert rule.forecast is not None
        key = (rule.name, series.key)
        cached = self._fits.get(key)
        if cached is not None and 0.0 <= now - cached.fetched_at < self.forecast_every_s:
            return cached.fit
        if self.store is None:
            return None
        if cached is not None:
            if self._refresh_budget <= 0:
                return cached.fit  # due, but this cycle already refreshed its share
            self._refresh_budget -= 1
        history = rule.forecast.history_s
        try:
            self.store_queries += 1
            # 1-minute points for an hour or more (120 rows for 2 h instead of 720 raw ones)
            resolution = 60 if history >= 3600 else 0
            points = await self.store.query(rule.metric, labels=series.labels, since=now - history, until=now + 1e-6,
                                            resolution=resolution)
        except Exception as exc:  # noqa: BLE001 - keep the last fit; try again next minute
            if not self._store_failing:
                log.warning("forecast history unavailable (%s): %s", rule.name, exc)
            self._store_failing = True
            self._fits[key] = _Fit(now, cached.fit if cached is not None else None)
            return self._fits[key].fit
        if self._store_failing:
            log.info("forecast history available again")
            self._store_failing = False
        fit = None
        if len(points) >= 3 and points[-1].ts - points[0].ts >= history / 2:
            middle = resolution / 2  # a rollup's average belongs to the middle of its bucket, not its start
            fit = theil_sen([p.ts + middle for p in points], [p.value for p in points], max_points=FORECAST_MAX_POINTS)
        self._fits[key] = _Fit(now, fit)
        return fit

    # --- context ----------------------------------------------------------------------------
    def _cycle_context(self, snapshot: MonitoringSnapshot) -> dict[str, str]:
        stage = reason = silent = None
        pipeline = snapshot.pipeline
        if pipeline is not None:
            stall = pipeline.stall
            stage, reason = stall.stage, stall.stage_reason
            silent = fmt_duration(stall.silent_for_s) if stall.silent_for_s is not None else None
            stuck: float | None = float(pipeline.stuck_count)
            by_reason: dict[str, float] = {k: float(v) for k, v in pipeline.stuck_by_reason.items()}
        else:
            stuck = snapshot.value(m.STUCK_TOKENS)
            by_reason = {}
            for (name, key), sample in snapshot.samples.items():
                if name == m.PIPELINE_STALLED_STAGE and sample.value >= 1 and stage is None:
                    stage = parse_labels(key).get("stage")
                elif name == m.STUCK_TOKENS_BY_REASON and sample.value > 0:
                    by_reason[parse_labels(key).get("reason", "unknown")] = sample.value
            age = snapshot.value(m.LAST_CHECK_AGE_SECONDS)
            silent = fmt_duration(age) if age is not None else None
        top = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        return {
            "stage": stage or "unknown stage",
            "stage_reason": reason or "no reason recorded",
            "silent_for": silent or DASH,
            "stuck": fmt_unit(stuck, "count"),
            "top_reasons": ", ".join(f"{r.replace('_', ' ')} {n:,.0f}" for r, n in top) or "none recorded",
            "resident": fmt_unit(snapshot.value(m.PROCESS_RESIDENT_BYTES), "bytes"),
            "memory_limit": fmt_unit(snapshot.value(m.PROCESS_MEMORY_LIMIT_BYTES), "bytes"),
            "culprit": _leak_culprit(snapshot),
            "eta": DASH, "eta_in": DASH, "current": DASH, "limit": DASH,
        }
