"""A local market and a real DexScreener client pointed at it, for monitoring tests."""
from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp

from simulator.server import LocalMarket
from tokens.api_stats import ApiStats
from tokens.dexscreener import DexScreenerClient
from tokens.ratelimit import RateLimiter
from tokens.repository import insert_token


@asynccontextmanager
async def market_and_client(clock):
    async with LocalMarket(seed=7, autostart_flow=False, clock=clock, rate_limit_per_min=10_000) as market:
        async with aiohttp.ClientSession() as http:
            client = DexScreenerClient(market.dexscreener_base_url, http, RateLimiter(60_000, burst=50),
                                       ApiStats(), timeout_s=5.0, clock=clock, max_retries=0)
            yield market, client


async def track(db, mint: str, now: float) -> int:
    """Insert ``mint`` as a monitored token; returns its id."""

    async def _insert(session):
        return await insert_token(session, mint, now=now, name="Test", symbol="TST")

    return await db.run(_insert)
