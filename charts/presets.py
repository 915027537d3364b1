"""The picture presets, declared once and registered in one place (``PRESETS``).

A preset is data, not code: panels of lines read from the metric store, threshold lines,
a trend projected to a limit, shaded spans. To add one, declare it and ``register`` it::

    register(Preset("db", "Database", "ping and pool", panels=(
        Panel("Ping", units.SECONDS, lines=(Line(m.DB_PING_SECONDS, "ping"),)),
    )))

Later work plugs in here: circuit-breaker shading on ``api`` is a ``Band`` with ``states``
over the breaker gauge (see ``Band``; ``BREAKER_STATES`` names the states and colours). ``kind="flow"`` presets are drawn as a flow diagram of token status changes instead of
time series (``charts.flow``); ``kind="alerts"`` as a timeline of incidents by rule from the alert
engine's history (``charts.alert_timeline``). Every ``kind="series"`` picture also shades the
range's incidents and maintenance windows on each panel.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from charts import units
from monitoring import metric_names as m


@dataclass(frozen=True)
class Line:
    """One series, or with ``family`` every label set containing those pairs (one line each;
    ``legend`` may name labels: ``"{endpoint} p95"``). ``counter`` draws the per-minute
    increase of a cumulative counter. ``scale`` multiplies values (0..1 shares -> percent)."""

    metric: str
    legend: str
    labels: Mapping[str, str] | None = None
    family: Mapping[str, str] | None = None
    scale: float = 1.0
    counter: bool = False


@dataclass(frozen=True)
class Level:
    """A horizontal line: a fixed ``value``, a setting's value, or the newest value of a
    ``metric`` -- times ``share`` (e.g. 80% of the memory limit)."""

    legend: str
    value: float | None = None
    setting: str | None = None
    metric: str | None = None
    share: float = 1.0


@dataclass(frozen=True)
class Band:
    """A source of shaded spans on a panel: the stretches where a series is in a state.

    By default a 0/1 series, shaded red where it is 1 (``STALLED``: pipeline stalled). With
    ``states`` a gauge of several states (value -> (state, colour)), each stretch shaded in its
    state's colour; the highest value of each rollup bucket counts (a breaker open for a few
    seconds of a minute shows). ``family`` shades every label set containing those pairs, and
    ``legend`` may name labels and ``{state}``; e.g. circuit breakers per endpoint::

        Band(m.CIRCUIT_STATE, "{endpoint} breaker {state}", family={},
             states={1: ("half-open", "tab:orange"), 2: ("open", "tab:red")})

    Each legend is drawn as one collection, however many spans it has.
    """

    metric: str
    legend: str
    labels: Mapping[str, str] | None = None
    family: Mapping[str, str] | None = None
    states: Mapping[float, tuple[str, str]] | None = None


@dataclass(frozen=True)
class Panel:
    """One chart of a preset. ``trend`` names the line (by legend) a Theil-Sen trend is fitted
    to; it is projected to ``limit`` when one is given."""

    title: str
    unit: str
    lines: tuple[Line, ...]
    stacked: bool = False
    thresholds: tuple[Level, ...] = ()
    trend: str | None = None
    limit: Level | None = None
    bands: tuple[Band, ...] = ()


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    panels: tuple[Panel, ...] = ()
    kind: Literal["series", "flow", "alerts"] = "series"
    metrics: tuple[str, ...] = field(default=())  # for kind="flow": the store series it also reads


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    """Add ``preset`` to the registry (``/graph``'s buttons and help list them in order)."""
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} is registered twice")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset | None:
    return PRESETS.get(name.strip().lower())


STALLED = Band(m.PIPELINE_STALLED, "pipeline stalled")
#: A circuit breaker's gauge: 0 closed (not shaded), 1 half-open, 2 open.
BREAKER_STATES: Mapping[float, tuple[str, str]] = {1.0: ("half-open", "tab:orange"), 2.0: ("open", "tab:red")}


def breaker_band(metric: str) -> Band:
    """The breaker states of every endpoint as shading (``api`` takes it once the gauge exists:
    ``bands=(breaker_band(m.CIRCUIT_STATE),)`` on its panels)."""
    return Band(metric, "{endpoint} breaker {state}", family={}, states=BREAKER_STATES)

register(Preset("processing", "Processing", "checks per minute, backlog, lag p95", panels=(
    Panel("Checks per minute by status", units.PER_MINUTE,
          lines=(Line(m.CHECKS_PER_MINUTE, "{status}", family={}),), bands=(STALLED,)),
    Panel("Backlog: tokens due now", units.COUNT,
          lines=(Line(m.DUE_TOKENS, "due {band}", family={}),
                 Line(m.OVERDUE_TOKENS, "overdue {band}", family={})),
          trend="due hot", limit=Level("backlog limit", setting="graph_backlog_limit")),
    Panel("Processing lag p95", units.SECONDS,
          lines=(Line(m.PROCESSING_LAG_SECONDS, "hot p95", labels={"band": "hot", "quantile": "0.95"}),
                 Line(m.PROCESSING_LAG_SECONDS, "cold p95", labels={"band": "cold", "quantile": "0.95"}))),
)))

register(Preset("activation", "Activation", "success rate, time to activation, status changes by reason", panels=(
    Panel("Activation success rate", units.PERCENT,
          lines=(Line(m.ACTIVATION_SUCCESS_RATE, "tokens activated", scale=100.0),
                 Line(m.ACTIVATION_CHECK_PASS_RATE, "checks passed", scale=100.0))),
    Panel("Time to activation", units.SECONDS,
          lines=(Line(m.TIME_TO_ACTIVATION_SECONDS, "p50", labels={"quantile": "0.5"}),
                 Line(m.TIME_TO_ACTIVATION_SECONDS, "p95", labels={"quantile": "0.95"}))),
    Panel("Status changes by reason (per minute)", units.PER_MINUTE, stacked=True,
          lines=(Line(m.PIPELINE_TRANSITIONS_TOTAL, "{reason}", family={}, counter=True),)),
)))

register(Preset("health", "Health", "memory against its limit, CPU, event-loop lag", panels=(
    Panel("Memory (resident)", units.BYTES,
          lines=(Line(m.PROCESS_RESIDENT_BYTES, "RSS"),),
          thresholds=(Level("80% of limit", metric=m.PROCESS_MEMORY_LIMIT_BYTES, share=0.8),
                      Level("90% of limit", metric=m.PROCESS_MEMORY_LIMIT_BYTES, share=0.9)),
          trend="RSS", limit=Level("effective limit", metric=m.PROCESS_MEMORY_LIMIT_BYTES)),
    Panel("CPU (share of effective cores)", units.PERCENT,
          lines=(Line(m.PROCESS_CPU_SHARE, "CPU", scale=100.0),),
          thresholds=(Level("100%", value=100.0),)),
    Panel("Event-loop lag", units.SECONDS,
          lines=(Line(m.LOOP_LAG_P95_SECONDS, "p95"), Line(m.LOOP_LAG_MAX_SECONDS, "max")),
          thresholds=(Level("100 ms", value=0.1),)),
)))

register(Preset("api", "External API", "latency p50/p95/p99, errors and 429s per endpoint, breaker states shaded",
                panels=(
    Panel("Latency by endpoint", units.SECONDS,
          lines=(Line(m.API_LATENCY_P50_SECONDS, "{endpoint} p50", family={}),
                 Line(m.API_LATENCY_P95_SECONDS, "{endpoint} p95", family={}),
                 Line(m.API_LATENCY_P99_SECONDS, "{endpoint} p99", family={})),
          bands=(breaker_band(m.CIRCUIT_STATE),)),
    Panel("Error rate", units.PERCENT,
          lines=(Line(m.API_ERROR_RATE, "{endpoint}", family={}, scale=100.0),),
          bands=(breaker_band(m.CIRCUIT_STATE),)),
    Panel("429s and timeouts in the window", units.COUNT,
          lines=(Line(m.API_WINDOW_RATE_LIMITED, "{endpoint} 429", family={}),
                 Line(m.API_WINDOW_TIMEOUTS, "{endpoint} timeouts", family={})),
          bands=(breaker_band(m.CIRCUIT_STATE),)),
)))

register(Preset("alerts", "Alerts", "incidents by rule, acknowledgments, maintenance windows", kind="alerts"))

register(Preset("flow", "Token flow", "how tokens moved between monitoring, active and archived",
                kind="flow", metrics=(m.TOKENS,)))


# --- ad-hoc presets for one metric name ----------------------------------------------------
def _unit_for(name: str) -> tuple[str, float]:
    if name.endswith("_bytes"):
        return units.BYTES, 1.0
    if name.endswith("_seconds") and "timestamp" not in name:
        return units.SECONDS, 1.0
    if name.endswith(("_share", "_rate")):
        return units.PERCENT, 100.0
    if name.endswith("_per_minute") or name.endswith("_total"):
        return units.PER_MINUTE, 1.0
    if name.endswith("_percent"):
        return units.PERCENT, 1.0
    return units.COUNT, 1.0


def metric_preset(name: str) -> Preset | None:
    """A one-panel preset for the metric ``name`` (with or without the ``tokenwatch_`` prefix),
    every label set as its own line; None when no such metric is defined."""
    full = name if name.startswith(m.PREFIX) else m.PREFIX + name
    info = m.METRICS.get(full)
    if info is None:
        return None
    unit, scale = _unit_for(full)
    counter = info.kind == "counter"
    title = info.help.split(" {")[0] + (" (per minute)" if counter else "")
    return Preset(full, full, info.help, panels=(
        Panel(title, unit, lines=(Line(full, "{*}", family={}, scale=scale, counter=counter),)),))


def closest_names(name: str, n: int = 5) -> list[str]:
    """Preset and metric names closest to ``name`` (for "unknown metric" answers)."""
    bare = name.strip().lower().removeprefix(m.PREFIX)
    candidates = {p: p for p in PRESETS} | {k.removeprefix(m.PREFIX): k for k in m.METRICS}
    found = difflib.get_close_matches(bare, list(candidates), n=n, cutoff=0.5)
    if len(found) < n:  # a fragment ("memory") matches by substring too
        found += [c for c in sorted(candidates) if bare and bare in c and c not in found][: n - len(found)]
    return [candidates[f] for f in found]
