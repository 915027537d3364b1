"""Sparklines drawn in characters, for text messages (the /dashboard).

    sparkline([1, 2, 3, 5, 8])        # '▁▂▃▅█'
    sparkline([4, 4, 4])              # '▄▄▄' (flat)
"""
from __future__ import annotations

import math

BARS = "▁▂▃▄▅▆▇█"


def _resample(values: list[float], width: int) -> list[float]:
    """Averages of ``width`` equal slices (or the values themselves when fewer)."""
    if len(values) <= width:
        return values
    out = []
    for i in range(width):
        lo, hi = i * len(values) // width, (i + 1) * len(values) // width
        chunk = values[lo:max(hi, lo + 1)]
        out.append(sum(chunk) / len(chunk))
    return out


def sparkline(values: list[float], width: int = 16) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    points = _resample(finite, width)
    lo, hi = min(points), max(points)
    if hi - lo < 1e-12:
        return BARS[3] * len(points)
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / (hi - lo) * (len(BARS) - 1) + 0.5))] for v in points)
