"""The time ranges a picture can cover; the metric store picks the rollup for each span
(``MetricStore.pick_resolution``: 1h from raw samples, 6h and 24h from 1-minute rollups,
7d from 1-hour rollups with the default retention).

    RANGES["6h"]       # 21600.0
    parse_range("24H") # '24h'
"""
from __future__ import annotations

RANGES: dict[str, float] = {"1h": 3600.0, "6h": 6 * 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
DEFAULT_RANGE = "6h"


def parse_range(text: str | None) -> str | None:
    """A range name ('1h', '6h', '24h', '7d', any case), or None when ``text`` is not one."""
    if not text:
        return None
    key = text.strip().lower()
    return key if key in RANGES else None
