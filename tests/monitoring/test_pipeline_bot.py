"""/token, /stuck and the /status pipeline sections end to end: the real aiogram client
polls the fake Bot API server; /token fetches fresh pools from the local market."""
from __future__ import annotations

import pytest

import bot.app as bot_app
from bot.runner import BotRunner
from bot.status_pipeline import register_pipeline_sections
from bot.status_sections import default_sections
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import NOW, VIEWER, buttons, press, say
from tests.monitoring.market_helpers import market_and_client, track
from tests.monitoring.test_activation_debug import CASES
from tokens.models import Check, Token
from tokens.check_rollup import rebuild_check_rollup


@pytest.fixture
async def pipeline_bot(frame_ctx, fake):
    async with market_and_client(frame_ctx.clock) as (market, client):
        frame_ctx.market_client = client
        dp = bot_app.build_dispatcher(frame_ctx, status_sections=register_pipeline_sections(default_sections()))
        runner = BotRunner(frame_ctx, dispatcher=dp, polling_timeout=1)
        await runner.start()
        try:
            yield market
        finally:
            await runner.stop()


@pytest.mark.parametrize("case,pools,failing", CASES, ids=[c[0] for c in CASES])
async def test_token_shows_each_condition_step_by_step(fake, frame_ctx, pipeline_bot, case, pools, failing):
    market = pipeline_bot
    mint = market.model.new_mint()
    market.model.set_pairs(mint, [market.model.make_pair(mint, **p) for p in pools])
    await track(frame_ctx.db, mint, NOW)
    msg = await say(fake, VIEWER, VIEWER, f"/token {mint}")
    text = msg.plain
    assert mint in text and "Fresh check" in text
    for name in ("data_fresh", "pairs_well_formed", "pairs_present", "pump_pool", "external_pool",
                 "external_liquidity"):
        icon = "❌" if name in failing else "✅"
        assert f"{icon} {name}:" in text, (name, text)
    assert ("would activate" in text) is (not failing)
    assert "monitoring" in text.split("Transitions", 1)[1]  # the discovery transition


async def test_token_answers_malformed_and_untracked_mints_clearly(fake, frame_ctx, pipeline_bot):
    bad = await say(fake, VIEWER, VIEWER, "/token <b>0xdeadbeef</b>")
    assert bad.plain == "⚠️ a mint address has 32-44 characters, this has 17\nUsage: /token <mint address>"
    none = await say(fake, VIEWER, VIEWER, "/token")
    assert "Usage" in none.plain
    mint = pipeline_bot.model.new_mint()
    untracked = await say(fake, VIEWER, VIEWER, f"/token {mint}")
    assert "not tracked" in untracked.plain


async def test_stuck_pages_and_opens_token_from_its_button(fake, frame_ctx, pipeline_bot):
    market = pipeline_bot
    mints = [market.model.new_mint() for _ in range(7)]
    async with frame_ctx.db.session() as session:
        for i, mint in enumerate(mints):
            # hostile names must arrive escaped and intact
            session.add(Token(mint=mint, name=f"<i>Rug & {i}</i>\u202e", status="monitoring",
                              status_since=NOW - 1000 + i, discovered_at=NOW - 1000 + i, next_check_at=NOW + 60))
        await session.commit()
    market.model.set_pairs(mints[0], [market.model.make_pair(mints[0], "pumpswap", "SOL", 5000)])
    first = await say(fake, VIEWER, VIEWER, "/stuck")
    # 7 stuck, 5 per page; oldest first
    assert "Stuck tokens: 7" in first.plain and "page 1 of 2" in first.plain
    assert "<i>Rug & 0</i>" in first.plain and "never checked" in first.plain
    assert "\u202e" not in first.plain  # a right-to-left override must not flip the rest of the line
    keys = buttons(first)
    assert "Next ▶" in keys and "◀ Prev" not in keys
    await press(fake, VIEWER, VIEWER, first.message_id, keys["Next ▶"])
    edited = fake.sent(VIEWER)[-1]
    assert edited.message_id == first.message_id and "page 2 of 2" in edited.plain
    assert "6." in edited.plain and "7." in edited.plain and "<i>Rug & 6</i>" in edited.plain
    # back to page 1 and open the first token's /token view from its button
    await press(fake, VIEWER, VIEWER, first.message_id, buttons(edited)["◀ Prev"])
    page1 = fake.sent(VIEWER)[-1]
    open_first = next(data for text, data in buttons(page1).items() if text.startswith("🔎 1."))
    before = len(fake.sent(VIEWER))
    await press(fake, VIEWER, VIEWER, first.message_id, open_first)
    await fake.wait_for(lambda: len(fake.sent(VIEWER)) > before, 10)
    view = fake.sent(VIEWER)[-1].plain
    assert mints[0] in view and "❌ external_pool:" in view and "✅ pump_pool:" in view


async def test_status_shows_lag_activation_and_last_errors(fake, frame_ctx, pipeline_bot):
    async with frame_ctx.db.session() as session:
        # in monitoring for 10 min (past FRESH_HOT_S) with a low score: cold
        token = Token(mint="E" * 44, status="monitoring", status_since=NOW - 600, discovered_at=NOW - 600,
                      next_check_at=NOW - 30, score_ewma=10.0)
        session.add(token)
        await session.flush()
        session.add(Check(check_id="e1", token_id=token.id, at=NOW - 20, status_at_check="monitoring", ok=False,
                          error="HTTP 503 <upstream>"))
        await rebuild_check_rollup(session)  # the per-minute counts monitoring reads
        await session.commit()
    msg = await say(fake, VIEWER, VIEWER, "/status")
    text = msg.plain
    # one cold token due 30 s ago
    assert "Lag cold: p50 30s · p95 30s · max 30s" in text
    assert "Due now: 1" in text
    assert "Activation" in text and "Last errors" in text and "HTTP 503 <upstream>" in text
    # the only check of the last minute failed to fetch: the advice is about fetching, not the tokens
    assert "Top failures (1h): fetch_error 1" in text
    assert "💡 fetches are failing now (100% of checks in the last 1 min failed to fetch pool data)" in text
    assert "fetch EEEEEE…EEEE HTTP 503 <upstream>" in text


async def test_status_names_a_backlog_beyond_the_api_limit_over_capacity(fake, frame_ctx, pipeline_bot):
    # 1 request/min serves 4 tokens every 10 s or 21 every 45 s; 30 cold tokens are all late by 200 s
    frame_ctx.settings = frame_ctx.settings.model_copy(update={"api_rate_limit_per_min": 1})
    async with frame_ctx.db.session() as session:
        for i in range(30):
            session.add(Token(mint=f"{i:02d}" + "C" * 42, name="<b>x</b>", status="monitoring", status_since=NOW - 600,
                              discovered_at=NOW - 600, next_check_at=NOW - 200, score_ewma=10.0))
        await session.commit()
    text = (await say(fake, VIEWER, VIEWER, "/status")).plain
    assert ("⚠️ Over capacity: 30 tokens overdue, 30 tracked; the API limit (1/min) keeps 4 tokens checked "
            "every 10s or 21 every 45s") in text


async def test_status_states_the_capacity_when_the_limit_keeps_up(fake, frame_ctx, pipeline_bot):
    async with frame_ctx.db.session() as session:
        session.add(Token(mint="F" * 44, status="monitoring", status_since=NOW - 600, discovered_at=NOW - 600,
                          next_check_at=NOW + 30, score_ewma=10.0))
        await session.commit()
    text = (await say(fake, VIEWER, VIEWER, "/status")).plain
    assert "Capacity: the API limit (300/min) keeps 1,455 tokens checked every 10s or 6,547 every 45s · tracked 1" in text
    assert "Over capacity" not in text
