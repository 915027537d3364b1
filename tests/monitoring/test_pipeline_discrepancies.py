"""Batch vs per-token pool cross-check against the local market, on SQLite and PostgreSQL."""
from __future__ import annotations

import dataclasses

from monitoring import metric_names as m
from monitoring.collectors.pipeline import PipelineCollector
from monitoring.discrepancies import DiscrepancyStats, PoolVerifier, discrepancy_counts, verify_pools
from tests.monitoring.market_helpers import market_and_client, track


async def test_missing_extra_and_liquidity_mismatch_are_recorded(db, clock):
    now = clock.time()
    async with market_and_client(clock) as (market, client):
        mint = market.model.new_mint()
        pump = market.model.make_pair(mint, "pumpswap", "SOL", 5000)
        ray = market.model.make_pair(mint, "raydium", "SOL", 1000)
        met = market.model.make_pair(mint, "meteora", "USDC", 180)
        market.model.set_pairs(mint, [pump, ray, met])
        market.model.omit_from_batch(mint, met["pairAddress"])
        token_id = await track(db, mint, now)
        batch = (await client.fetch_batch([mint])).pairs_by_mint[mint]
        assert len(batch) == 2  # the batch endpoint missed the meteora pool
        # the batch's liquidity for raydium is 30 % high (> 20 %), pumpswap's 10 % (within), plus a ghost pool
        by_addr = {p.pair_address: p for p in batch}
        skewed = [
            dataclasses.replace(by_addr[ray["pairAddress"]], liquidity_usd=1300.0),
            dataclasses.replace(by_addr[pump["pairAddress"]], liquidity_usd=5500.0),
            dataclasses.replace(by_addr[pump["pairAddress"]], pair_address="Ghost111"),
        ]
        token = type("T", (), {"id": token_id, "mint": mint})()
        verifier = PoolVerifier(client, db, share=0.2, cooldown_s=600)
        report = await verifier.verify(token, skewed, now)
        again = await verifier.verify(token, skewed, now + 60)  # within the cooldown: no request
    assert again is None
    assert sorted((d.kind, d.pair_address, d.batch_value, d.single_value) for d in report.found) == sorted([
        ("missing_pool", met["pairAddress"], None, 180.0),
        ("extra_pool", "Ghost111", 5000.0, None),
        ("liquidity_mismatch", ray["pairAddress"], 1300.0, 1000.0),
    ])
    async with db.session() as s:
        stored = await discrepancy_counts(s, now + 1, 3600)
    assert stored == {"missing_pool": 1, "extra_pool": 1, "liquidity_mismatch": 1}
    assert verifier.stats.verifications == 1 and dict(verifier.stats.by_kind) == stored
    samples = await PipelineCollector(db, discrepancies=verifier.stats).collect(now)
    counted = {s.labels["kind"]: s.value for s in samples if s.name == m.POOL_DISCREPANCIES_TOTAL}
    assert counted == {"missing_pool": 1.0, "extra_pool": 1.0, "liquidity_mismatch": 1.0}


async def test_agreeing_endpoints_record_nothing_and_outage_is_counted(db, clock):
    now = clock.time()
    async with market_and_client(clock) as (market, client):
        mint = market.model.new_mint()
        market.model.set_pairs(mint, [market.model.make_pair(mint, "pumpswap", "SOL", 5000)])
        token_id = await track(db, mint, now)
        token = type("T", (), {"id": token_id, "mint": mint})()
        batch = (await client.fetch_batch([mint])).pairs_by_mint[mint]
        clean = await verify_pools(client, db, token, batch, now)
        await market.stop()
        stats = DiscrepancyStats()
        failed = await verify_pools(client, db, token, batch, now, stats=stats)
    assert clean.found == [] and clean.error is None
    assert failed.error and stats.errors == 1 and failed.found == []
    async with db.session() as s:
        assert await discrepancy_counts(s, now + 1, 3600) == {}


class _Tok:
    """What the processor hands a failure listener (a ``DueToken``): id, mint, status."""

    def __init__(self, token_id: int, mint: str, status: str = "monitoring") -> None:
        self.id, self.mint, self.status = token_id, mint, status


async def test_verifications_stay_within_a_small_share_of_the_request_budget(db, clock):
    from app.settings import Settings
    from tokens.activation import ActivationRules

    settings = Settings(_env_file=None)
    # defaults: 300/min x 0.97 headroom = 291/min; 3 % of it = 8.73 verifications/min, burst 3
    budget = settings.discrepancy_budget_share * settings.effective_api_rate_per_min
    assert budget < 0.05 * settings.api_rate_limit_per_min
    async with market_and_client(clock) as (market, client):
        mint = market.model.new_mint()
        market.model.set_pairs(mint, [market.model.make_pair(mint, "pumpswap", "SOL", 5000)])
        await track(db, mint, clock.time())
        batch = (await client.fetch_batch([mint])).pairs_by_mint[mint]
        verifier = PoolVerifier(client, db, budget_per_min=budget, clock=clock,
                                rules=ActivationRules.from_settings(settings))
        per_minute, priority_offers, next_id = [], 0, 1
        for _minute in range(5):
            start = market.stats.requests["token_pairs"]
            # a 30-mint batch every 0.2 s (the full rate), two distinct failing tokens offered per batch;
            # every 50th batch (6/min, under the budget) offers an active token that is being demoted
            for b in range(300):
                for k in range(2):
                    status = "active" if b % 50 == 0 and k == 0 else "monitoring"
                    priority_offers += status == "active"
                    await verifier.verify(_Tok(next_id, mint, status), batch, clock.time())
                    next_id += 1
                clock.advance(0.2)
            per_minute.append(market.stats.requests["token_pairs"] - start)
    # 3,000 failing tokens offered, yet at most 8.73/min (+ the burst of 3 once): <= 8.73 x 5 + 3 = 46 in 5 min
    assert sum(per_minute) <= budget * 5 + 3 and max(per_minute) <= budget + 3
    assert all(n >= 7 for n in per_minute)  # the budget is used, not starved
    assert verifier.stats.verifications == sum(per_minute)
    assert verifier.stats.skipped_budget == 3000 - sum(per_minute)
    # every active token (30 of them) was verified: ordinary failures always leave one request for them
    assert priority_offers == 30 and verifier.stats.priority == 30


def test_priority_cases_are_active_tokens_and_liquidity_near_misses():
    from tokens.activation import ActivationRules
    from tokens.pairs import parse_pair
    from tests.tokens.pairfactory import MINT, pair

    verifier = PoolVerifier(None, None, rules=ActivationRules(min_liquidity_usd=200.0), near_miss_share=0.5)
    pools = lambda liq: [parse_pair(pair()), parse_pair(pair("raydium", "SOL", liq))]  # noqa: E731
    fresh, active = _Tok(1, MINT), _Tok(2, MINT, "active")
    assert verifier.is_priority(fresh, pools(150.0)) and verifier.is_priority(fresh, pools(100.0))
    assert not verifier.is_priority(fresh, pools(99.0))  # far under the floor: a thin pool, not a near miss
    assert not verifier.is_priority(fresh, [parse_pair(pair())])  # no external pool at all
    assert verifier.is_priority(active, [parse_pair(pair())])


def test_budget_is_a_share_of_the_limiters_rate_and_follows_it(clock):
    from app.settings import Settings
    from tokens.ratelimit import RateLimiter

    settings = Settings(_env_file=None)
    client = type("Client", (), {"limiter": RateLimiter(settings.effective_api_rate_per_min, clock=clock)})()
    verifier = PoolVerifier.from_settings(client, None, settings, clock=clock)
    # 3 % of 291/min
    assert verifier.rate_per_min() == settings.discrepancy_budget_share * settings.effective_api_rate_per_min
    assert 8.0 < verifier.rate_per_min() < 9.0 and verifier.rules.min_liquidity_usd == 200.0
    client.limiter.set_rate_per_min(100.0)  # recovery slowed the client down: the cross-check slows too
    assert abs(verifier.rate_per_min() - 3.0) < 1e-9
