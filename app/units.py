"""Values as operators read them, in the unit a rule or a knob declares (``Rule.unit``, ``Knob.unit``), as plain text.

    fmt_unit(3.5e8, "bytes")    # '334 MiB'
    fmt_unit(2.7, "s")          # '2.7s'      (durations through app.durations.fmt_duration)
    fmt_unit(0.42, "ratio")     # '42%'
    fmt_unit(87.0, "percent")   # '87%'
    fmt_unit(1234, "count")     # '1,234'
    fmt_unit(12.5, "per_min")   # '12.5/min'
    fmt_unit(None, "s")         # '—'
"""
from __future__ import annotations

import math

from app.durations import fmt_duration

_BINARY = (("GiB", 1024.0 ** 3), ("MiB", 1024.0 ** 2), ("KiB", 1024.0))


def _num(value: float) -> str:
    if float(value).is_integer() or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_unit(value: float | None, unit: str) -> str:
    """``value`` as short text in ``unit`` (``""``, ``s``, ``bytes``, ``ratio``, ``percent``,
    ``count``, ``per_min``); ``—`` for None or a non-finite value."""
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "bytes":
        for name, size in _BINARY:
            if abs(value) >= size:
                return f"{value / size:.3g} {name}"
        return f"{value:.0f} B"
    if unit == "s":
        if abs(value) < 1.0 and value != 0:
            return f"{value * 1000:.3g} ms"
        return fmt_duration(value)
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "percent":
        return f"{value:.3g}%"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "per_min":
        return f"{_num(value)}/min"
    return _num(value)
