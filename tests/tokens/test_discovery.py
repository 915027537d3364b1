"""Discovery over the real websocket and the profiles endpoint of the local market."""
from __future__ import annotations

import asyncio
import json

from tokens import queries
from tokens.intake import TokenIntake, is_valid_mint
from tests.tokens.conftest import eventually

MINT_A = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
MINT_B = "9wFFyRfZBsuAha4YcuxcXLKwMxJR43S7fPfQLusDBzvT"


async def count_tokens(db) -> int:
    return sum((await db.run(queries.counts_by_status)).values())


async def test_migrations_become_tokens_and_garbage_and_duplicates_are_counted(db, market, make_pipeline):
    pipeline = await make_pipeline(listen=True)
    listener = pipeline.listener
    await eventually(lambda: market.stats.ws_subscribers == 1)

    await market.push_migration(MINT_A, name="<b>Cat</b> \u202e\U0001F431", symbol="CAT")
    await eventually(lambda: pipeline.counters.discovered == 1)
    t = await db.run(lambda s: queries.get_token(s, MINT_A))
    # HTML is kept (escaped at render time), the right-to-left override is cleaned away at the edge
    assert t.status == "monitoring" and t.name == "<b>Cat</b> \U0001F431" and t.source == "pumpportal"
    assert (await db.run(lambda s: queries.last_transitions(s, MINT_A)))[0].reason == "discovered"

    for raw in ("not json", "[1,2]", json.dumps({"txType": "migrate"}), json.dumps({"mint": "0xdeadbeef"}),
                json.dumps({"mint": None}), json.dumps({"mint": "O" * 44})):
        await market.push_migration("", raw=raw)
    await market.push_migration(MINT_A)
    await eventually(lambda: pipeline.counters.garbage == 6 and pipeline.counters.duplicates == 1)
    assert listener.confirmations == 1  # the subscription confirmation is not an event
    assert await count_tokens(db) == 1


async def test_listener_reconnects_after_the_market_drops_it(db, market, make_pipeline):
    pipeline = await make_pipeline(listen=True)
    listener = pipeline.listener
    await eventually(lambda: market.stats.ws_subscribers == 1)
    assert await market.disconnect_ws() == 1
    await eventually(lambda: listener.connects == 2 and market.stats.ws_subscribers == 1)
    assert listener.disconnects == 1 and listener.state == "connected"
    await market.push_migration(MINT_B)
    await eventually(lambda: pipeline.counters.discovered == 1)
    assert await db.run(lambda s: queries.get_token(s, MINT_B)) is not None


async def test_listener_keeps_retrying_while_the_market_refuses_connections(db, market, make_pipeline):
    await market.apply_faults({"outage": True, "outage_mode": "refuse"})
    pipeline = await make_pipeline(listen=True)
    await eventually(lambda: pipeline.listener.failed_attempts >= 2)
    assert pipeline.listener.state in ("connecting", "disconnected")
    await market.apply_faults({"outage": False})
    await eventually(lambda: pipeline.listener.state == "connected" and market.stats.ws_subscribers == 1)


async def test_profiles_poll_adds_solana_tokens_only(db, market, make_pipeline):
    mints = market.model.seed_tokens(5)
    pipeline = await make_pipeline(profiles_rate_limit_per_min=600)
    await pipeline.poll_profiles()
    assert pipeline.counters.discovered_by_source["dexscreener_profiles"] == 5
    assert await count_tokens(db) == 5
    await pipeline.poll_profiles()
    assert pipeline.counters.duplicates == 5 and await count_tokens(db) == 5
    assert {t.mint for t in await db.run(lambda s: queries.tokens_by_status(s, "monitoring"))} == set(mints)


async def test_racing_discoverers_insert_a_mint_once(db, clock):
    intakes = [TokenIntake(db, clock) for _ in range(4)]
    results = await asyncio.gather(*(i.add(MINT_A) for i in intakes for _ in range(3)))
    assert results.count(True) == 1
    assert sum(i.counters.duplicates for i in intakes) == 11
    assert len(await db.run(lambda s: queries.last_transitions(s, MINT_A))) == 1


def test_mint_validation() -> None:
    assert is_valid_mint(MINT_A) and is_valid_mint("1" * 32)
    for bad in (None, 42, "", "0" * 40, "l" * 40, "short", MINT_A + "x" * 10, MINT_A[:-1] + "\u202e"):
        assert not is_valid_mint(bad)
