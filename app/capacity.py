"""How many tokens an API limit can keep checking on time: the one capacity formula.

One request checks up to ``batch`` (30) tokens, the client paces at ``limit x headroom``
requests per minute, so the pipeline can make ``limit x headroom x batch / 60`` checks a
second; a token checked every ``interval_s`` seconds needs ``1 / interval_s`` of them::

    tokens_served(300, 10.0)                    # 1455: every token hot (checked every 10 s)
    tokens_served(300, 45.0)                    # 6547: every token cold (every 45 s)
    tokens_served(3000, 45.0)                   # 65475
    demand_per_s(hot=500, cold=4000, hot_interval_s=10, cold_interval_s=45)   # 138.9 checks/s
    over_capacity(hot=500, cold=8000, api_rate_per_min=300, hot_interval_s=10, cold_interval_s=45)  # True

A mix of ``hot`` and ``cold`` tokens fits when ``hot / hot_interval + cold / cold_interval`` is at
most the checks a second the limit allows; beyond it every token's checks stretch (the backlog,
shown as "over capacity" by /status).
"""
from __future__ import annotations

import math

TOKENS_PER_REQUEST = 30  # DexScreener's /tokens/v1 takes up to 30 mints a request
DEFAULT_HEADROOM = 0.97  # API_RATE_HEADROOM's default


def checks_per_s(api_rate_per_min: float, *, headroom: float = DEFAULT_HEADROOM,
                 batch: int = TOKENS_PER_REQUEST) -> float:
    """Token checks a second the limit allows: ``limit x headroom x batch / 60``."""
    return max(0.0, api_rate_per_min) * headroom * batch / 60.0


def tokens_served(api_rate_per_min: float, interval_s: float, *, headroom: float = DEFAULT_HEADROOM,
                  batch: int = TOKENS_PER_REQUEST) -> int:
    """Tokens the limit keeps checked every ``interval_s`` seconds (rounded down)."""
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    return int(math.floor(checks_per_s(api_rate_per_min, headroom=headroom, batch=batch) * interval_s + 1e-9))


def demand_per_s(*, hot: int, cold: int, hot_interval_s: float, cold_interval_s: float) -> float:
    """Checks a second ``hot`` and ``cold`` tokens need at their nominal intervals."""
    return hot / hot_interval_s + cold / cold_interval_s


def over_capacity(*, hot: int, cold: int, api_rate_per_min: float, hot_interval_s: float, cold_interval_s: float,
                  headroom: float = DEFAULT_HEADROOM, batch: int = TOKENS_PER_REQUEST) -> bool:
    """True when the tracked tokens need more checks a second than the limit allows."""
    need = demand_per_s(hot=hot, cold=cold, hot_interval_s=hot_interval_s, cold_interval_s=cold_interval_s)
    return need > checks_per_s(api_rate_per_min, headroom=headroom, batch=batch)
