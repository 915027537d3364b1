"""Durations as operators type and read them: one parser, one formatter.

    parse_duration("30m")      # 1800.0
    parse_duration("1h30m")    # 5400.0
    parse_duration("forever")  # raises ValueError: 'forever' is not a duration; write it like 30m, 2h or 1d
    fmt_duration(192.4)        # '3m 12s'
"""
from __future__ import annotations

import math
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
EXAMPLE = "30m, 2h or 1d"


def parse_duration(text: str, *, min_s: float = 1.0, max_s: float | None = None) -> float:
    """Seconds in ``text`` (``45s``, ``30m``, ``2h``, ``1d``, ``1h30m``; a bare number is seconds).

    Raises ``ValueError`` with a one-line explanation and an example when ``text`` is not a
    duration or falls outside ``[min_s, max_s]``.
    """
    raw = (text or "").strip().lower()
    shown = raw[:20]
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        seconds = float(raw)
    else:
        pos, seconds = 0, 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if not raw or pos != len(raw):
            raise ValueError(f"{shown!r} is not a duration; write it like {EXAMPLE}")
    if not math.isfinite(seconds) or seconds < min_s:
        raise ValueError(f"{shown!r} is too short; at least {fmt_duration(min_s)}")
    if max_s is not None and seconds > max_s:
        raise ValueError(f"{shown!r} is too long; at most {fmt_duration(max_s)}")
    return seconds


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
