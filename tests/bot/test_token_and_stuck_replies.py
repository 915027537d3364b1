"""Wording the operator review asked for, through the real aiogram client and the fake
Bot API server: /ping lists Redis, /help says what /stuck lists, /token counts the mint."""
from __future__ import annotations

from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import VIEWER, say


async def test_ping_lists_redis_as_not_configured_without_redis_url(fake, running_bot, frame_ctx):
    assert frame_ctx.settings.redis_url is None
    msg = await say(fake, VIEWER, VIEWER, "/ping")
    assert "✅ redis: not configured (REDIS_URL is unset): running without it" in msg.plain
    assert "all checks passed" in msg.plain  # running without Redis is allowed, not a failure


async def test_help_says_stuck_also_lists_active_tokens_with_failing_fetches(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/help")
    line = next(line for line in msg.plain.splitlines() if line.startswith("/stuck"))
    assert "monitored/active with fetches failing in a row" in line


async def test_token_with_extra_words_counts_the_mint_not_the_whole_text(fake, running_bot):
    mint = "So11111111111111111111111111111111111111112"  # 43 characters; with " extra" 49
    msg = await say(fake, VIEWER, VIEWER, f"/token {mint} extra")
    assert msg.plain == "⚠️ give only the mint address: remove the word after it\nUsage: /token <mint address>"
    short = await say(fake, VIEWER, VIEWER, "/token abc def")
    assert short.plain == "⚠️ a mint address has 32-44 characters, the first word has 3\nUsage: /token <mint address>"


async def test_stuck_when_nothing_is_stuck_gives_the_definition_plainly(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/stuck")
    # defaults: STUCK_AFTER_S=180 -> "3m 00s", STUCK_FAILURE_STREAK=3
    assert ("Nothing is stuck. (Stuck = in monitoring 3m 00s without a successful check, "
            "or 3 failed fetches in a row (monitoring or active).)") in msg.plain
