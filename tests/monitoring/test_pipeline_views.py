"""The /stuck and /token renders stay valid Telegram HTML whatever the names hold."""
from __future__ import annotations

from app.clock import ManualClock
from bot.callbacks import CallbackSigner
from delivery.html import to_plain, validate_html, visible_len
from bot.views.stuck import render_stuck, stuck_keyboard
from bot.views.token import render_token_debug
from monitoring.activation_debug import FetchStep, TokenDebug
from monitoring.pipeline import StuckPage, StuckToken
from tokens.activation import ActivationResult, ActivationRules, evaluate
from tokens.queries import TokenView

NOW = 1_700_000_000.0
HOSTILE = ["<script>&amp;</b>", "🚀" * 200, "\u202eevil\u202c name", "x" * 200, 'quote " & <i>', "\x00nul"]


def _item(i: int, name: str) -> StuckToken:
    return StuckToken(i, "M" * 44, name, name[:20], f"failing_checks:{name}", NOW - 500, 500.0, NOW - 5, None, 4)


def test_stuck_render_is_valid_html_with_hostile_names():
    page = StuckPage([_item(i, n) for i, n in enumerate(HOSTILE, start=1)], total=60, page=3, page_size=6)
    text = render_stuck(page, NOW, stuck_after_s=180)
    validate_html(text)
    plain = to_plain(text)
    assert "page 4 of 10" in plain and "<script>&amp;</b>" in plain
    assert "\u202e" not in plain and "\x00" not in plain
    assert visible_len(text) <= 4096
    keyboard = stuck_keyboard(page, CallbackSigner(b"k", ManualClock(NOW)))
    nav = [b.text for b in keyboard.inline_keyboard[-1]]
    assert nav == ["◀ Prev", "🔄", "Next ▶"]
    assert all(len(b.callback_data.encode()) <= 64 for row in keyboard.inline_keyboard for b in row)


def test_an_active_token_stuck_on_failing_checks_says_it_is_active():
    item = StuckToken(1, "A" * 44, "Live", "LIV", "failing_checks:TimeoutError", NOW - 850, 850.0, NOW - 600,
                      NOW - 700, 6, status="active")
    plain = to_plain(render_stuck(StuckPage([item], total=1), NOW, stuck_after_s=180))
    assert "6 fetch failures in a row: TimeoutError" in plain and "in active 14" in plain
    assert "in monitoring" not in plain.split("page 1 of 1", 1)[1]  # the token's lines, below the rule


def test_token_render_is_valid_html_with_hostile_names_and_errors():
    view = TokenView(1, "M" * 44, HOSTILE[0] + HOSTILE[2], HOSTILE[1], "pumpportal", "monitoring", NOW - 60,
                     NOW - 60, NOW + 5, NOW - 5, None, 3, 3, None, None, None, [], None)
    result = evaluate([{"junk": True}, None, "x"], ActivationRules(), NOW, NOW)
    debug = TokenDebug("M" * 44, True, view, [FetchStep("batch", error="TimeoutError: <slow> & stuck"),
                                             FetchStep("token_pairs", 0, 3)], "token_pairs", NOW, result)
    text = render_token_debug(debug, NOW)
    validate_html(text)
    plain = to_plain(text)
    assert "failed (TimeoutError: <slow> & stuck)" in plain and "0 pools, 3 malformed" in plain
    assert "fetch failures in a row 3" in plain
    assert "❌ pairs_well_formed: 3 (max 0)" in plain and "would not activate" in plain


def test_empty_stuck_says_nothing_is_stuck_and_what_stuck_means():
    plain = to_plain(render_stuck(StuckPage([], total=0), NOW, stuck_after_s=180, failure_streak=3))
    # 180 s -> "3m 00s"; the rule is a definition, not a description of the tokens
    assert plain == ("🧊 Stuck tokens\n\nNothing is stuck. (Stuck = in monitoring 3m 00s without a successful "
                     "check, or 3 failed fetches in a row (monitoring or active).)")


def test_token_view_cuts_details_between_words_and_counts_pools_in_the_singular():
    from tokens.activation import ConditionResult

    view = TokenView(1, "M" * 44, "Name", "SYM", "pumpportal", "monitoring", NOW - 60, NOW - 60, NOW + 5, NOW - 5,
                     None, 0, 3, None, None, None, [], None)
    detail = "liquidity USD of the best external pool (0 of 1 needed with >= $200; best $2,024) and more words"
    cond = ConditionResult("external_liquidity", 150.0, 200.0, False, "insufficient_liquidity", detail)
    result = ActivationResult(False, [cond], ["insufficient_liquidity"])
    debug = TokenDebug("M" * 44, True, view, [FetchStep("batch", 1, 0)], "batch", NOW, result)
    plain = to_plain(render_token_debug(debug, NOW))
    assert "batch /tokens/v1: 1 pool" in plain and "1 pools" not in plain
    # the 96-character detail is cut at 100 characters only if longer; make it longer and it is
    # cut before a whole word, never inside "$2,024"
    assert "best $2,024) and more words" in plain
    long = TokenDebug("M" * 44, True, view, [FetchStep("batch", 2, 0)], "batch", NOW, ActivationResult(
        False, [ConditionResult("external_liquidity", 150.0, 200.0, False, "x", "w" * 90 + " best $2,024")],
        ["x"]))
    cut = to_plain(render_token_debug(long, NOW))
    # 90 + 1 + 4 = 95 characters fit; "$2,024" would end at 102 > 100: dropped whole, not "$2,02…"
    assert "w" * 90 + " best…" in cut and "$2,02" not in cut
