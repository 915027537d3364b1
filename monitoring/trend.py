"""A robust trend: the Theil-Sen slope (the median of pairwise slopes), its forecast and
when it reaches a limit. One outlier spike does not tilt it, unlike least squares. The one
implementation: /graph's trend lines (``charts/data.py``) and the alert rules' exhaustion
forecasts (``alerts/evaluate.py``) both use it.

    fit = theil_sen([0, 60, 120, 180], [10, 12, 50, 16])    # slope 0.0333/s despite the 50
    fit.at(240)                                             # forecast value at t=240
    time_to_reach(fit, now=180, current=16, limit=100)      # seconds until 100, or None
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

#: Pairwise slopes grow as n²; above this many points the series is thinned evenly first.
MAX_POINTS = 400


@dataclass(frozen=True, slots=True)
class TrendFit:
    slope: float      # units per second
    intercept: float  # value at t = 0 (``t0`` relative)
    t0: float

    def at(self, ts: float) -> float:
        return self.intercept + self.slope * (ts - self.t0)


def _thin(ts: list[float], values: list[float], limit: int) -> tuple[list[float], list[float]]:
    if len(ts) <= limit:
        return ts, values
    step = len(ts) / limit
    idx = sorted({min(len(ts) - 1, int(i * step)) for i in range(limit)} | {len(ts) - 1})
    return [ts[i] for i in idx], [values[i] for i in idx]


def theil_sen(ts: list[float], values: list[float], *, max_points: int = MAX_POINTS) -> TrendFit | None:
    """The Theil-Sen line through the points, or None with fewer than 3 distinct times.
    Longer series are thinned evenly to ``max_points`` first (the cost grows as n²)."""
    pts = [(t, v) for t, v in zip(ts, values) if math.isfinite(t) and math.isfinite(v)]
    if len(pts) < 3:
        return None
    xs, ys = _thin([p[0] for p in pts], [p[1] for p in pts], max(3, max_points))
    t0 = xs[0]
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs)) for j in range(i + 1, len(xs)) if xs[j] != xs[i]
    ]
    if not slopes:
        return None
    slope = statistics.median(slopes)
    intercept = statistics.median(y - slope * (x - t0) for x, y in zip(xs, ys))
    return TrendFit(slope, intercept, t0)


def time_to_reach(fit: TrendFit | None, *, now: float, current: float, limit: float) -> float | None:
    """Seconds from ``now`` until the trend reaches ``limit`` (0 when already there), or None
    when the trend is flat or heads away from it."""
    if fit is None or not math.isfinite(limit):
        return None
    if current >= limit:
        return 0.0
    if fit.slope <= 0:
        return None
    at_now = fit.at(now)
    seconds = (limit - at_now) / fit.slope
    return max(0.0, seconds)
