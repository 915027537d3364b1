"""A hanging market costs one timeout per request, and a run never waits for a hanging batch:
it ends within its budget, the hanging batch finishes in the background with its tokens still
leased, and other tokens keep getting checked (local market's hang fault, real database)."""
from __future__ import annotations

import aiohttp
import pytest

from tests.tokens.conftest import eventually
from tokens import queries
from tokens.api_stats import ApiStats
from tokens.dexscreener import DexScreenerClient, FetchError
from tokens.models import MONITORING
from tokens.ratelimit import RateLimiter


async def test_a_hanging_request_costs_one_timeout_not_one_per_retry(market) -> None:
    mints = market.model.seed_tokens(2)
    market.faults.set(hang_rate=1.0)
    async with aiohttp.ClientSession() as session:
        stats = ApiStats()
        client = DexScreenerClient(market.dexscreener_base_url, session, RateLimiter(6000), stats, 0.2,
                                   max_retries=3, retry_base_s=0.01, retry_max_s=0.02)
        with pytest.raises(FetchError) as err:
            await client.fetch_batch(mints)
    assert err.value.kind == "timeout"
    assert stats.snapshot()["tokens_batch"].timeouts == 1 and stats.snapshot()["tokens_batch"].requests == 1


async def test_server_errors_are_still_retried(market) -> None:
    mints = market.model.seed_tokens(1)
    market.faults.set(error_rate=1.0, error_codes=[503])
    async with aiohttp.ClientSession() as session:
        stats = ApiStats()
        client = DexScreenerClient(market.dexscreener_base_url, session, RateLimiter(6000), stats, 2.0,
                                   max_retries=2, retry_base_s=0.01, retry_max_s=0.02)
        with pytest.raises(FetchError):
            await client.fetch_batch(mints)
    assert stats.snapshot()["tokens_batch"].requests == 3


async def _seed(pipeline, market, n: int) -> list[str]:
    mints = market.model.seed_tokens(n)
    for mint in mints:
        assert await pipeline.intake.add(mint, source="test")
    return mints


async def test_runs_end_on_time_while_a_batch_hangs_and_other_tokens_get_checked(db, market, make_pipeline) -> None:
    # two slots: the hanging batch keeps one (it is in flight), the other slot goes on checking
    pipeline = await make_pipeline(batch_size=5, fetch_concurrency=2)
    processor = pipeline.processor
    pipeline.client.set_timeout_s("tokens_batch", 3.0)  # the two short runs below end long before it
    mints = await _seed(pipeline, market, 10)

    market.faults.set(hang_rate=1.0)
    processor.set_limit(1)
    processor.run_budget_s = 0.2
    assert await processor.run_once() == 0  # returned at its deadline, not after the timeout
    assert processor.batches_in_flight == 1 and len(processor.inflight_ids) == 5
    hanging = set(processor.inflight_ids)
    assert await processor.run_once() == 0  # the one slot is held by the hanging batch: nothing more is sent
    assert processor.batches_in_flight == 1 and processor.inflight_ids == hanging
    processor.set_limit(2)

    market.faults.reset()
    processor.run_budget_s = 30.0  # ends as soon as nothing is due
    assert await processor.run_once() == 5  # the other five; the hanging five are not claimed twice
    assert processor.inflight_ids <= hanging  # still hanging, or (on a slow machine) already timed out

    await eventually(lambda: processor.batches_in_flight == 0, timeout_s=20)
    assert not processor.inflight_ids
    assert pipeline.counters.checks == 10 and pipeline.counters.check_failures == 5
    assert pipeline.stage_stats.snapshot()["fetch"].count == 10
    assert pipeline.api_stats.snapshot()["tokens_batch"].timeouts == 1
    failed = 0
    for mint in mints:
        checks = await db.run(lambda s, mint=mint: queries.last_checks(s, mint))
        assert len(checks) == 1  # every token checked exactly once
        if not checks[0].ok:
            failed += 1
            assert "timeout" in checks[0].error
    assert failed == 5


async def test_stopping_cancels_a_hanging_batch_and_loses_no_token(db, market, make_pipeline) -> None:
    pipeline = await make_pipeline(batch_size=5, fetch_concurrency=1)
    pipeline.client.set_timeout_s("tokens_batch", 60.0)
    mints = await _seed(pipeline, market, 3)
    market.faults.set(hang_rate=1.0)
    pipeline.processor.run_budget_s = 0.2
    assert await pipeline.processor.run_once() == 0
    assert pipeline.processor.batches_in_flight == 1

    await pipeline.processor.close()
    assert pipeline.processor.batches_in_flight == 0 and not pipeline.processor.inflight_ids
    for mint in mints:
        tok = await db.run(lambda s, mint=mint: queries.get_token(s, mint))
        assert tok.status == MONITORING and tok.next_check_at is not None  # checked again once the lease ends
