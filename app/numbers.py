"""Numbers from untrusted places (API payloads, JSON stored in the database, stats objects).

    finite_float("1.5")     # 1.5
    finite_float(10**400)   # None (too large for a float)
    finite_float(True)      # None (a bool is not a number here)
    finite_float("nan")     # None
"""
from __future__ import annotations

import math


def finite_float(value: object) -> float | None:
    """A finite float from a number or numeric string, else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return out if math.isfinite(out) else None
