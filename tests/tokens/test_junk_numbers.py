"""Absurd numbers from DexScreener never cost a batch its checks (review findings 1, 2, 7).

A pool whose trade counts are ~1.7e308, or whose liquidity is a 400-digit JSON integer, is
junk from one token: every token of the batch is still checked and written, and the junk
token itself gets an ordinary, successful check. A response nested deeper than the JSON
decoder can follow is a malformed body (retried, counted), never a crash.
"""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from tokens import queries
from tokens.api_stats import ApiStats
from tokens.dexscreener import DexScreenerClient, FetchError
from tokens.pairs import parse_pairs, to_count, to_float
from tokens.ratelimit import RateLimiter
from tests.tokens.pairfactory import MINT, pair


async def _check_all(db, market, make_pipeline, junk: dict) -> tuple[str, list[str]]:
    """Seed 5 well-formed tokens plus one with ``junk`` in its pool; run one processing pass."""
    good = market.model.seed_tokens(5)
    bad = MINT
    market.model.set_pairs(bad, [market.model.make_pair(bad, "pumpswap", "SOL", 5000.0, **junk)])
    pipeline = await make_pipeline()
    for mint in [*good, bad]:
        assert await pipeline.intake.add(mint)
    checked = await pipeline.processor.run_once()
    assert checked == 6  # the whole batch was written, junk or not
    return bad, good


@pytest.mark.parametrize("counts", [
    {"m5": {"buys": 1.7e308, "sells": 1.7e308}, "h1": {"buys": 1.7e308, "sells": 1}},
    {"m5": {"buys": 10**400, "sells": "1e308"}, "h1": {"buys": "9" * 500, "sells": 3}},
])
async def test_huge_trade_counts_do_not_sink_the_batch(db, market, make_pipeline, counts) -> None:
    bad, good = await _check_all(db, market, make_pipeline, {"txns": counts})
    for mint in [bad, *good]:
        token = await db.run(lambda s, m=mint: queries.get_token(s, m))
        assert token.check_count == 1 and token.consecutive_failures == 0, mint
    check = (await db.run(lambda s: queries.last_checks(s, bad, limit=1)))[0]
    assert check.ok and check.error is None and 0.0 <= check.score <= 100.0


async def test_a_400_digit_liquidity_is_unusable_not_fatal(db, market, make_pipeline) -> None:
    bad, good = await _check_all(db, market, make_pipeline,
                                 {"liquidity": {"usd": 10**400}, "fdv": -(10**400), "volume": {"m5": 10**400}})
    for mint in [bad, *good]:
        token = await db.run(lambda s, m=mint: queries.get_token(s, m))
        assert token.check_count == 1 and token.consecutive_failures == 0, mint
    check = (await db.run(lambda s: queries.last_checks(s, bad, limit=1)))[0]
    assert check.ok and check.pairs_count == 1  # the pool is still there, its liquidity unknown


def test_parsing_junk_numbers_gives_bounded_values() -> None:
    assert to_float(10**400) is None and to_float(-(10**400)) is None
    assert to_count(1.7e308) <= 10**15 and to_count("9" * 500) <= 10**15
    pairs, skipped = parse_pairs([pair(liq=10**400, txns={"m5": {"buys": 10**400, "sells": 2}})])
    assert not skipped and pairs[0].liquidity_usd is None and pairs[0].txns_in("m5").sells == 2


async def test_a_body_nested_too_deep_is_a_malformed_response() -> None:
    async def deep(request: web.Request) -> web.Response:
        return web.Response(text="[" * 200_000, content_type="application/json")

    app = web.Application()
    app.router.add_get("/tokens/v1/solana/{mints}", deep)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            stats = ApiStats()

            async def no_sleep(_: float) -> None:
                return None

            client = DexScreenerClient(f"http://127.0.0.1:{port}", session, RateLimiter(6000), stats, 2.0,
                                       max_retries=1, sleep=no_sleep)
            with pytest.raises(FetchError) as err:
                await client.fetch_batch([MINT])
        assert err.value.kind == "malformed_json"
        snap = stats.snapshot()["tokens_batch"]
        assert snap.requests == 2 and snap.errors == 2 and snap.last_error == "malformed_json"
    finally:
        await runner.cleanup()
