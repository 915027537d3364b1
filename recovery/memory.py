"""The memory policy: thresholds against a post-GC baseline, cleanups, and leak diagnosis.

Every ``sample_s`` (job ``recovery.memory``) the policy reads resident memory and the effective
limit (cgroup-aware, ``monitoring.host.process.ProcessCollector.memory``); every ``baseline_s`` it
first collects the young generations (``gc.collect(1)``: milliseconds; a full collection of a large
heap holds the interpreter for hundreds of milliseconds, measured to lag the event loop past its
alert) so that reading is the *baseline*: what the process holds once fresh garbage is gone. Then, with ``k`` samples in a row as the rule (a spike alone never acts):

* over ``memory_critical_share`` k times: the full cleanup at once (gc -> caches by priority ->
  ``malloc_trim``), at most once per ``cleanup_cooldown_s``;
* over ``memory_warn_share`` k times, by the pattern: caches that grew since memory was last fine
  are trimmed (only those); a baseline that climbs starts the leak diagnosis; anything else gets
  the full cleanup. Fewer than k over: a spike; the policy waits and measures again.
* Every ``adapt_s`` the thresholds move by ``adapt_step`` within their bounds: up while more than
  half the limit is free and the baseline is steady, down under pressure (a cleanup was needed,
  usage near the warning, a leak suspected). Both are knobs (``memory_warn_share``,
  ``memory_critical_share``): /tune shows them, an operator may pin them.
* Leak detection: the Theil-Sen slope (``monitoring.trend``) of the baselines over ``leak_window_s``,
  gated by goodness of fit (R² of the robust line), a least rise and rate, switches ``tracemalloc``
  on; ``diagnose_s`` later the two snapshots' difference is grouped by component (the package of
  the innermost project frame: tokens, monitoring, alerts, bot, recovery, simulator, ...;
  ``third-party`` / ``python`` when no project frame allocated it) and the registered caches and
  queues that grew are named. The report is logged, recorded as an Action and exported
  (``tokenwatch_memory_leak_bytes_per_minute``, rule ``memory_leak_suspected``).

Every cleanup, whoever asked for it (this policy, an alert's ``cleanup_first``, the button), is
recorded as an ``Action(controller="memory", knob=None, before=rss, after=rss, detail="gc 12 MiB, ...")``.

    policy = MemoryPolicy(process_collector.memory, clock=clock, knobs=ctx.knobs,
                          params=MemoryParams.from_settings(settings))
    scheduler.add_all(policy.jobs()); collectors.register(policy.collector())
    await policy.tick()            # one sample (tests drive it with a ManualClock)
    policy.leak                    # LeakReport | None
"""
from __future__ import annotations

import asyncio
import gc
import logging
import math
import statistics
import tracemalloc
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.clock import SYSTEM_CLOCK, Clock
from app.memory import MIB, RECLAIMERS, Reclaimers, ReclaimReport
from app.scheduler import JobSpec
from app.settings import Settings
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.trend import TrendFit, theil_sen
from recovery.knobs import Action, Knob, KnobRegistry

log = logging.getLogger(__name__)

CONTROLLER = "memory"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The packages a source file is attributed to (anything else under the project root: its first folder).
TRACE_FRAMES = 12
TOP_SOURCES = 5
SHOWN = 64 * 1024   # growth below this is left out of the report's lists

ReadMemory = Callable[[], Awaitable[tuple[int, int | None]]]


# --- parameters -------------------------------------------------------------------------------
@dataclass
class MemoryParams:
    warn_share: float = 0.80
    critical_share: float = 0.92
    warn_bounds: tuple[float, float] = (0.70, 0.90)
    critical_bounds: tuple[float, float] = (0.85, 0.97)
    k: int = 3                          # samples in a row before acting
    sample_s: float = 10.0
    baseline_s: float = 30.0            # a full gc + baseline reading this often
    cleanup_cooldown_s: float = 120.0
    cache_growth: float = 0.2           # a cache "grew" by more than this share (and 1 item) since memory was fine
    adapt_s: float = 600.0
    adapt_step: float = 0.02
    leak_window_s: float = 600.0
    leak_min_span_s: float = 240.0      # the baselines must cover this long before any verdict
    leak_min_rate: float = 1.0 * MIB    # bytes per minute
    leak_min_rise: float = 6 * MIB      # over the window
    leak_min_fit: float = 0.7           # R² of the Theil-Sen line
    diagnose_s: float = 90.0
    rediagnose_s: float = 1800.0

    @classmethod
    def from_settings(cls, s: Settings) -> MemoryParams:
        return cls(warn_share=s.memory_warn_share, critical_share=s.memory_critical_share,
                   sample_s=s.memory_sample_s, baseline_s=s.memory_baseline_s,
                   leak_window_s=s.memory_leak_window_s, leak_min_rate=s.memory_leak_min_mib_per_min * MIB,
                   diagnose_s=s.memory_diagnose_s)


# --- where an allocation belongs ----------------------------------------------------------------
def component_of_path(filename: str, root: Path = PROJECT_ROOT) -> str:
    """``<root>/tokens/pools.py`` -> ``tokens``; site-packages -> ``third-party``; the standard
    library and frozen modules -> ``python``."""
    try:
        rel = Path(filename).resolve().relative_to(root)
    except (ValueError, OSError):
        rel = None
    if rel is not None and len(rel.parts) > 1 and rel.parts[0] not in (".venv", "venv"):
        return rel.parts[0]
    if "site-packages" in filename or "dist-packages" in filename:
        return "third-party"
    return "python"


def short_path(filename: str, root: Path = PROJECT_ROOT) -> str:
    try:
        return str(Path(filename).resolve().relative_to(root))
    except (ValueError, OSError):
        marker = "site-packages/"
        return filename[filename.index(marker) + len(marker):] if marker in filename else Path(filename).name


@dataclass(frozen=True)
class Growth:
    """What grew between two snapshots at one source line (the innermost project frame)."""
    component: str
    source: str      # tokens/pools.py:120
    size: int        # bytes
    count: int       # blocks


class Tracer(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def take(self) -> Any: ...
    def diff(self, before: Any, after: Any) -> list[Growth]: ...


class TracemallocTracer:
    """``tracemalloc`` with ``TRACE_FRAMES`` frames; ``take``/``diff`` are blocking (run them in a thread)."""

    def __init__(self, root: Path = PROJECT_ROOT, frames: int = TRACE_FRAMES) -> None:
        self.root, self.frames = root, frames
        self._started_here = False

    def start(self) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
            self._started_here = True

    def stop(self) -> None:
        if self._started_here and tracemalloc.is_tracing():
            tracemalloc.stop()
        self._started_here = False

    def take(self) -> Any:
        return tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")])

    def diff(self, before: Any, after: Any) -> list[Growth]:
        grown: dict[tuple[str, str], list[int]] = {}
        for stat in after.compare_to(before, "traceback"):
            if stat.size_diff <= 0:
                continue
            frames = list(stat.traceback)          # oldest first
            chosen = frames[-1]
            for frame in reversed(frames):         # the innermost frame in project code
                if component_of_path(frame.filename, self.root) not in ("python", "third-party"):
                    chosen = frame
                    break
            key = (component_of_path(chosen.filename, self.root), f"{short_path(chosen.filename, self.root)}:{chosen.lineno}")
            acc = grown.setdefault(key, [0, 0])
            acc[0] += stat.size_diff
            acc[1] += max(0, stat.count_diff)
        return sorted((Growth(c, s, v[0], v[1]) for (c, s), v in grown.items()), key=lambda g: -g.size)


# --- the leak report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LeakReport:
    at: float
    rate: float                          # bytes per minute (the baselines' slope)
    fit: float                           # R²
    by_component: dict[str, int]         # bytes grown during the diagnosis
    top: list[Growth]
    structures: dict[str, tuple[float, float]]   # registered cache/queue -> (size before, after), grown only

    @property
    def component(self) -> str:
        """The culprit: the component that grew most (``native`` when Python objects did not grow)."""
        if not self.by_component or max(self.by_component.values()) < MIB // 4:
            return "native"
        return max(self.by_component.items(), key=lambda kv: kv[1])[0]

    @property
    def source(self) -> str:
        own = [g for g in self.top if g.component == self.component]
        return own[0].source if own else "unknown"

    def describe(self) -> str:
        parts = [f"baseline +{self.rate / MIB:.1f} MiB/min (fit {self.fit:.2f}); culprit {self.component}"]
        comps = [(c, v) for c, v in sorted(self.by_component.items(), key=lambda kv: -kv[1])[:4] if v >= SHOWN]
        if comps:
            parts.append("by component: " + ", ".join(f"{c} +{v / MIB:.1f} MiB" for c, v in comps))
        top = [g for g in self.top[:TOP_SOURCES] if g.size >= SHOWN]
        if top:
            parts.append("top: " + ", ".join(f"{g.source} +{g.size / MIB:.1f} MiB" for g in top))
        if self.structures:
            parts.append("grew: " + ", ".join(f"{n} {a:,.0f} -> {b:,.0f}" for n, (a, b) in self.structures.items()))
        return "; ".join(parts)


def fit_quality(fit: TrendFit, ts: list[float], vs: list[float], trim: float = 0.1) -> float:
    """R² of the line (1 - residual / total sum of squares; 0 for a flat or noisy series), trimmed:
    the ``trim`` share of points farthest from the line (a lone spike) is left out."""
    pts = sorted(zip(ts, vs), key=lambda p: abs(p[1] - fit.at(p[0])))
    keep = pts[:max(3, len(pts) - int(len(pts) * trim))]
    mean = sum(v for _, v in keep) / len(keep)
    total = sum((v - mean) ** 2 for _, v in keep)
    if total <= 0:
        return 0.0
    resid = sum((v - fit.at(t)) ** 2 for t, v in keep)
    return max(0.0, 1.0 - resid / total)


def _sse(vs: list[float]) -> float:
    mean = sum(vs) / len(vs)
    return sum((v - mean) ** 2 for v in vs)


def _step_sse(vs: list[float]) -> float:
    """The least squared error of flat levels: two or three, split anywhere (at least 2 points
    each). A cache that filled once or twice fits it; a steady climb does not."""
    n, best = len(vs), math.inf
    for i in range(2, n - 1):
        left = _sse(vs[:i])
        best = min(best, left + _sse(vs[i:]))
        for j in range(i + 2, n - 1):
            best = min(best, left + _sse(vs[i:j]) + _sse(vs[j:]))
    return best


@dataclass
class _Diagnosis:
    started: float
    snapshot: Any                # the first snapshot (None while it is being taken)
    sizes: dict[str, float]
    rate: float
    fit: float


# --- the policy ----------------------------------------------------------------------------------
@dataclass
class MemoryPolicy:
    read: ReadMemory
    clock: Clock = SYSTEM_CLOCK
    reclaimers: Reclaimers = RECLAIMERS
    knobs: KnobRegistry | None = None
    params: MemoryParams = field(default_factory=MemoryParams)
    tracer: Tracer = field(default_factory=TracemallocTracer)
    collect: Callable[[], int] = field(default=lambda: gc.collect(1))
    #: whether the process is too busy for a leak diagnosis (tracemalloc slows allocation-heavy code 6-40x,
    #: ``bench/leak_detection.py --tracing-cost``): none starts while it is, and one in progress is
    #: abandoned (wired to load shedding's CPU)
    busy: Callable[[], bool] = field(default=lambda: False)

    def __post_init__(self) -> None:
        self.warn_share, self.critical_share = self.params.warn_share, self.params.critical_share
        self.baselines: deque[tuple[float, int]] = deque()
        self.rss: int | None = None
        self.limit: int | None = None
        self.state = "ok"                 # ok | spike | warn | critical
        self.leak: LeakReport | None = None
        self.leak_suspected = False
        self.cleanups = 0
        self.reclaimed = 0
        self._streak_warn = self._streak_crit = 0
        self._last_baseline_at: float | None = None
        self._last_cleanup_at: float | None = None
        self._last_adapt_at: float | None = None
        self._pressure = False
        self._sizes_ok: dict[str, float] = {}
        self._diagnosis: _Diagnosis | None = None
        self._last_diagnosis_at: float | None = None
        self._postponed = False           # a due diagnosis waits for a less busy process (logged once)
        self.reclaimers.on_reclaim(self._account)
        if self.knobs is not None:
            self._register_knobs(self.knobs)

    # -- knobs and accounting -------------------------------------------------------------------
    def _register_knobs(self, knobs: KnobRegistry) -> None:
        p = self.params

        def set_warn(v: float) -> None:
            self.warn_share = v

        def set_crit(v: float) -> None:
            self.critical_share = v

        knobs.register(Knob("memory_warn_share", "ratio", *p.warn_bounds, lambda: self.warn_share, set_warn,
                            help="memory share of the limit at which the policy cleans up (k samples in a row)"))
        knobs.register(Knob("memory_critical_share", "ratio", *p.critical_bounds, lambda: self.critical_share,
                            set_crit, help="memory share of the limit at which the full cleanup runs at once"))

    def close(self) -> None:
        """Stop listening to the reclaimers and stop a diagnosis in progress."""
        self.reclaimers.off_reclaim(self._account)
        if self._diagnosis is not None:
            self.tracer.stop()
            self._diagnosis = None

    def _account(self, report: ReclaimReport) -> None:
        self.cleanups += 1
        self._pressure = True
        self._last_cleanup_at = self.clock.time()
        if report.before is not None and report.after is not None:
            self.reclaimed += max(0, report.before - report.after)
        self._record(report.reason or "cleanup", detail=report.detail(),
                     before=report.before, after=report.after)

    def _record(self, reason: str, *, detail: str = "", before: float | None = None,
                after: float | None = None) -> None:
        if self.knobs is not None:
            self.knobs.record(Action(self.clock.time(), CONTROLLER, None, before, after, reason, detail=detail))

    def _set(self, name: str, value: float, reason: str) -> None:
        if self.knobs is not None:
            self.knobs.adjust(name, value, controller=CONTROLLER, reason=reason)
            return
        lo, hi = self.params.warn_bounds if name == "memory_warn_share" else self.params.critical_bounds
        v = min(hi, max(lo, value))
        if name == "memory_warn_share":
            self.warn_share = v
        else:
            self.critical_share = v

    # -- one sample -----------------------------------------------------------------------------
    async def tick(self) -> None:
        """One sample: baseline when due, act by pattern, look for a leak, adapt the thresholds."""
        p, now = self.params, self.clock.time()
        if self._diagnosis is not None and self.busy():
            self._abandon(now, "the process is busy (CPU over the load-shedding threshold)")
        if self._last_baseline_at is None or now - self._last_baseline_at >= p.baseline_s:
            await asyncio.to_thread(self.collect)
            rss, limit = await self.read()
            self._last_baseline_at = now
            self.baselines.append((now, rss))
            while self.baselines and self.baselines[0][0] < now - max(p.leak_window_s, p.adapt_s):
                self.baselines.popleft()
            await self._leak_check(now)
        else:
            rss, limit = await self.read()
        self.rss, self.limit = rss, limit
        if not limit:
            return
        share = rss / limit
        self._streak_crit = self._streak_crit + 1 if share > self.critical_share else 0
        self._streak_warn = self._streak_warn + 1 if share > self.warn_share else 0
        if share <= self.warn_share - 0.05:
            self._sizes_ok = self.reclaimers.sizes()
        if self._streak_crit >= p.k:
            self.state = "critical"
            if self._cooled(now):
                await self.reclaimers.reclaim(reason=f"memory {share:.0%} of the limit, over the critical "
                                                     f"{self.critical_share:.0%} for {self._streak_crit} samples")
        elif self._streak_warn >= p.k:
            self.state = "warn"
            await self._warn(now, share)
        elif self._streak_warn:
            self.state = "spike"          # wait and measure again
        else:
            self.state = "ok"
        if share > self.warn_share - 0.05:
            self._pressure = True
        self._adapt(now, share)

    def _cooled(self, now: float) -> bool:
        return self._last_cleanup_at is None or now - self._last_cleanup_at >= self.params.cleanup_cooldown_s

    async def _warn(self, now: float, share: float) -> None:
        why = f"memory {share:.0%} of the limit, over {self.warn_share:.0%} for {self._streak_warn} samples"
        if not self._cooled(now):
            return
        grown = self._grown()
        if grown:
            await self.reclaimers.reclaim(only=list(grown), reason=f"{why}; caches grew: " + ", ".join(
                f"{n} {a:,.0f} -> {b:,.0f}" for n, (a, b) in grown.items()))
            self._sizes_ok = self.reclaimers.sizes()
        elif self.leak_suspected:
            return          # diagnosing or diagnosed: a cleanup would not hold
        else:
            await self.reclaimers.reclaim(reason=why)

    def _grown(self) -> dict[str, tuple[float, float]]:
        now = self.reclaimers.sizes()
        clearable = {e.name for e in self.reclaimers.entries() if e.clear is not None}
        out = {}
        for name, size in now.items():
            was = self._sizes_ok.get(name, 0.0)
            if name in clearable and size >= was + 1 and size > was * (1 + self.params.cache_growth):
                out[name] = (was, size)
        return out

    # -- thresholds -----------------------------------------------------------------------------
    def _adapt(self, now: float, share: float) -> None:
        p = self.params
        if self._last_adapt_at is None:
            self._last_adapt_at = now
            return
        if now - self._last_adapt_at < p.adapt_s:
            return
        self._last_adapt_at = now
        pressure, self._pressure = self._pressure or self.leak_suspected, False
        if pressure:
            reason = "under pressure: " + ("a leak is suspected" if self.leak_suspected else
                                           f"a cleanup ran or usage came near the warning ({share:.0%} now)")
            self._set("memory_warn_share", self.warn_share - p.adapt_step, reason)
            self._set("memory_critical_share", self.critical_share - p.adapt_step / 2, reason)
        elif share < 0.5 and self._steady(now):
            reason = f"{1 - share:.0%} of the limit free and the baseline steady"
            self._set("memory_warn_share", self.warn_share + p.adapt_step, reason)
            self._set("memory_critical_share", self.critical_share + p.adapt_step / 2, reason)

    def _steady(self, now: float) -> bool:
        pts = [(t, v) for t, v in self.baselines if t >= now - self.params.adapt_s]
        if len(pts) < 3 or not self.limit:
            return False
        lo, hi = min(v for _, v in pts), max(v for _, v in pts)
        return hi - lo <= 0.02 * self.limit

    # -- leaks ----------------------------------------------------------------------------------
    def trend(self, now: float) -> tuple[float, float, float] | None:
        """(bytes per minute, fit, rise) of the baselines: the steepest window (the last
        ``leak_min_span_s``, 1.5x, 2x, ... up to ``leak_window_s``) that passes every gate, else the
        longest; None before ``leak_min_span_s`` of baselines. A climb that began mid-window is seen
        by the short windows. The fit counts as 0 for steps (two or three flat levels fit as well as
        the line) and for a rise under 4 robust sigmas of the residuals (noise)."""
        p = self.params
        if not self.baselines or self.baselines[-1][0] - self.baselines[0][0] < p.leak_min_span_s:
            return None
        spans, span = [], p.leak_min_span_s
        while span < p.leak_window_s:
            spans.append(span)
            span *= 1.5
        spans.append(p.leak_window_s)
        best: tuple[float, float, float] | None = None
        for span in reversed(spans):
            found = self._fit(now, span)
            if found is None:
                continue
            if best is None:
                best = found
            if self._passes(found):
                return found
        return best

    def _passes(self, trend: tuple[float, float, float]) -> bool:
        p = self.params
        return trend[0] >= p.leak_min_rate and trend[1] >= p.leak_min_fit and trend[2] >= p.leak_min_rise

    def _fit(self, now: float, span: float) -> tuple[float, float, float] | None:
        pts = [(t, v) for t, v in self.baselines if t >= now - span]
        if len(pts) < 5 or pts[-1][0] - pts[0][0] < min(span, self.params.leak_min_span_s) * 0.9:
            return None
        ts, vs = [float(t) for t, _ in pts], [float(v) for _, v in pts]
        fit = theil_sen(ts, vs)
        if fit is None:
            return None
        rate, rise = fit.slope * 60.0, fit.slope * (ts[-1] - ts[0])
        # well above the noise: the rise is at least 4 robust sigmas of the residuals
        resid = [v - fit.at(t) for t, v in zip(ts, vs)]
        med = statistics.median(resid)
        sigma = 1.4826 * statistics.median(abs(r - med) for r in resid)
        if rise < 4 * sigma:
            return rate, 0.0, rise
        # a climb, not steps: one or two jumps between flat levels (a cache filled once or twice) fit as well
        # (lone spikes, over 4 sigmas off the line, left out of both)
        kept = [(t, v) for (t, v), r in zip(zip(ts, vs), resid) if abs(r - med) <= 4 * sigma + 1.0]
        if _step_sse([v for _, v in kept]) <= sum((v - fit.at(t)) ** 2 for t, v in kept):
            return rate, 0.0, rise
        return rate, fit_quality(fit, ts, vs), rise

    async def _leak_check(self, now: float) -> None:
        p = self.params
        trend = self.trend(now)
        rising = trend is not None and self._passes(trend)
        if not rising:
            if self.leak_suspected and trend is not None:
                log.info("memory: the post-GC baseline no longer rises (%.2f MiB/min); leak suspicion over",
                         trend[0] / MIB)
                self._end_diagnosis()
                self.leak_suspected, self.leak = False, None
            return
        assert trend is not None
        rate, quality, rise = trend
        if not self.leak_suspected:
            self.leak_suspected = True
            log.warning("memory: the post-GC baseline rises %.1f MiB/min (fit %.2f, +%.1f MiB); "
                        "diagnosing with tracemalloc", rate / MIB, quality, rise / MIB)
        if self._diagnosis is None:
            due = self._last_diagnosis_at is None or now - self._last_diagnosis_at >= p.rediagnose_s
            if due and self.busy():
                if not self._postponed:
                    self._postponed = True
                    log.warning("memory: leak diagnosis postponed while the process is busy (tracemalloc "
                                "would slow it several times over)")
            elif due:
                self._postponed = False
                self._last_diagnosis_at = now   # a diagnosis that fails is not retried before rediagnose_s
                self.tracer.start()
                diagnosis = self._diagnosis = _Diagnosis(now, None, self.reclaimers.sizes(), rate, quality)
                try:
                    diagnosis.snapshot = await asyncio.to_thread(self.tracer.take)
                except BaseException as exc:    # cancelled (the job's budget) or failed: tracing stops
                    self._abandon(now, f"the first snapshot failed ({type(exc).__name__})")
                    raise
                self._record(f"post-GC baseline rising {rate / MIB:.1f} MiB/min (fit {quality:.2f})",
                             detail="tracemalloc on: leak diagnosis started")
            elif self.leak is not None:
                self.leak = LeakReport(self.leak.at, rate, quality, self.leak.by_component, self.leak.top,
                                       self.leak.structures)
            return
        d = self._diagnosis
        if now - d.started < p.diagnose_s:
            return
        try:
            after = await asyncio.to_thread(self.tracer.take)
        except BaseException as exc:
            self._abandon(now, f"the second snapshot failed ({type(exc).__name__})")
            raise
        self._end_diagnosis()       # tracing off before the diff: it would slow the diff (and all else) too
        self._last_diagnosis_at = now
        growth = await asyncio.to_thread(self.tracer.diff, d.snapshot, after)
        by_comp: dict[str, int] = {}
        for g in growth:
            by_comp[g.component] = by_comp.get(g.component, 0) + g.size
        sizes = self.reclaimers.sizes()
        structures = {n: (d.sizes.get(n, 0.0), v) for n, v in sizes.items() if v > d.sizes.get(n, 0.0)}
        self.leak = LeakReport(now, rate, quality, by_comp, growth[:TOP_SOURCES], structures)
        text = self.leak.describe()
        log.warning("memory leak suspected: %s", text)
        self._record(f"post-GC baseline rising {rate / MIB:.1f} MiB/min (fit {quality:.2f})",
                     detail=f"leak diagnosis: {text}")

    def _end_diagnosis(self) -> None:
        if self._diagnosis is not None:
            self.tracer.stop()
            self._diagnosis = None

    def _abandon(self, now: float, why: str) -> None:
        """Stop a diagnosis in progress without a verdict; the next one waits ``rediagnose_s``."""
        if self._diagnosis is None:
            return
        self._end_diagnosis()
        self._last_diagnosis_at = now
        log.warning("memory: leak diagnosis abandoned: %s; tracemalloc off, next try in %.0f min",
                    why, self.params.rediagnose_s / 60)
        self._record("leak diagnosis abandoned", detail=f"tracemalloc off: {why}")

    # -- wiring -----------------------------------------------------------------------------------
    def jobs(self) -> list[JobSpec]:
        return [JobSpec("recovery.memory", self.tick, interval_s=self.params.sample_s,
                        budget_s=max(30.0, self.params.sample_s * 3))]

    def samples(self) -> list[Sample]:
        out = [Sample(m.MEMORY_WARN_SHARE, self.warn_share), Sample(m.MEMORY_CRITICAL_SHARE, self.critical_share),
               Sample(m.MEMORY_CLEANUPS_TOTAL, float(self.cleanups)),
               Sample(m.MEMORY_RECLAIMED_BYTES_TOTAL, float(self.reclaimed)),
               Sample(m.MEMORY_LEAK_DIAGNOSING, 1.0 if self._diagnosis is not None else 0.0)]
        if self.baselines:
            out.append(Sample(m.MEMORY_BASELINE_BYTES, float(self.baselines[-1][1])))
        leak = self.leak if self.leak_suspected else None
        out.append(Sample(m.MEMORY_LEAK_BYTES_PER_MINUTE, leak.rate if leak is not None else 0.0))
        if leak is not None:
            out.append(Sample(m.MEMORY_LEAK_CULPRIT, float(leak.by_component.get(leak.component, 0)),
                              {"component": leak.component, "source": leak.source[-120:]}))
        entries = {e.name: e for e in self.reclaimers.entries()}
        for name, size in self.reclaimers.sizes().items():
            if math.isfinite(size):
                e = entries[name]
                out.append(Sample(m.MEMORY_STRUCTURE_SIZE, size, {"name": name, "component": e.component,
                                                                   "kind": e.kind}))
        return out

    def collector(self) -> MemoryPolicyCollector:
        return MemoryPolicyCollector(self)


class MemoryPolicyCollector:
    """Collector ``memory_policy``: the baseline, thresholds, cleanups and the leak verdict."""

    name = "memory_policy"

    def __init__(self, policy: MemoryPolicy) -> None:
        self.policy = policy

    async def collect(self, now: float) -> list[Sample]:
        return self.policy.samples()
