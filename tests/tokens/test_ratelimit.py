"""The limiter paces smoothly, honours pauses, and keeps the real market happy."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.clock import ManualClock
from app.db import Database
from app.settings import Settings
from simulator.server import LocalMarket
from tokens.pipeline import Pipeline
from tokens.ratelimit import RateLimiter
from tokens.repository import insert_token


def fake_time() -> tuple[ManualClock, list[float], Callable[[float], Awaitable[None]]]:
    clock = ManualClock(0.0)
    sent: list[float] = []

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return clock, sent, sleep


async def test_no_burst_of_the_whole_minute_and_no_window_over_the_limit() -> None:
    clock, sent, sleep = fake_time()
    limiter = RateLimiter(120, burst=3, clock=clock, sleep=sleep)
    for _ in range(600):
        await limiter.acquire()
        sent.append(clock.monotonic())
    assert sum(1 for t in sent if t < 1.0) <= 3 + 2  # 2/s plus the small burst, not 120 at once
    for i, start in enumerate(sent):
        in_window = sum(1 for t in sent[i:] if t < start + 60.0)
        assert in_window <= 120 + 3


async def test_pause_holds_every_request_until_retry_after() -> None:
    clock, sent, sleep = fake_time()
    limiter = RateLimiter(600, burst=2, clock=clock, sleep=sleep)
    await limiter.acquire()
    limiter.pause_for(5.0)
    await limiter.acquire()
    assert clock.monotonic() >= 5.0
    # after the pause the pace resumes smoothly, without a burst of the backlog
    times = []
    for _ in range(5):
        await limiter.acquire()
        times.append(clock.monotonic())
    assert times[-1] - 5.0 >= 4 * 0.1 - 1e-9


async def test_pipeline_stays_under_the_markets_limit(sqlite_db: Database) -> None:
    # A 5 s window with 30 requests (360/min) keeps the test short; the client runs at 85% of it,
    # so its 4 s run sends at most 3 + 5.1 x 4 = 23 requests, well under 30 however they bunch up
    # on a loaded machine, while an unpaced client would send all 80 batches at once (and get 429s).
    async with LocalMarket(seed=3, autostart_flow=False, rate_limit_per_min=30, window_s=5.0) as market:
        mints = market.model.seed_tokens(400)
        now = market.clock.time()

        async def seed(session):
            for mint in mints:
                await insert_token(session, mint, now=now)

        await sqlite_db.run(seed)
        settings = Settings(_env_file=None, api_rate_limit_per_min=360, api_rate_headroom=0.85, batch_size=5,
                            process_interval_s=5.0)
        async with Pipeline(settings, sqlite_db, dexscreener_base_url=market.dexscreener_base_url,
                            listen=False, run_budget_s=4.0) as pipeline:
            assert pipeline.processor is not None
            checked = await pipeline.processor.run_once()
        assert checked > 0
        assert market.stats.served_429 == 0
        assert market.stats.max_in_window <= 30
        assert pipeline.api_stats.snapshot()["tokens_batch"].rate_limited == 0
