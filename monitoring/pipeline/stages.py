"""Stalled processing and bottlenecks, from the pipeline's per-stage statistics.

The pipeline keeps ``tokens.stage_stats.StageStats``: for each stage (discovery, fetch,
scoring, db_write, scheduler) a count, when it last ran, recent durations and its queue
size. ``stage_views(stats)`` turns that into plain ``StageView`` rows (duck-typed, so a
dict or any object with those attributes works too). ``QueueTrend`` remembers queue sizes
across collections to tell a *growing* queue from a merely non-empty one.

*Stalled*: there are live tokens but no *successful* check (``checks.ok``: pool data
fetched and evaluated) was recorded for ``stall_intervals`` x the check interval (hot
interval when any token is active, else cold). Failed fetches are recorded as checks too,
so during a market outage checks keep arriving while nothing is learned: when the last
check *attempt* is recent but the last successful one is not, the stage named as stopped
is ``fetch`` ("every fetch failing"). Otherwise the stage named is the first, in the order
a check flows (scheduler -> fetch -> scoring -> db_write, then discovery, the feeder),
whose queue grows or whose ``last_at`` is older than that same threshold (or missing).

``last_successful_check_time`` looks back only ``lookback_s`` (a bounded range scan of
``checks(at)``); ``None`` then means "none within the lookback", which is past any stall
threshold shorter than it, unless every live token entered its status less than the threshold
ago (``live_since``, read only then: ``oldest_live_since``): a fresh start or the first tokens of
a quiet market have had no time to be checked yet, so nothing is overdue.

*Bottleneck*: the stage whose queue grows the most; with no growing queue, the stage with
the largest share of the time spent across stages::

    trend = QueueTrend()
    views = stage_views(stage_stats); trend.observe(views)
    stall = detect_stall(now, last_success_at, live_tokens=812, interval_s=10, stall_intervals=3,
                         views=views, trend=trend, last_attempt_at=last_check_at)
    neck = find_bottleneck(views, trend)
    stall.stalled, stall.stage, neck.stage, neck.share
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.numbers import finite_float
from monitoring.pipeline.sql import run
from tokens.check_rollup import MINUTE_S, newest_minute

STAGES = ("discovery", "fetch", "scoring", "db_write", "scheduler")
CHECK_FLOW = ("scheduler", "fetch", "scoring", "db_write", "discovery")


@dataclass(frozen=True)
class StageView:
    """One stage's figures: runs so far, last run (epoch s), time spent (s), queue length."""

    name: str
    count: int = 0
    last_at: float | None = None
    busy_s: float = 0.0
    queue_size: int = 0


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if not isinstance(obj, Mapping) and hasattr(obj, name):
            return getattr(obj, name)
    return default


def _busy(stage: Any) -> float:
    total = _get(stage, "busy_s", "total_duration_s", "duration_sum_s", "duration_sum", "total_s")
    if total is not None:
        return finite_float(total) or 0.0
    durations = _get(stage, "durations", "durations_s")
    if durations is None:
        return 0.0
    try:
        return float(sum((finite_float(d) or 0.0) for d in list(durations)))
    except TypeError:
        return 0.0




def stage_views(stats: Any) -> list[StageView]:
    """Per-stage views from a ``StageStats`` (or a mapping name -> stage), in ``STAGES`` order.

    Unknown stages are appended after the known ones; a stage missing from ``stats`` is
    reported as never run.
    """
    if stats is None:
        return [StageView(name) for name in STAGES]
    source: Any = stats
    if hasattr(stats, "snapshot") and callable(stats.snapshot):
        source = stats.snapshot()
    if not isinstance(source, Mapping):
        source = _get(source, "stages", default=None) or {
            name: getattr(stats, name) for name in STAGES if hasattr(stats, name)
        }
    if hasattr(source, "items") and not isinstance(source, Mapping):
        source = dict(source.items())
    names = list(STAGES) + sorted(str(n) for n in source if n not in STAGES)
    views = []
    for name in names:
        stage = source.get(name)
        if stage is None:
            views.append(StageView(name))
            continue
        last_at = _get(stage, "last_at")
        views.append(
            StageView(
                name=name,
                count=int(finite_float(_get(stage, "count", default=0)) or 0.0),
                last_at=None if last_at is None else (finite_float(last_at) or 0.0),
                busy_s=_busy(stage),
                queue_size=int(finite_float(_get(stage, "queue_size", default=0)) or 0.0),
            )
        )
    return views


class QueueTrend:
    """Recent queue sizes per stage; a queue *grows* when it never shrank over the last
    ``min_samples`` observations and ended higher than it started.

        trend = QueueTrend(min_samples=3)
        for size in (1, 4, 9):
            trend.observe([StageView("fetch", queue_size=size)])
        assert trend.growing("fetch") and trend.growth("fetch") == 8
    """

    def __init__(self, min_samples: int = 3) -> None:
        if min_samples < 2:
            raise ValueError("min_samples must be at least 2")
        self.min_samples = min_samples
        self._sizes: dict[str, deque[int]] = {}

    def observe(self, views: Iterable[StageView]) -> None:
        for view in views:
            self._sizes.setdefault(view.name, deque(maxlen=self.min_samples)).append(int(view.queue_size))

    def growth(self, name: str) -> int:
        sizes = list(self._sizes.get(name, ()))
        if len(sizes) < self.min_samples:
            return 0
        if any(b < a for a, b in zip(sizes, sizes[1:])):
            return 0
        return max(0, sizes[-1] - sizes[0])

    def growing(self, name: str) -> bool:
        return self.growth(name) > 0


@dataclass(frozen=True)
class StallReport:
    """``last_check_at``/``silent_for_s`` are about the last SUCCESSFUL check;
    ``last_attempt_at`` is the last check recorded at all (failed fetches included)."""

    stalled: bool
    threshold_s: float
    last_check_at: float | None = None
    silent_for_s: float | None = None
    stage: str | None = None
    stage_reason: str | None = None
    last_attempt_at: float | None = None

    @property
    def fetch_failing(self) -> bool:
        """Stalled while checks are still being attempted: every fetch fails."""
        return self.stalled and self.stage == "fetch" and self.stage_reason is not None \
            and self.stage_reason.startswith(FETCH_FAILING)


@dataclass(frozen=True)
class BottleneckReport:
    stage: str | None
    reason: str | None
    share: float | None = None
    shares: dict[str, float] = field(default_factory=dict)
    growing_queues: dict[str, int] = field(default_factory=dict)


FETCH_FAILING = "every fetch failing"
_LAST_CHECK = text("SELECT MAX(at) FROM checks")
# Within the newest minute that had a successful check (tokens.check_rollup.newest_minute), the newest
# ok check, walking checks(at) backwards: one row when the newest checks are ok, at most that minute's
# rows during an outage (an unbounded walk would read every failed check since the last success).
_LAST_SUCCESS = text("SELECT at FROM checks WHERE at > :since AND at <= :now AND at > :lo AND at <= :hi AND ok "
                     "ORDER BY at DESC LIMIT 1")


async def last_check_time(session: AsyncSession) -> float | None:
    """When the newest check was recorded, failed fetches included (``checks(at)`` index), or ``None``."""
    value = (await run(session, _LAST_CHECK)).scalar()
    return None if value is None else float(value)


_OLDEST_LIVE = text("SELECT MIN(status_since) FROM tokens WHERE status IN ('monitoring', 'active')")


async def oldest_live_since(session: AsyncSession) -> float | None:
    """When the longest-live token (monitoring or active) entered its status, or ``None`` when none is live
    (``ix_tokens_status_since``)."""
    value = (await run(session, _OLDEST_LIVE)).scalar()
    return None if value is None else float(value)


async def last_successful_check_time(session: AsyncSession, now: float, lookback_s: float) -> float | None:
    """When the newest SUCCESSFUL check (``ok``) was recorded within ``(now - lookback_s, now]``, or ``None``."""
    since = now - lookback_s
    minute = await newest_minute(session, since, now, ok=True)
    if minute is None:
        return None
    value = (await run(session, _LAST_SUCCESS, {"since": since, "now": now, "lo": minute,
                                                "hi": minute + MINUTE_S})).scalar()
    return None if value is None else float(value)


def stall_lookback_s(threshold_s: float, rate_window_s: float = 300.0) -> float:
    """How far back to look for the last successful check: the rate window, at least twice the threshold."""
    return max(float(rate_window_s), 2.0 * float(threshold_s))


def detect_stall(
    now: float,
    last_check_at: float | None,
    *,
    live_tokens: int,
    interval_s: float,
    stall_intervals: int,
    views: list[StageView] | None = None,
    trend: QueueTrend | None = None,
    last_attempt_at: float | None = None,
    failed_checks: int | None = None,
    live_since: float | None = None,
) -> StallReport:
    """Is processing stalled, and which stage stopped? (See the module docstring.)

    ``last_check_at`` is the last successful check; ``last_attempt_at`` the last check of
    any outcome and ``failed_checks`` how many fetches failed recently (both optional: they
    only serve to name ``fetch`` when checks are attempted but every fetch fails).
    ``live_since`` (when the longest-live token entered its status) matters only with no
    successful check at all: tokens live for less than the threshold are not overdue yet.
    """
    threshold = float(stall_intervals) * float(interval_s)
    silent = None if last_check_at is None else max(0.0, now - last_check_at)
    fresh = last_check_at is None and live_since is not None and now - live_since <= threshold
    stalled = live_tokens > 0 and not fresh and (silent is None or silent > threshold)
    if not stalled:
        return StallReport(False, threshold, last_check_at, silent, last_attempt_at=last_attempt_at)
    if last_attempt_at is not None and now - last_attempt_at <= threshold and (
            last_check_at is None or last_attempt_at > last_check_at):  # checks attempted, none succeeds
        failed = f"{failed_checks} failed, " if failed_checks else ""
        why = f"{FETCH_FAILING} ({failed}last attempt {now - last_attempt_at:.0f} s ago)"
        return StallReport(True, threshold, last_check_at, silent, "fetch", why, last_attempt_at)
    stage, stage_why = _stopped_stage(now, threshold, views or [], trend)
    return StallReport(True, threshold, last_check_at, silent, stage, stage_why, last_attempt_at)


def _stopped_stage(now: float, threshold: float, views: list[StageView], trend: QueueTrend | None) -> tuple[str | None, str | None]:
    by_name = {v.name: v for v in views}
    for name in CHECK_FLOW:
        view = by_name.get(name)
        if view is None:
            continue
        if trend is not None and trend.growing(name):
            return name, f"queue growing (+{trend.growth(name)}, now {view.queue_size})"
        if view.last_at is None:
            return name, "never ran"
        if now - view.last_at > threshold:
            return name, f"last ran {now - view.last_at:.0f} s ago"
    return None, None


def find_bottleneck(views: list[StageView], trend: QueueTrend | None = None) -> BottleneckReport:
    """The stage with the fastest-growing queue, else the largest share of time."""
    growing = {v.name: trend.growth(v.name) for v in views if trend is not None and trend.growing(v.name)}
    total = sum(v.busy_s for v in views)
    shares = {v.name: v.busy_s / total for v in views} if total > 0 else {}
    if growing:
        name = max(growing, key=lambda n: (growing[n], shares.get(n, 0.0)))
        queue = next(v.queue_size for v in views if v.name == name)
        return BottleneckReport(name, f"queue growing (+{growing[name]}, now {queue})", shares.get(name), shares, growing)
    if not shares:
        return BottleneckReport(None, None, None, shares, growing)
    name = max(shares, key=lambda n: shares[n])
    return BottleneckReport(name, f"{shares[name]:.0%} of stage time", shares[name], shares, growing)
