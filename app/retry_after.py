"""Reading ``Retry-After`` (RFC 9110 section 10.2.3) in both its forms.

    parse_retry_after("120")                                   # 120.0 seconds
    parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now)    # seconds from ``now`` to that date
    parse_retry_after(None)                                    # the default
    parse_retry_after("soon")                                  # the default: junk never raises

The result is clamped to ``[0, maximum]`` so a hostile or broken server cannot park a
client for days.
"""
from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

DEFAULT_RETRY_AFTER_S = 5.0
MAX_RETRY_AFTER_S = 300.0


def parse_retry_after(value: str | None, now: float | None = None, *, default: float = DEFAULT_RETRY_AFTER_S,
                      maximum: float = MAX_RETRY_AFTER_S) -> float:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date (``now``: epoch seconds)."""
    if value is None:
        return default
    text = value.strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return default
        if when is None:
            return default
        if when.tzinfo is None:  # an HTTP date is always GMT
            from datetime import timezone

            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return default
    return min(max(0.0, seconds), maximum)
