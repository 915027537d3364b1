"""Units of the pictures and one way to print a value in each.

    fmt_value(3.5e8, "bytes")   # '334 MiB'
    fmt_value(0.042, "s")       # '42 ms'
"""
from __future__ import annotations

import math

BYTES = "bytes"
SECONDS = "s"
PERCENT = "%"
PER_MINUTE = "/min"
COUNT = ""

_BINARY = (("GiB", 1024.0 ** 3), ("MiB", 1024.0 ** 2), ("KiB", 1024.0))


def fmt_value(value: float | None, unit: str) -> str:
    """``value`` (already scaled to ``unit``) as short, readable text."""
    if value is None or not math.isfinite(value):
        return "—"
    if unit == BYTES:
        for name, size in _BINARY:
            if abs(value) >= size:
                return f"{value / size:.3g} {name}"
        return f"{value:.0f} B"
    if unit == SECONDS:
        if abs(value) < 1.0:
            return f"{value * 1000:.3g} ms"
        if abs(value) < 120:
            return f"{value:.3g} s"
        if abs(value) < 7200:
            return f"{value / 60:.3g} min"
        return f"{value / 3600:.3g} h"
    if unit == PERCENT:
        return f"{value:.3g}%"
    if float(value).is_integer() or abs(value) >= 1000:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text}{unit if unit.startswith('/') else (' ' + unit if unit else '')}"


def fmt_eta(seconds: float) -> str:
    """A time ahead: '40 min', '5.2 h', '3.1 d'."""
    if seconds < 3600:
        return f"{max(1.0, seconds / 60):.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def axis_scale(unit: str, top: float) -> tuple[float, str]:
    """(divisor, axis label) so an axis reaching ``top`` gets round ticks in a readable unit:
    ``axis_scale("s", 400)`` -> ``(60.0, "minutes")``; values are divided by the divisor."""
    if unit == BYTES:
        for name, size in _BINARY:
            if top >= size:
                return size, name
        return 1.0, "bytes"
    if unit == SECONDS:
        if top < 1.0:
            return 0.001, "milliseconds"
        if top < 120:
            return 1.0, "seconds"
        if top < 7200:
            return 60.0, "minutes"
        return 3600.0, "hours"
    return 1.0, {PERCENT: "%", PER_MINUTE: "per minute"}.get(unit, unit)
