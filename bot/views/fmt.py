"""Small formatting helpers shared by the views.

    fmt_duration(192.4)   # '3m 12s'
    fmt_when(1_700_000_030, now=1_700_000_000)   # 'in 30s'
"""
from __future__ import annotations

import math

from app.durations import fmt_duration  # noqa: F401  (re-exported for the views)


def fmt_when(ts: float | None, now: float) -> str:
    """``in 30s`` / ``12s ago`` / ``now``; ``—`` for None."""
    if ts is None or not math.isfinite(ts):
        return "—"
    delta = ts - now
    if abs(delta) < 0.5:
        return "now"
    return f"in {fmt_duration(delta)}" if delta > 0 else f"{fmt_duration(-delta)} ago"


def fmt_rate(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"
