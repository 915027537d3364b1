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
