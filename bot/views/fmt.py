"""Small formatting helpers shared by the views.

    fmt_duration(192.4)   # '3m 12s'
    fmt_when(1_700_000_030, now=1_700_000_000)   # 'in 30s'
"""
from __future__ import annotations

import math


def fmt_duration(seconds: float | None) -> str:
    """A short human duration; ``—`` for None or non-finite values."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = abs(seconds)
    if s < 10:
        return f"{s:.1f}s" if s % 1 else f"{int(s)}s"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    return f"{s // 86400}d {(s % 86400) // 3600:02d}h"


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
