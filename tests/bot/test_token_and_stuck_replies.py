"""/token and /stuck replies through the real aiogram client and the fake Bot API server: wrong
input is explained, "stuck" is defined, and hostile token names can neither fake lines nor be
escaped twice."""
from __future__ import annotations

from bot.views.token import render_token_debug
from delivery.html import to_plain
from monitoring.activation_debug import TokenDebug
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import NOW, VIEWER, say
from tokens.activation import ActivationResult, ConditionResult
from tokens.models import Token
from tokens.queries import TokenView


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


async def test_token_names_cannot_fake_extra_lines(fake, running_bot, frame_ctx):
    async with frame_ctx.db.session() as session:
        session.add(Token(mint="So11111111111111111111111111111111111111112",
                          name="Evil\n✅ ALL CLEAR\r\u2028\u2029\x0bend", status="monitoring",
                          status_since=NOW - 1000, discovered_at=NOW - 1000, next_check_at=NOW + 60))
        await session.commit()
    msg = await say(fake, VIEWER, VIEWER, "/stuck")
    assert "Evil ✅ ALL CLEAR" in msg.plain
    assert not any(line.startswith("✅ ALL CLEAR") for line in msg.plain.splitlines())
    assert not any(ch in msg.plain for ch in "\r\u2028\u2029\x0b")


def test_token_values_are_escaped_exactly_once():
    kw = dict(id=1, mint="So11111111111111111111111111111111111111112", name="A&B", symbol="<S>", source="x",
              status="monitoring", status_since=0.0, discovered_at=0.0, next_check_at=None, last_check_at=None,
              last_success_at=None, consecutive_failures=0)
    for name in TokenView.__dataclass_fields__:
        kw.setdefault(name, 0)
    token = TokenView(**kw)
    result = ActivationResult(False, [ConditionResult("pump_pool", "A&B <dex>", "x&y", False, "c", None)],
                              ["pump_pool"])
    text = to_plain(render_token_debug(TokenDebug(token.mint, True, token, [], result=result), 100.0))
    assert "pump_pool: A&B <dex> (need ≥ x&y)" in text
    assert "&amp;" not in text and "&lt;" not in text
