"""Discovery survives hostile input and a failing database (review findings 7, 8, 9).

- a websocket frame nested deeper than the JSON decoder follows is garbage, counted, and the
  connection stays up: the next migration is still discovered;
- a mint with a trailing newline (or any other extra character) is rejected and counted;
- a database error on one profile address does not lose the rest of the poll, and the
  address that failed is stored on the next poll.
"""
from __future__ import annotations

import json

from tokens import queries
from tokens.discovery_profiles import ProfilesPoller
from tokens.discovery_ws import MigrationListener
from tokens.intake import TokenIntake, is_valid_mint
from tests.tokens.conftest import eventually
from tests.tokens.pairfactory import MINT


async def test_a_deeply_nested_frame_is_garbage_and_the_connection_stays(db, market, make_pipeline) -> None:
    pipeline = await make_pipeline(listen=True)
    listener = pipeline.listener
    await eventually(lambda: market.stats.ws_subscribers == 1)
    await market.push_migration("", raw="[" * 200_000)
    await market.push_migration("", raw='{"mint": ' + "[" * 200_000)
    await eventually(lambda: pipeline.counters.garbage == 2)
    await market.push_migration(MINT)
    await eventually(lambda: pipeline.counters.discovered == 1)
    assert listener.connects == 1 and listener.disconnects == 0 and listener.state == "connected"
    assert await db.run(lambda s: queries.get_token(s, MINT)) is not None


async def test_a_mint_with_a_trailing_newline_is_rejected_and_counted(sqlite_db, clock) -> None:
    listener = MigrationListener("ws://unused", None, TokenIntake(sqlite_db, clock))  # type: ignore[arg-type]
    for bad in (MINT + "\n", "\n" + MINT, MINT + "\r\n", MINT + " "):
        assert not is_valid_mint(bad)
        await listener.handle_text(json.dumps({"mint": bad, "txType": "migrate"}))
    assert listener.counters.garbage == 4 and listener.counters.discovered == 0
    assert sum((await sqlite_db.run(queries.counts_by_status)).values()) == 0
    assert is_valid_mint(MINT)


class FailingIntake(TokenIntake):
    """Database errors for the addresses in ``broken`` (like a row-level or connection fault)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.broken: set[str] = set()

    async def add(self, mint, **kwargs):  # type: ignore[override]
        if mint in self.broken:
            raise ConnectionError("database is down")
        return await super().add(mint, **kwargs)


async def test_a_database_error_keeps_the_rest_of_the_profiles_poll(db, clock, market, make_pipeline) -> None:
    mints = market.model.seed_tokens(6)
    pipeline = await make_pipeline(profiles_rate_limit_per_min=600)
    intake = FailingIntake(db, clock, pipeline.counters, pipeline.stage_stats)
    poller = ProfilesPoller(pipeline.client, intake)
    intake.broken = {mints[1]}
    assert await poller.poll_once() == 5  # every other address of the poll is stored
    stored = {t.mint for t in await db.run(lambda s: queries.tokens_by_status(s, "monitoring"))}
    assert stored == set(mints) - {mints[1]}
    assert poller.insert_errors == 1 and poller.pending == [mints[1]]

    intake.broken = set()
    assert await poller.poll_once() == 1  # the kept address goes in on the next poll
    stored = {t.mint for t in await db.run(lambda s: queries.tokens_by_status(s, "monitoring"))}
    assert stored == set(mints) and poller.pending == []


async def test_a_database_outage_queues_the_poll_and_loses_nothing(db, clock, market, make_pipeline) -> None:
    mints = market.model.seed_tokens(8)
    pipeline = await make_pipeline(profiles_rate_limit_per_min=600)
    intake = FailingIntake(db, clock, pipeline.counters, pipeline.stage_stats)
    poller = ProfilesPoller(pipeline.client, intake)
    intake.broken = set(mints)
    assert await poller.poll_once() == 0
    assert sorted(poller.pending) == sorted(mints)
    assert poller.insert_errors <= 3  # stops hammering a database that is down; the rest just wait

    market.model.seed_tokens(1)  # and something new appears meanwhile
    await market.apply_faults({"outage": True, "outage_mode": "503"})
    pipeline.client.max_retries = 0
    intake.broken = set()
    assert await poller.poll_once() == 8  # the API is down now, the queue still drains
    assert poller.failures == 1 and poller.pending == []
    assert sum((await db.run(queries.counts_by_status)).values()) == 8
